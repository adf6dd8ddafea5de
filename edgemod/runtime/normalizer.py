"""Obfuscation-resistant text normalization, described by a portable JSON spec.

The spec (`normalizers/<name>.json`) is the source of truth: an ordered list of steps whose
parameters (character tables, regexes) are inline data, plus golden input/output pairs. This
module is the Python reference implementation; the Swift and Kotlin ports implement the same
steps from the same file and must pass the same golden pairs, so the model sees identical text
on every platform.

    >>> normalize = load_normalizer("moderation-v1")
    >>> normalize("H\u200bELLO  W0rld!!!")
    'hello world!!'
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from edgemod.errors import EdgemodError, did_you_mean

SPEC_DIR = Path(__file__).parent / "normalizers"
DEFAULT_NORMALIZER = "moderation-v1"

Step = Callable[[str], str]
_SPEC_KEYS = {"name", "version", "description", "conventions", "order_rationale", "steps", "golden"}
# Keys every step may carry besides its parameters: its name and its prose definition.
_STEP_META = {"step", "doc"}
# fold_leet: where a table character may be replaced, applied in this order.
_LEET_PLACES = ("anywhere", "inside", "between_letters")
# Constructs whose meaning differs between ECMAScript, Java/Kotlin, ICU (Swift) and Python `re`.
_NON_PORTABLE_REGEX = re.compile(r"\(\?[<=!P#a-zA-Z]|\\[wWdDsSbBpPkKAZzgG1-9]|[*+?}][?+]")


class TextNormalizer:
    """Runs the steps of a normalizer spec in order: `normalizer(text) -> str`."""

    def __init__(self, spec: Mapping[str, Any]):
        _check_keys("normalizer spec", spec, required={"name", "version", "steps"}, allowed=_SPEC_KEYS)
        self._spec = copy.deepcopy(dict(spec))
        self._steps = [_build_step(i, entry) for i, entry in enumerate(self._spec["steps"])]
        self._sha256 = spec_sha256(self._spec)

    @classmethod
    def from_spec(cls, spec: str | Path | Mapping[str, Any]) -> TextNormalizer:
        """Build from a spec dict or a path to a spec JSON file."""
        if isinstance(spec, Mapping):
            return cls(spec)
        path = Path(spec)
        if not path.is_file():
            raise EdgemodError(f"normalizer spec {path} does not exist",
                               f"pass a spec file, or a name with load_normalizer(); known: {available_normalizers()}")
        try:
            return cls(json.loads(path.read_text(encoding="utf-8")))
        except json.JSONDecodeError as err:
            raise EdgemodError(f"normalizer spec {path} is not valid JSON: {err}", "fix the JSON syntax") from err

    def __call__(self, text: str) -> str:
        if not isinstance(text, str):
            raise EdgemodError(f"the normalizer takes str, got {type(text).__name__}",
                               "replace missing texts (None/NaN from a CSV) with '' before normalizing")
        for step in self._steps:
            text = step(text)
        return text

    def batch(self, texts: Iterable[str]) -> list[str]:
        """Normalize many texts; the order is kept."""
        return [self(text) for text in texts]

    @property
    def spec(self) -> dict[str, Any]:
        """A copy of the spec this normalizer runs (save it beside the model)."""
        return copy.deepcopy(self._spec)

    @property
    def spec_sha256(self) -> str:
        """Hash of the spec's canonical JSON: identical specs give identical hashes."""
        return self._sha256

    @property
    def name(self) -> str:
        return self._spec["name"]

    @property
    def version(self) -> str:
        return str(self._spec["version"])

    @property
    def placeholders(self) -> list[str]:
        """Tokens that `replace_patterns` steps insert (e.g. `<url>`); tokenizers keep them whole."""
        found: list[str] = []
        for entry in self._spec["steps"]:
            if entry["step"] == "replace_patterns":
                found += [r["token"] for r in entry["rules"] if r["token"] not in found]
        return found

    @property
    def golden(self) -> list[dict[str, str]]:
        return copy.deepcopy(self._spec.get("golden", []))

    def __repr__(self) -> str:
        return f"TextNormalizer({self.name!r}, version={self.version!r}, sha256={self._sha256[:12]})"


