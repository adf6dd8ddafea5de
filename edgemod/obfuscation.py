"""Obfuscated spellings of text: the ways users slip words past filters.

Two uses, two functions:

- `obfuscate(text, style)`: one fixed, whole-text rewrite per style, for evaluation (golden
  vectors, the bench's robustness slice). Same input, same output.
- `augment(text, rng)`: a randomised, partial rewrite for training (`distill.obfuscation_augment`):
  a random style (sometimes two mixed) applied to a random subset of the words, each character
  substituted only with some probability, as people actually write ('h4te', 'idi\u200bot',
  'f r e e'). Training on it teaches a student to read evasions the normalizer does not undo
  (and, with the `mediapipe-bert-v1` normalizer, which undoes none, all of them).

    >>> import random
    >>> obfuscate("you are an idiot", "leetspeak")
    'y0u 4r3 4n 1d10t'
    >>> augment("you are an idiot", random.Random(3)) != "you are an idiot"
    True
"""
from __future__ import annotations

import random
import re
from collections.abc import Sequence

OBFUSCATIONS = ("leetspeak", "homoglyph", "zero_width", "spacing")
ZERO_WIDTH = "\u200b"
LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5"})
HOMOGLYPHS = str.maketrans({"a": "а", "e": "е", "o": "о", "c": "с", "p": "р", "x": "х", "i": "і", "y": "у"})

# augment(): wider tables than obfuscate()'s, with the alternatives people use for one letter.
_LEET_CHOICES = {"a": "4@", "b": "8", "e": "3", "g": "9", "i": "1!", "l": "1", "o": "0", "s": "5$", "t": "7"}
# Cyrillic and Greek look-alikes, lower and upper case (the raw text keeps its case).
_HOMOGLYPH_CHOICES = {
    "a": "\u0430", "c": "\u0441", "e": "\u0435", "h": "\u04bb", "i": "\u0456", "j": "\u0458", "o": "\u043e\u03bf",
    "p": "\u0440", "s": "\u0455", "x": "\u0445", "y": "\u0443", "A": "\u0410\u0391", "B": "\u0412\u0392",
    "C": "\u0421", "E": "\u0415\u0395", "H": "\u041d\u0397", "K": "\u041a\u039a", "M": "\u041c", "O": "\u041e\u039f",
    "P": "\u0420", "T": "\u0422\u03a4", "X": "\u0425",
}
# Zero-width space, non-joiner, joiner, word joiner, soft hyphen: all invisible in most fonts.
_INVISIBLE = "\u200b\u200c\u200d\u2060\u00ad"
_SPELL_SEPARATORS = "  .-_*"  # a space twice: spaced-out letters are the most common form
# Styles that change characters run before those that insert between them, so mixing
# 'leetspeak' and 'spacing' gives 'h 4 t e', not a separator turned into a leet digit.
_ORDER = ("homoglyph", "leetspeak", "zero_width", "spacing")
# style -> (choices per letter, how a letter is looked up): leet ignores case, homoglyphs keep it.
_TABLES = {"leetspeak": (_LEET_CHOICES, str.lower), "homoglyph": (_HOMOGLYPH_CHOICES, str)}
_LETTERS = re.compile(r"[^\W\d_]{2,}")
_URL = re.compile(r"://|^www\.", re.IGNORECASE)
_PROTECTED = re.compile(r"[<@#]")


def obfuscate(text: str, style: str) -> str:
    """Spellings users type to slip past filters (the normalizer is meant to undo them)."""
    if style == "leetspeak":
        return text.translate(LEET)
    if style == "homoglyph":  # Cyrillic look-alikes
        return text.translate(HOMOGLYPHS)
    if style == "zero_width":
        return ZERO_WIDTH.join(text)
    words = text.split()  # spacing: the longest alphabetic word spelled out letter by letter
    candidates = [i for i, w in enumerate(words) if w.isalpha()]
    if not candidates:
        return text
    longest = max(candidates, key=lambda i: len(words[i]))
    words[longest] = " ".join(words[longest])
    return " ".join(words)


