"""WordPiece tokenizer of text students: loading a saved folder and encoding texts to model inputs.

The HF tokenizer holds no normalizer of its own: the JSON normalizer (`normalizer.py`) runs first,
so a phone needs exactly three things to reproduce the ids: the normalizer spec, `vocab.txt` and
the standard WordPiece algorithm described in `tokenizer_spec.json`. Building a vocabulary is
training's job (`edgemod.training.text.tokenizer.train_wordpiece`).

Two pre-tokenizations (how a normalized text is cut into words before WordPiece):

- `bert`: HF's BertPreTokenizer (split on Unicode whitespace, every punctuation character a word).
  Placeholders of the normalizer (`<url>`) stay whole.
- `mediapipe_tasks`: exactly what MediaPipe Tasks' TextClassifier does on the phone for a BERT-style
  model (mediapipe/tasks/cc/text/tokenizers/bert_tokenizer.h, two RE2 regexes, then
  tensorflow_text's WordpieceTokenize), so the app hands Tasks the raw text and gets our ids. Use it
  with the `mediapipe-bert-v1` normalizer (ASCII lower-casing, the only normalization Tasks runs).
  Exact on every code point assigned in Unicode 14 (tests/test_tasks_tokenizer.py checks all of
  them and random text against a plain-Python model of Tasks). What can still differ: `\\p{P}` reads
  the Unicode tables of Oniguruma (HF) here and of RE2 in the Tasks build, so a punctuation
  character assigned in a Unicode version only one of them has may be cut differently. The word
  limit is bytes in Tasks and characters in HF; `encode` and `tokenize` apply the byte limit
  themselves, but the bare tokenizer.json (HF alone) keeps a 100-byte, at-most-100-character
  non-ASCII word (e.g. 51 'é') in pieces where Tasks gives [UNK].

Encoding convention (one, for every student): `[CLS] word pieces [SEP]`, truncated to keep the
first `max_length - 2` pieces, right-padded with `[PAD]` (id 0); the attention mask is 1 on
`[CLS]`, pieces and `[SEP]` and 0 on padding. Every row has at least two real tokens, so masked
pooling never divides by zero, and a CNN sees the text's start and end.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgemod.errors import EdgemodError, MissingDependencyError, did_you_mean
from edgemod.fsutil import atomic_path, sha256_file, write_json_atomic, write_text_atomic
from edgemod.runtime.normalizer import TextNormalizer, load_normalizer

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")  # ids 0, 1, 2, 3 in every vocabulary
PAD_ID, UNK_ID, CLS_ID, SEP_ID = range(4)
PREFIX = "##"
MAX_CHARS_PER_WORD = 100
# MediaPipe Tasks limits words by UTF-8 bytes (WordpieceTokenize max_bytes_per_token), HF by
# characters; `encode` applies the byte limit itself in that mode (see `_byte_limited_ids`).
MAX_BYTES_PER_WORD = 100
PRE_TOKENIZATIONS = ("bert", "mediapipe_tasks")
TASKS_NORMALIZER = "mediapipe-bert-v1"
DEFAULT_NORMALIZERS = {"bert": "moderation-v1", "mediapipe_tasks": TASKS_NORMALIZER}
# MediaPipe Tasks' RE2 delimiters: runs of whitespace are dropped, the rest become words of their own.
# RE2's \s is ASCII ([\t\n\f\r ], no \v) but Oniguruma's (HF tokenizers) is Unicode, so it is spelled out.
TASKS_DROPPED = r"[\t\n\f\r ]+"
TASKS_ISOLATED = (r"[!-/]|[:-@]|[\[-`]|[{-~]|[\p{P}]|[\x{4E00}-\x{9FFF}]|[\x{3400}-\x{4DBF}]|"
                  r"[\x{20000}-\x{2A6DF}]|[\x{2A700}-\x{2B73F}]|[\x{2B740}-\x{2B81F}]|[\x{2B820}-\x{2CEAF}]|"
                  r"[\x{F900}-\x{FAFF}]|[\x{2F800}-\x{2FA1F}]")
SPEC_FILE, VOCAB_FILE, HF_FILE, NORMALIZER_FILE = (
    "tokenizer_spec.json", "vocab.txt", "tokenizer.json", "normalizer.json")
FORMAT = "edgemod-wordpiece/1"


def hf_tokenizers():
    """The `tokenizers` package (imported on first use: only loading and training need it)."""
    try:
        import tokenizers
    except ImportError as err:
        raise MissingDependencyError("tokenizers", "a WordPiece tokenizer") from err
    return tokenizers


def pre_tokenizer(pre_tokenization: str = "bert") -> Any:
    """The HF pre-tokenizer of a pre-tokenization mode (`PRE_TOKENIZATIONS`)."""
    tk = hf_tokenizers()
    if pre_tokenization == "bert":
        return tk.pre_tokenizers.BertPreTokenizer()
    if pre_tokenization == "mediapipe_tasks":
        return tk.pre_tokenizers.Sequence([
            tk.pre_tokenizers.Split(tk.Regex(TASKS_DROPPED), behavior="removed"),
            tk.pre_tokenizers.Split(tk.Regex(TASKS_ISOLATED), behavior="isolated")])
    raise EdgemodError(f"unknown pre-tokenization '{pre_tokenization}'{did_you_mean(str(pre_tokenization), PRE_TOKENIZATIONS)}",
                       f"use one of: {', '.join(PRE_TOKENIZATIONS)}")


class WordPieceTokenizer:
    """Normalizer + WordPiece vocabulary: `encode(texts, max_length) -> (input_ids, attention_mask)`."""

    def __init__(self, hf_tokenizer: Any, normalizer: TextNormalizer, max_length: int = 64,
                 pre_tokenization: str = "bert"):
        self._hf = hf_tokenizer
        self.normalizer = normalizer
        self.max_length = _check_max_length(max_length)
        self.pre_tokenization = pre_tokenization
        _check_pre_tokenizer(hf_tokenizer, pre_tokenization, normalizer)
        _check_special_ids(self._hf.get_vocab(), normalizer.placeholders, "tokenizer")

    @property
    def vocab_size(self) -> int:
        return self._hf.get_vocab_size(with_added_tokens=True)

    @property
    def vocab(self) -> list[str]:
        """Tokens in id order (the lines of vocab.txt)."""
        vocab = self._hf.get_vocab()
        return sorted(vocab, key=vocab.__getitem__)

    @property
    def placeholders(self) -> dict[str, int]:
        """Normalizer placeholders (`<url>`, `<user>`) and their ids: always single tokens."""
        vocab = self._hf.get_vocab()
        return {token: vocab[token] for token in self.normalizer.placeholders}

    def tokenize(self, text: str, *, normalized: bool = False) -> list[str]:
        """Word pieces of one text, without [CLS]/[SEP] (for inspection)."""
        text = text if normalized else self.normalizer(text)
        ids = self._byte_limited_ids(text)
        if ids is not None:
            return [self._hf.id_to_token(i) for i in ids]
        return self._hf.encode(text, add_special_tokens=False).tokens

    def encode(self, texts: Sequence[str], max_length: int | None = None, *,
               normalized: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """int32 `input_ids` and `attention_mask`, each [len(texts), max_length].

        Args:
            texts: raw texts; they are normalized first unless `normalized=True` (the normalizer is
                idempotent, so normalizing twice is only slower, never different).
            max_length: row length including [CLS] and [SEP]; defaults to `self.max_length`.
        """
        length = _check_max_length(max_length or self.max_length)
        texts = list(texts) if normalized else self.normalizer.batch(texts)
        ids = np.full((len(texts), length), PAD_ID, dtype=np.int32)
        mask = np.zeros((len(texts), length), dtype=np.int32)
        for row, encoding in enumerate(self._hf.encode_batch_fast(texts, add_special_tokens=False)):
            piece_ids = self._byte_limited_ids(texts[row])
            pieces = [CLS_ID, *(encoding.ids if piece_ids is None else piece_ids)[: length - 2], SEP_ID]
            ids[row, : len(pieces)] = pieces
            mask[row, : len(pieces)] = 1
        return ids, mask

    def _byte_limited_ids(self, text: str) -> list[int] | None:
        """Piece ids under MediaPipe Tasks' byte limit, or None when HF's own ids are already those.

        HF WordPiece turns a word of more than MAX_CHARS_PER_WORD characters into [UNK]; Tasks does
        so above MAX_BYTES_PER_WORD UTF-8 bytes. Both agree on ASCII words, so only a non-ASCII text
        with a word of more than 100 bytes (but at most 100 characters) takes this slower path."""
        if (self.pre_tokenization != "mediapipe_tasks" or text.isascii()
                or len(text.encode("utf-8")) <= MAX_BYTES_PER_WORD):
            return None
        words = [word for word, _ in self._hf.pre_tokenizer.pre_tokenize_str(text)]
        if all(len(word.encode("utf-8")) <= MAX_BYTES_PER_WORD for word in words):
            return None
        return [i for word in words for i in (
            [UNK_ID] if len(word.encode("utf-8")) > MAX_BYTES_PER_WORD else [t.id for t in self._hf.model.tokenize(word)])]

    @property
    def spec(self) -> dict[str, Any]:
        """What a port needs besides vocab.txt and the normalizer spec (saved as tokenizer_spec.json)."""
        return {
            "format": FORMAT,
            "algorithm": "wordpiece",
            "vocab_file": VOCAB_FILE,
            "vocab_size": self.vocab_size,
            "unk_token": "[UNK]",
            "continuing_subword_prefix": PREFIX,
            "max_input_chars_per_word": MAX_CHARS_PER_WORD,
            "pre_tokenization": self.pre_tokenization,
            **(_TASKS_SPEC if self.pre_tokenization == "mediapipe_tasks" else {}),
            "special_tokens": {token: i for i, token in enumerate(SPECIAL_TOKENS)},
            "placeholders": self.placeholders,
            "lowercase": False,
            "normalizer": {"name": self.normalizer.name, "version": self.normalizer.version,
                           "sha256": self.normalizer.spec_sha256, "file": NORMALIZER_FILE},
            "encoding": {
                "max_length": self.max_length,
                "template": "[CLS] pieces [SEP]",
                "truncation": "keep the first max_length - 2 word pieces",
                "padding_side": "right",
                "pad_id": PAD_ID,
                "attention_mask": "1 for [CLS], word pieces and [SEP]; 0 for padding",
                "dtype": "int32",
            },
            "steps": _STEPS[self.pre_tokenization],
        }

    def save(self, folder: str | Path) -> Path:
        """Write tokenizer.json, vocab.txt, normalizer.json and tokenizer_spec.json into `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / HF_FILE) as tmp:
            self._hf.save(str(tmp))
        write_text_atomic(folder / VOCAB_FILE, "".join(f"{token}\n" for token in self.vocab))
        write_json_atomic(folder / NORMALIZER_FILE, self.normalizer.spec)
        spec = self.spec
        spec["vocab_sha256"] = sha256_file(folder / VOCAB_FILE)
        spec["tokenizers_version"] = hf_tokenizers().__version__
        write_json_atomic(folder / SPEC_FILE, spec)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> WordPieceTokenizer:
        """Load what `save` wrote; checks the normalizer hash and the vocab hash."""
        folder = Path(folder)
        if not (folder / SPEC_FILE).is_file():
            raise EdgemodError(f"{folder} has no {SPEC_FILE}", "pass the folder WordPieceTokenizer.save wrote")
        spec = json.loads((folder / SPEC_FILE).read_text(encoding="utf-8"))
        if spec.get("format") != FORMAT:
            raise EdgemodError(f"{folder / SPEC_FILE} has format {spec.get('format')!r}, expected {FORMAT!r}",
                               "re-create the tokenizer with this version of edgemod")
        if "vocab_sha256" in spec and sha256_file(folder / VOCAB_FILE) != spec["vocab_sha256"]:
            raise EdgemodError(f"{folder / VOCAB_FILE} does not match its sha256 in {SPEC_FILE}",
                               "the folder was edited: restore it from the artifact or retrain")
        normalizer = _load_saved_normalizer(folder, spec["normalizer"])
        hf = hf_tokenizers().Tokenizer.from_file(str(folder / HF_FILE))
        # Folders written before the mediapipe_tasks mode existed are all BERT pre-tokenization.
        return cls(hf, normalizer, spec["encoding"]["max_length"], spec.get("pre_tokenization", "bert"))

    def __repr__(self) -> str:
        return (f"WordPieceTokenizer(vocab_size={self.vocab_size}, max_length={self.max_length}, "
                f"normalizer={self.normalizer.name!r}, pre_tokenization={self.pre_tokenization!r})")


# What mediapipe_tasks adds to tokenizer_spec.json: the byte limit (it implies the character limit)
# and the two split regexes (Oniguruma/RE2 syntax; \x{...} is a code point).
_TASKS_SPEC = {"max_input_bytes_per_word": MAX_BYTES_PER_WORD,
               "split": {"drop": TASKS_DROPPED, "isolate": TASKS_ISOLATED}}
_WORDPIECE_STEP = ("WordPiece each word: a word longer than {limit} is [UNK]; otherwise take the longest vocab "
                   "entry that prefixes the rest of the word (after the first piece, entries carry the '##' "
                   "prefix); if no entry matches at some point, the whole word is [UNK].")
_TEMPLATE_STEP = "Apply the encoding template, truncation and padding."
_STEPS = {
    "bert": [
        "1. Normalize the text with the normalizer spec (its sha256 must match).",
        "2. Cut out every placeholder string wherever it occurs; each is one token with its id.",
        "3. Split the rest on whitespace, and make every punctuation character (ASCII "
        "punctuation or Unicode category P*) a word of its own (BERT pre-tokenization).",
        "4. " + _WORDPIECE_STEP.format(limit="max_input_chars_per_word"),
        "5. " + _TEMPLATE_STEP,
    ],
    "mediapipe_tasks": [
        "1. Normalize the text with the normalizer spec (its sha256 must match); mediapipe-bert-v1 only "
        "lower-cases ASCII A-Z, which MediaPipe Tasks itself does (absl::AsciiStrToLower), so a Tasks "
        "TextClassifier needs the raw text.",
        "2. Split as MediaPipe Tasks' BertTokenizer does (RE2): drop every run of ASCII whitespace "
        "(U+0009, U+000A, U+000C, U+000D, U+0020 only: U+000B, U+00A0, U+3000 and other spaces stay "
        "inside words), and make every ASCII punctuation character (!-/ :-@ [-` {-~), every Unicode "
        "punctuation character (category P*) and every CJK ideograph (U+4E00-9FFF, U+3400-4DBF, "
        "U+20000-2A6DF, U+2A700-2B73F, U+2B740-2B81F, U+2B820-2CEAF, U+F900-FAFF, U+2F800-2FA1F) a word "
        "of its own. There are no placeholders and no other special handling.",
        "3. " + _WORDPIECE_STEP.format(limit="max_input_bytes_per_word UTF-8 bytes") + " (tensorflow_text "
        "WordpieceTokenize: suffix indicator '##', unknown token [UNK], split_unknown_chars false).",
        "4. " + _TEMPLATE_STEP + " MediaPipe Tasks builds the same [CLS] pieces [SEP] rows, padded with id 0.",
    ],
}