def load_normalizer(name: str = DEFAULT_NORMALIZER) -> TextNormalizer:
    """Load a normalizer shipped in `edgemod/runtime/normalizers/`."""
    path = SPEC_DIR / f"{name}.json"
    if not path.is_file():
        known = available_normalizers()
        raise EdgemodError(f"unknown normalizer '{name}'{did_you_mean(name, known)}",
                           f"use one of: {', '.join(known)}, or TextNormalizer.from_spec(path)")
    return TextNormalizer.from_spec(path)


def available_normalizers() -> list[str]:
    """Names of the shipped normalizer specs, sorted."""
    return sorted(p.stem for p in SPEC_DIR.glob("*.json"))


def spec_sha256(spec: Mapping[str, Any]) -> str:
    """sha256 of `json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=True)`.

    Canonical JSON rather than file bytes, so re-indenting a spec file does not change its hash.
    """
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


# --- spec parsing helpers ------------------------------------------------------------------------

def _check_keys(where: str, given: Mapping[str, Any], required: set[str], allowed: set[str]) -> None:
    if not isinstance(given, Mapping):
        raise EdgemodError(f"{where} must be a JSON object, got {type(given).__name__}",
                           "see edgemod/runtime/normalizers/moderation-v1.json for the layout")
    for key in given:
        if key not in allowed:
            raise EdgemodError(f"{where}: unknown key '{key}'{did_you_mean(key, allowed)}",
                               f"allowed keys: {', '.join(sorted(allowed))}")
    missing = sorted(required - set(given))
    if missing:
        raise EdgemodError(f"{where}: missing key(s) {missing}", f"add {', '.join(missing)}")


def _code_point(text: str) -> int:
    """'U+200B' -> 0x200B."""
    if not re.fullmatch(r"U\+[0-9A-F]{4,6}", text):
        raise EdgemodError(f"bad code point '{text}'", "write code points as 'U+' and 4-6 upper-case hex digits")
    return int(text[2:], 16)


def _code_points(items: Iterable[str | list[str]]) -> list[int]:
    """Expand ['U+00AD', ['U+200B', 'U+200D']] to a list of code points (ranges are inclusive)."""
    out: list[int] = []
    for item in items:
        if isinstance(item, str):
            out.append(_code_point(item))
        else:
            first, last = (_code_point(x) for x in item)
            out.extend(range(first, last + 1))
    return out


def _class_body(code_points: Iterable[int]) -> str:
    return "".join(re.escape(chr(cp)) for cp in sorted(set(code_points)))


def _regex_class(code_points: Iterable[int]) -> str:
    return f"[{_class_body(code_points)}]"


def _portable_regex(pattern: str, where: str) -> re.Pattern[str]:
    bad = _NON_PORTABLE_REGEX.search(pattern)
    if bad:
        raise EdgemodError(f"{where}: regex construct '{bad.group()}' is outside the portable subset",
                           "use only classes, groups, alternation, greedy quantifiers and ^ $ (see 'conventions')")
    return re.compile(pattern)


# --- steps ---------------------------------------------------------------------------------------
# Each builder takes the step's parameters and returns a `str -> str` function. The prose rule
# each one implements is the step's "doc" in the spec; keep the two in sync.

_BUILDERS: dict[str, tuple[Callable[..., Step], set[str]]] = {}


def _step(name: str, required: Iterable[str] = ()):
    """Register a step builder under the name the spec uses; `required` are its parameters."""
    def register(builder: Callable[..., Step]) -> Callable[..., Step]:
        _BUILDERS[name] = (builder, set(required))
        return builder
    return register


def _build_step(index: int, entry: Mapping[str, Any]) -> Step:
    name = entry.get("step") if isinstance(entry, Mapping) else None
    if name not in _BUILDERS:
        known = sorted(_BUILDERS)
        raise EdgemodError(f"steps[{index}]: unknown step '{name}'{did_you_mean(str(name), known)}",
                           f"use one of: {', '.join(known)}")
    builder, params = _BUILDERS[name]
    _check_keys(f"steps[{index}] ({name})", entry, params | {"step"}, params | _STEP_META)
    return builder(**{k: v for k, v in entry.items() if k not in _STEP_META})