def augment(text: str, rng: random.Random, *, styles: Sequence[str] = OBFUSCATIONS, word_rate: float = 0.35,
            char_rate: float = 0.6, mix_rate: float = 0.25, whole_text_rate: float = 0.5) -> str:
    """A randomly obfuscated copy of `text`, for training.

    Args:
        text: raw text (any case; URLs, mentions and `<placeholders>` are left alone).
        rng: the source of randomness (seed it for reproducible copies).
        styles: styles to draw from (`OBFUSCATIONS`).
        word_rate: share of the words rewritten (at least one word whenever there is one);
            'spacing' spells out only one or two words.
        char_rate: chance that each substitutable letter of a chosen word is substituted.
        mix_rate: chance that a second style is mixed in, on its own subset of words.
        whole_text_rate: chance that a drawn 'zero_width' puts one invisible character between every
            two characters of the whole text, spaces included, as copy-paste evasion tools do.

    Returns the text unchanged only when it has no word of two or more letters.
    """
    unknown = sorted(set(styles) - set(OBFUSCATIONS))
    if unknown or not styles:
        raise ValueError(f"unknown obfuscation styles {unknown}; known: {', '.join(OBFUSCATIONS)}")
    chosen = {rng.choice(list(styles))}
    if len(set(styles)) > 1 and rng.random() < mix_rate:
        chosen.add(rng.choice([s for s in styles if s not in chosen]))
    original = text
    for style in (s for s in _ORDER if s in chosen):
        if style == "zero_width" and rng.random() < whole_text_rate:
            # Tasks' tokenizer reads these as letters, so every character becomes its own pieces:
            # the student must learn to read them (and to decide on the prefix that fits max_length)
            text = _join_every_character(text, rng.choice(_INVISIBLE))
        else:
            text = _rewrite_words(text, style, rng, word_rate, char_rate)
    if text == original:  # no word had a letter the drawn table maps: these two always apply
        text = _rewrite_words(text, rng.choice(("zero_width", "spacing")), rng, word_rate, char_rate)
    return text


def variants(texts: Sequence[str], keys: Sequence[str], copies: int, seed: int) -> list[list[str]]:
    """`copies` augmented versions of every text: `result[k][i]` is copy k of `texts[i]`.

    Each copy is seeded by (seed, k, key) alone, so an item gets the same copies whatever else is in
    the data set, in whatever order, in any process.
    """
    return [[augment(text, random.Random(f"edgemod-obfuscation:{seed}:{k}:{key}")) for text, key in zip(texts, keys)]
            for k in range(copies)]


def _join_every_character(text: str, invisible: str) -> str:
    """`invisible` between every two characters, spaces included, except inside URLs, @mentions,
    #tags and <placeholders> (kept whole, as `augment` promises)."""
    parts = re.split(r"(\S+)", text)
    return invisible.join(part if _PROTECTED.match(part) or _URL.search(part) else invisible.join(part)
                          for part in parts if part)


def _words(text: str) -> list[re.Match[str]]:
    """Runs of two or more letters that are words a person typed (not in URLs, @mentions, #tags, <placeholders>)."""
    found = []
    for token in re.finditer(r"\S+", text):
        if _URL.search(token.group()):
            continue
        for match in _LETTERS.finditer(text, token.start(), token.end()):
            if match.start() == 0 or text[match.start() - 1] not in "<@#":
                found.append(match)
    return found


def _rewrite_words(text: str, style: str, rng: random.Random, word_rate: float, char_rate: float) -> str:
    table, key = _TABLES.get(style, ({}, str))
    words = [m for m in _words(text) if not table or any(key(c) in table for c in m.group())]
    if not words:
        return text
    if style == "spacing":
        picked = rng.sample(words, k=min(len(words), rng.choice((1, 1, 2))))
    else:
        picked = [w for w in words if rng.random() < word_rate] or [rng.choice(words)]
    spans = sorted((m.start(), m.end()) for m in picked)
    parts, last = [], 0
    for start, end in spans:
        parts += [text[last:start], _rewrite(text[start:end], style, rng, char_rate)]
        last = end
    return "".join(parts) + text[last:]


def _rewrite(word: str, style: str, rng: random.Random, char_rate: float) -> str:
    if style == "spacing":
        return rng.choice(_SPELL_SEPARATORS).join(word)
    if style == "zero_width":
        gaps = [i for i in range(1, len(word)) if rng.random() < char_rate] or [rng.randrange(1, len(word))]
        invisible = rng.choice(_INVISIBLE)  # one kind per word, as a copy-pasted trick would give
        return "".join(invisible + c if i in gaps else c for i, c in enumerate(word))
    table, key = _TABLES[style]
    places = [i for i, c in enumerate(word) if key(c) in table]
    changed = [i for i in places if rng.random() < char_rate] or [rng.choice(places)]
    chars = list(word)
    for i in changed:
        chars[i] = rng.choice(table[key(chars[i])])
    return "".join(chars)
