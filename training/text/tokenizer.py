"""Training a WordPiece vocabulary for a text student, on normalizer output.

Loading and encoding are the on-device contract (`edgemod.runtime.tokenizer`); this module only
builds the vocabulary, deterministically, and hands back a runtime `WordPieceTokenizer`.
"""
from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from edgemod.errors import EdgemodError
from edgemod.runtime.normalizer import TextNormalizer, load_normalizer
from edgemod.runtime.tokenizer import (
    DEFAULT_NORMALIZERS,
    MAX_CHARS_PER_WORD,
    PREFIX,
    SPECIAL_TOKENS,
    WordPieceTokenizer,
    hf_tokenizers,
    pre_tokenizer,
)

MAX_VOCAB_SIZE = 8000  # embedding tables above this cost too much of an on-device size budget
MIN_VOCAB_SIZE = 64


def train_wordpiece(texts: Sequence[str], vocab_size: int = MAX_VOCAB_SIZE,
                    normalizer: TextNormalizer | str | None = None, min_frequency: int = 2, *,
                    max_length: int = 64, limit_alphabet: int | None = None,
                    normalized: bool = False, pre_tokenization: str = "bert") -> WordPieceTokenizer:
    """Train a WordPiece vocabulary of at most `vocab_size` entries on normalized `texts`.

    Args:
        texts: training texts, raw unless `normalized=True`.
        vocab_size: upper bound on the vocabulary, special tokens and placeholders included.
        normalizer: a TextNormalizer or the name of a shipped spec; default: the mode's
            (`moderation-v1` for bert, `mediapipe-bert-v1` for mediapipe_tasks).
        min_frequency: a merge must be seen this often to enter the vocabulary.
        max_length: default row length of `encode` (saved in tokenizer_spec.json).
        limit_alphabet: keep at most this many single characters (most frequent first); the
            default, vocab_size // 8, leaves most of the vocabulary to word pieces. Words with a
            dropped character encode as [UNK].
        normalized: `texts` already went through `normalizer`.
        pre_tokenization: how words are cut before WordPiece: 'bert', or 'mediapipe_tasks' (what
            MediaPipe Tasks' TextClassifier does on the phone; see `edgemod.runtime.tokenizer`).

    The result is the same for the same inputs, in any process: see `_train_hf`.
    """
    if not MIN_VOCAB_SIZE <= vocab_size <= MAX_VOCAB_SIZE:
        raise EdgemodError(f"vocab_size={vocab_size} is outside [{MIN_VOCAB_SIZE}, {MAX_VOCAB_SIZE}]",
                           f"on-device students use at most {MAX_VOCAB_SIZE} entries; pick a size in range")
    splitter = pre_tokenizer(pre_tokenization)  # also rejects an unknown mode before any work
    if normalizer is None or isinstance(normalizer, str):
        normalizer = load_normalizer(normalizer or DEFAULT_NORMALIZERS[pre_tokenization])
    texts = list(texts) if normalized else normalizer.batch(texts)
    if not any(texts):
        raise EdgemodError("no training text left after normalization", "pass a non-empty list of texts")
    if pre_tokenization == "bert":  # the original rules, so bert vocabularies stay what they were
        dropped, isolated = str.isspace, _is_punctuation
    else:
        dropped, isolated = _splitter_rules(splitter)
    alphabet = _alphabet(texts, limit_alphabet or vocab_size // 8, dropped)
    hf = _train_hf(texts, vocab_size, min_frequency, alphabet, normalizer.placeholders, isolated, pre_tokenization)
    return WordPieceTokenizer(hf, normalizer, max_length, pre_tokenization)


def _alphabet(texts: Sequence[str], limit: int, dropped: Callable[[str], bool]) -> list[str]:
    """The `limit` most frequent characters the pre-tokenizer keeps; ties go to the lower code point."""
    counts = Counter("".join(texts))
    chars = sorted((c for c in counts if not dropped(c)), key=lambda c: (-counts[c], c))
    return sorted(chars[:limit])


def _splitter_rules(splitter: Any) -> tuple[Callable[[str], bool], Callable[[str], bool]]:
    """(is dropped, is a word of its own) for single characters, read off the pre-tokenizer itself,
    so the training rules cannot drift from its regexes."""
    def dropped(char: str) -> bool:
        return not splitter.pre_tokenize_str(char)

    def isolated(char: str) -> bool:
        return len(splitter.pre_tokenize_str(f"a{char}a")) > 1
    return dropped, isolated


def _is_punctuation(char: str) -> bool:
    """BERT's rule: ASCII punctuation or any Unicode punctuation category."""
    code = ord(char)
    return (33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126
            or unicodedata.category(char).startswith("P"))


def _train_hf(texts: Sequence[str], vocab_size: int, min_frequency: int, alphabet: list[str],
              placeholders: list[str], isolated: Callable[[str], bool], pre_tokenization: str) -> Any:
    tk = hf_tokenizers()
    reserved = [*SPECIAL_TOKENS, *placeholders]
    # The trainer numbers '##x' pieces in hash-map order, and merge ties are broken by those
    # numbers, so two processes can learn different vocabularies. Listing every '##x' up front
    # (sorted) fixes their numbers; a character that is always a word of its own (punctuation,
    # and CJK under mediapipe_tasks) needs no '##x'.
    continuations = [PREFIX + c for c in alphabet if not isolated(c)]
    trainer = tk.trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
        special_tokens=reserved + continuations, initial_alphabet=alphabet, limit_alphabet=len(alphabet),
        continuing_subword_prefix=PREFIX)
    trained = _bare_tokenizer(tk, None, pre_tokenization)
    trained.add_special_tokens(reserved)  # placeholders stay whole in the training text too
    trained.train_from_iterator(texts, trainer=trainer, length=len(texts))
    # Rebuild so only the real special tokens are "added tokens": the '##x' trick must not make
    # a literal '##x' in some text a token of its own.
    tokenizer = _bare_tokenizer(tk, trained.get_vocab(), pre_tokenization)
    tokenizer.add_special_tokens(reserved)
    return tokenizer


def _bare_tokenizer(tk: Any, vocab: dict[str, int] | None, pre_tokenization: str) -> Any:
    """WordPiece with the mode's pre-tokenization and, on purpose, no normalizer (ours runs first).

    MAX_CHARS_PER_WORD is exactly MediaPipe Tasks' 100-byte limit on ASCII words; the runtime
    tokenizer applies the byte limit itself to the non-ASCII words where the two differ."""
    tokenizer = tk.Tokenizer(tk.models.WordPiece(vocab=vocab, unk_token="[UNK]", continuing_subword_prefix=PREFIX,
                                                 max_input_chars_per_word=MAX_CHARS_PER_WORD))
    tokenizer.pre_tokenizer = pre_tokenizer(pre_tokenization)
    return tokenizer