@_step("remove_invisible", required={"remove", "to_space"})
def _remove_invisible(remove: list, to_space: list) -> Step:
    table: dict[int, str | None] = {cp: None for cp in _code_points(remove)}
    table.update({cp: " " for cp in _code_points(to_space)})
    return lambda text: text.translate(table)


@_step("unicode_normalize", required={"form"})
def _unicode_normalize(form: str) -> Step:
    forms = ("NFC", "NFD", "NFKC", "NFKD")
    if form not in forms:
        raise EdgemodError(f"unknown Unicode normalization form '{form}'", f"use one of: {', '.join(forms)}")
    return lambda text: unicodedata.normalize(form, text)


# 'ascii' is absl::AsciiStrToLower, what MediaPipe Tasks' BERT text pre-processing runs on the phone.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_CASE_FOLDS: dict[str, Step] = {"full": str.casefold, "ascii": lambda text: text.translate(_ASCII_LOWER)}


@_step("case_fold", required={"mode"})
def _case_fold(mode: str) -> Step:
    if mode not in _CASE_FOLDS:
        raise EdgemodError(f"unknown case_fold mode '{mode}'{did_you_mean(str(mode), list(_CASE_FOLDS))}",
                           "use 'full' (Unicode full case folding, C+F) or 'ascii' (only A-Z -> a-z)")
    return _CASE_FOLDS[mode]


@_step("strip_marks_after", required={"bases", "marks"})
def _strip_marks_after(bases: list, marks: list) -> Step:
    pattern = re.compile(f"({_regex_class(_code_points(bases))}){_regex_class(_code_points(marks))}+")

    def strip(text: str) -> str:
        if text.isascii():  # nothing to decompose: the common case costs one C-level check
            return text
        # Decompose first so an accent that NFKC composed into its letter ("é") is a mark too.
        return unicodedata.normalize("NFC", pattern.sub(r"\1", unicodedata.normalize("NFD", text)))
    return strip


@_step("fold_homoglyphs", required={"table", "transparent", "scripts"})
def _fold_homoglyphs(table: list, transparent: list, scripts: list) -> Step:
    mapping = {chr(_code_point(row["from"])): row["to"] for row in table}
    keys, marks = _class_body(map(ord, mapping)), _class_body(_code_points(transparent))
    has_key = re.compile(f"[{keys}]")
    has_ascii_letter = re.compile("[a-z]")
    # A Cyrillic, Greek or Armenian letter that looks like no Latin letter: the text is
    # genuinely in that script, so its all-look-alike words ("как") are real words.
    genuine = re.compile(_regex_class(cp for cp in _code_points(scripts) if chr(cp) not in mapping))
    # Marks go with the key they sit on, so no accent is left on the Latin letter it becomes.
    key_and_marks = re.compile(f"([{keys}])[{marks}]*")
    token = re.compile("[^ ]+")

    def fold(text: str) -> str:
        return key_and_marks.sub(lambda m: mapping[m.group(1)], text)

    def fold_text(text: str) -> str:
        if not has_key.search(text):  # the common case: nothing to fold
            return text
        if not genuine.search(text):
            return token.sub(lambda m: fold(m.group()) if has_key.search(m.group()) else m.group(), text)
        return token.sub(lambda m: fold(m.group()) if has_ascii_letter.search(m.group()) else m.group(), text)
    return fold_text


