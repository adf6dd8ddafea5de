"""Counterfactual copies of a text with its identity terms swapped to another group of the same axis.

`data.counterfactuals` adds such copies of the train/transfer text to the items the teachers score
(through the label cache, like any other item); `distill.fairness` then trains on them. The swaps
follow `identity_swaps.json`: form for form within an axis, so a copy stays grammatical.

    >>> [text for _, text in counterfactuals("The Jews are a plague", "k1", 2, 0)]
    ['The Christians are a plague', 'The Muslims are a plague']
    >>> counterfactuals("a jewish man", "k2", 1, 0)[0][1] in ("a muslim man", "a christian man")
    True
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

SWAPS = Path(__file__).with_name("identity_swaps.json")
IDENTITY_TERMS = Path(__file__).with_name("identity_terms.json")  # the groups the bench slices and reweighting use
# After an ambiguous term ('muslim' is an adjective and a person), these words say it was a noun.
_NOUN_FOLLOWERS = frozenset(
    "is are was were be been and or but who whom that which should would will can could do does did have has had "
    "to in of on at for from with by as than get got need needs like go going said say says".split())
_VOWEL_SOUND = re.compile(r"[aeio]|u(?!ni|se|su|ro)|h(?=our|onest)", re.IGNORECASE)


@dataclass(frozen=True)
class Mention:
    start: int
    end: int
    group: str
    form: str


@lru_cache(maxsize=1)
def identity_groups() -> dict[str, re.Pattern]:
    """Group name -> whole-word pattern of its terms (matched on lower-cased text)."""
    groups = {k: v for k, v in json.loads(IDENTITY_TERMS.read_text()).items() if not k.startswith("_")}
    return {name: re.compile(r"\b(" + "|".join(map(re.escape, terms)) + r")\b") for name, terms in groups.items()}


def mentions_identity(texts) -> list[bool]:
    """Whether each text names any identity group."""
    patterns = list(identity_groups().values())
    return [any(p.search(t.lower()) for p in patterns) for t in texts]


@lru_cache(maxsize=1)
def swap_table() -> dict[str, dict[str, dict[str, str]]]:
    """axis -> group -> form -> term."""
    return {axis: groups for axis, groups in json.loads(SWAPS.read_text()).items() if not axis.startswith("_")}


@lru_cache(maxsize=1)
def _index() -> tuple[re.Pattern, dict[str, list[tuple[str, str, str]]]]:
    by_term: dict[str, list[tuple[str, str, str]]] = {}
    for axis, groups in swap_table().items():
        for group, forms in groups.items():
            for form, term in forms.items():
                by_term.setdefault(term, []).append((axis, group, form))
    terms = sorted(by_term, key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(map(re.escape, terms)) + r")\b", re.IGNORECASE), by_term


def mentions(text: str) -> dict[str, list[Mention]]:
    """Identity terms in `text`, per axis."""
    pattern, by_term = _index()
    found: dict[str, list[Mention]] = {}
    for match in pattern.finditer(text):
        senses = by_term[match.group().lower()]
        axis, group = senses[0][0], senses[0][1]
        forms = [form for a, g, form in senses if (a, g) == (axis, group)]
        form = forms[0] if len(forms) == 1 else _form_in_context(forms, text[match.end():])
        found.setdefault(axis, []).append(Mention(match.start(), match.end(), group, form))
    return found


def counterfactuals(text: str, key: str, per_item: int, seed: int) -> list[tuple[str, str]]:
    """Up to `per_item` copies of `text` as `(tag, text)`, tag `'<from>><to>'`; none without a swappable term.

    Each copy moves every term of one mentioned group to one group not mentioned in the post, of the
    same axis and with all the forms used. The choice is seeded by (seed, key) alone."""
    found = mentions(text)
    options = [(axis, source, target) for axis, items in found.items()
               for source in sorted({m.group for m in items})
               for target in swap_table()[axis]
               if target not in {m.group for m in items} and _has_forms(axis, target, items, source)]
    rng = random.Random(f"edgemod-counterfactual:{seed}:{key}")
    chosen = rng.sample(options, k=min(per_item, len(options)))
    return [(f"{source}>{target}", _swap(text, [m for m in found[axis] if m.group == source], axis, target))
            for axis, source, target in sorted(chosen)]


def _has_forms(axis: str, target: str, items: list[Mention], source: str) -> bool:
    forms = swap_table()[axis][target]
    return all(m.form in forms for m in items if m.group == source)


def _form_in_context(forms: list[str], after: str) -> str:
    """The adjective when a word that is not a verb or function word follows, else the noun form."""
    following = re.match(r"\s+([a-z]+)", after, re.IGNORECASE)
    nouns = [f for f in forms if f != "adjective"]
    if "adjective" in forms and following and following.group(1).lower() not in _NOUN_FOLLOWERS:
        return "adjective"
    return nouns[0] if nouns else forms[0]


def _swap(text: str, items: list[Mention], axis: str, target: str) -> str:
    forms = swap_table()[axis][target]
    parts, last = [], 0
    for item in sorted(items, key=lambda m: m.start):
        before = _fix_article(text[last:item.start], forms[item.form])
        parts += [before, _same_case(text[item.start:item.end], forms[item.form])]
        last = item.end
    return "".join(parts) + text[last:]


def _same_case(original: str, term: str) -> str:
    if original.isupper() and len(original) > 1:
        return term.upper()
    return term[:1].upper() + term[1:] if original[:1].isupper() else term


def _fix_article(before: str, word: str) -> str:
    """'a'/'an' right before the swapped term agrees with its first sound."""
    match = re.search(r"\b(an?)(\s+)$", before, re.IGNORECASE)
    if not match:
        return before
    article = "an" if _VOWEL_SOUND.match(word) else "a"
    if match.group(1)[0].isupper():
        article = article.capitalize()
    return before[:match.start(1)] + article + match.group(2)