def _load_saved_normalizer(folder: Path, recorded: dict[str, Any]) -> TextNormalizer:
    path = folder / recorded.get("file", NORMALIZER_FILE)
    normalizer = TextNormalizer.from_spec(path) if path.is_file() else load_normalizer(recorded["name"])
    if normalizer.spec_sha256 != recorded["sha256"]:
        raise EdgemodError(
            f"normalizer '{recorded['name']}' has sha256 {normalizer.spec_sha256[:12]}…, but the tokenizer "
            f"in {folder} was trained with {recorded['sha256'][:12]}…",
            f"restore {path.name} from the artifact; a different normalizer needs a retrained tokenizer")
    return normalizer


def _check_max_length(max_length: int) -> int:
    if not isinstance(max_length, int) or max_length < 3:
        raise EdgemodError(f"max_length={max_length!r} leaves no room for text between [CLS] and [SEP]",
                           "use an int of at least 3 (students use 32-128)")
    return max_length


def _check_pre_tokenizer(hf: Any, pre_tokenization: str, normalizer: TextNormalizer) -> None:
    """The HF tokenizer (e.g. a loaded tokenizer.json) cuts words the way its mode says."""
    expected = pre_tokenizer(pre_tokenization)
    if hf.pre_tokenizer is None or hf.pre_tokenizer.__getstate__() != expected.__getstate__():
        raise EdgemodError(f"tokenizer.json's pre-tokenizer is not the '{pre_tokenization}' one recorded in {SPEC_FILE}",
                           "the folder was edited: restore it from the artifact or retrain")
    if pre_tokenization == "mediapipe_tasks" and normalizer.placeholders:
        raise EdgemodError(f"normalizer '{normalizer.name}' inserts placeholders {normalizer.placeholders}, which "
                           "MediaPipe Tasks would cut into punctuation and letters",
                           f"use the '{TASKS_NORMALIZER}' normalizer with the mediapipe_tasks pre-tokenization")


def _check_special_ids(vocab: dict[str, int], placeholders: list[str], where: str) -> None:
    for expected, token in enumerate(SPECIAL_TOKENS):
        if vocab.get(token) != expected:
            raise EdgemodError(f"{where}: {token} has id {vocab.get(token)}, expected {expected}",
                               "train the tokenizer with train_wordpiece, which fixes these ids")
    missing = [p for p in placeholders if p not in vocab]
    if missing:
        raise EdgemodError(f"{where}: placeholders {missing} of the normalizer are not in the vocabulary",
                           "train the tokenizer with the same normalizer it is used with")