@_step("fold_leet", required={"letters", "digits", "table", "keep_words"})
def _fold_leet(letters: str, digits: str, table: list, keep_words: list) -> Step:
    by_where: dict[str, dict[str, str]] = {where: {} for where in _LEET_PLACES}
    for row in table:
        if row["where"] not in by_where:
            raise EdgemodError(f"fold_leet: unknown where '{row['where']}'", f"use one of: {', '.join(_LEET_PLACES)}")
        by_where[row["where"]][row["from"]] = row["to"]
    anywhere, inside, between = (by_where[w] for w in _LEET_PLACES)
    letter_set, leet_set = set(letters), set(anywhere) | set(inside) | set(between)
    letter = _regex_class(map(ord, letters))
    word_char = _regex_class(map(ord, letters + digits + "".join(anywhere) + "".join(inside)))
    joint = _regex_class(map(ord, "".join(between)))
    # A word never starts or ends with a between-letters symbol: in "5pm!" the word is "5pm".
    word = re.compile(f"{word_char}+(?:{joint}+{word_char}+)*")
    inside_run = re.compile(f"(?<={letter}){_regex_class(map(ord, inside))}+(?={letter})")
    between_char = re.compile(f"(?<={letter}){joint}(?={letter})")
    keep = [_portable_regex(p, "fold_leet.keep_words") for p in keep_words]
    anywhere_table, inside_table = str.maketrans(anywhere), str.maketrans(inside)

    def fold_word(match: re.Match[str]) -> str:
        text = match.group()
        if leet_set.isdisjoint(text) or letter_set.isdisjoint(text) or any(p.fullmatch(text) for p in keep):
            return text
        text = text.translate(anywhere_table)
        text = inside_run.sub(lambda m: m.group().translate(inside_table), text)
        # re.sub tests every lookaround on the string as it was before this call, so all
        # between-letters symbols are decided at once and a second pass changes nothing.
        return between_char.sub(lambda m: between[m.group()], text)

    return lambda text: word.sub(fold_word, text)


@_step("join_spaced_letters", required={"letters", "separators", "boundary", "min_letters"})
def _join_spaced_letters(letters: str, separators: str, boundary: str, min_letters: int) -> Step:
    if min_letters < 2:
        raise EdgemodError(f"join_spaced_letters: min_letters={min_letters}", "use 2 or more")
    letter, sep, edge = (f"[{re.escape(s)}]" for s in (letters, separators, boundary))
    # One run uses one separator, so "f.r.e.e m.o.n.e.y" stays two words.
    run = re.compile(f"(?<!{edge}){letter}({sep}){letter}(?:\\1{letter}){{{min_letters - 2},}}(?!{edge})")
    return lambda text: run.sub(lambda m: m.group().replace(m.group(1), ""), text)


@_step("replace_patterns", required={"rules"})
def _replace_patterns(rules: list) -> Step:
    compiled = []
    for rule in rules:
        _check_keys("replace_patterns rule", rule, {"name", "pattern", "replacement", "token"},
                    {"name", "pattern", "replacement", "token"})
        pattern = _portable_regex(rule["pattern"], f"replace_patterns.{rule['name']}")
        if rule["token"] not in rule["replacement"]:
            raise EdgemodError(f"replace_patterns.{rule['name']}: token {rule['token']!r} is not in its replacement",
                               "set 'token' to the placeholder the replacement inserts")
        # $N is the group syntax of Java, ICU and ECMAScript; Python spells it \g<N>.
        replacement = re.sub(r"\$(\d)", r"\\g<\1>", rule["replacement"].replace("\\", "\\\\"))
        compiled.append((pattern, replacement))

    def replace(text: str) -> str:
        for pattern, replacement in compiled:
            text = pattern.sub(replacement, text)
        return text
    return replace


@_step("squash_repeats", required={"min_run", "keep", "except_chars"})
def _squash_repeats(min_run: int, keep: int, except_chars: str) -> Step:
    if not 1 <= keep < min_run:
        raise EdgemodError(f"squash_repeats: keep={keep}, min_run={min_run}", "need 1 <= keep < min_run")
    other = f"[^{re.escape(except_chars)}]" if except_chars else "[\\s\\S]"
    pattern = re.compile(f"({other})\\1{{{min_run - 1},}}")
    return lambda text: pattern.sub(lambda m: m.group(1) * keep, text)


@_step("collapse_whitespace")
def _collapse_whitespace() -> Step:
    spaces = re.compile(" {2,}")
    return lambda text: spaces.sub(" ", text).strip(" ")
