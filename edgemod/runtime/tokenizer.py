"""WordPiece tokenizer of text students: loading a saved folder and encoding texts to model inputs.

The HF tokenizer holds no normalizer of its own: the JSON normalizer (`normalizer.py`) runs first,
so a phone needs exactly three things to reproduce the ids: the normalizer spec, `vocab.txt` and
the standard WordPiece algorithm described in `tokenizer_spec.json`. Building a vocabulary is
training's job (`edgemod.training.text.tokenizer.train_wordpiece`).

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

from edgemod.errors import EdgemodError, MissingDependencyError
from edgemod.fsutil import atomic_path, sha256_file, write_json_atomic, write_text_atomic
from edgemod.runtime.normalizer import TextNormalizer, load_normalizer

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")  # ids 0, 1, 2, 3 in every vocabulary
PAD_ID, UNK_ID, CLS_ID, SEP_ID = range(4)
PREFIX = "##"
MAX_CHARS_PER_WORD = 100
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


class WordPieceTokenizer:
    """Normalizer + WordPiece vocabulary: `encode(texts, max_length) -> (input_ids, attention_mask)`."""

    def __init__(self, hf_tokenizer: Any, normalizer: TextNormalizer, max_length: int = 64):
        self._hf = hf_tokenizer
        self.normalizer = normalizer
        self.max_length = _check_max_length(max_length)
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
        return self._hf.encode(text if normalized else self.normalizer(text), add_special_tokens=False).tokens

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
            pieces = [CLS_ID, *encoding.ids[: length - 2], SEP_ID]
            ids[row, : len(pieces)] = pieces
            mask[row, : len(pieces)] = 1
        return ids, mask

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
            "steps": [
                "1. Normalize the text with the normalizer spec (its sha256 must match).",
                "2. Cut out every placeholder string wherever it occurs; each is one token with its id.",
                "3. Split the rest on whitespace, and make every punctuation character (ASCII "
                "punctuation or Unicode category P*) a word of its own (BERT pre-tokenization).",
                "4. WordPiece each word: a word longer than max_input_chars_per_word is [UNK]; "
                "otherwise take the longest vocab entry that prefixes the rest of the word (after "
                "the first piece, entries carry the '##' prefix); if no entry matches at some "
                "point, the whole word is [UNK].",
                "5. Apply the encoding template, truncation and padding.",
            ],
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
        return cls(hf, normalizer, spec["encoding"]["max_length"])

    def __repr__(self) -> str:
        return (f"WordPieceTokenizer(vocab_size={self.vocab_size}, max_length={self.max_length}, "
                f"normalizer={self.normalizer.name!r})")


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


def _check_special_ids(vocab: dict[str, int], placeholders: list[str], where: str) -> None:
    for expected, token in enumerate(SPECIAL_TOKENS):
        if vocab.get(token) != expected:
            raise EdgemodError(f"{where}: {token} has id {vocab.get(token)}, expected {expected}",
                               "train the tokenizer with train_wordpiece, which fixes these ids")
    missing = [p for p in placeholders if p not in vocab]
    if missing:
        raise EdgemodError(f"{where}: placeholders {missing} of the normalizer are not in the vocabulary",
                           "train the tokenizer with the same normalizer it is used with")
