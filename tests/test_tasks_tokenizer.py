"""`pre_tokenization="mediapipe_tasks"`: ids identical to MediaPipe Tasks' TextClassifier (BERT path).

The reference below is written from the Tasks algorithm itself, in plain Python, independent of HF
tokenizers and of the regexes in `edgemod.runtime.tokenizer`:
absl::AsciiStrToLower; RE2 split on `\\s+` (ASCII: [\\t\\n\\f\\r ]) dropped and ASCII punctuation,
Unicode P* and CJK ideographs kept as words of their own; tensorflow_text WordpieceTokenize
(max_bytes_per_token 100, '##', [UNK] for a word that cannot be fully tokenized); `[CLS] pieces [SEP]`,
truncated, padded with 0. Where mediapipe is installed, the last test also asks real MediaPipe Tasks
which ids it feeds a model.
"""
from __future__ import annotations

import json
import random
import unicodedata

import numpy as np
import pytest
from test_text_preprocessing import real_texts

from edgemod.errors import EdgemodError
from edgemod.runtime.normalizer import load_normalizer
from edgemod.runtime.tokenizer import WordPieceTokenizer, pre_tokenizer
from edgemod.training.text.tokenizer import train_wordpiece

ASCII_WHITESPACE = "\t\n\f\r "  # RE2's \s
CJK_RANGES = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
              (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]
MAX_BYTES = 100

TRICKY = [
    "Hello, World!! (really?) don't; a-b_c/d", "«Quoted» — dash… ¿Qué? ¡Sí! 「括弧」、。", "x\u00a0y  z\u3000w",
    "e\u200bf g\u200dh i\u2060j so\u00adft", "tab\there\nline\r\nform\ffeed vertical\u000btab", "中文字符 mixed中文text 㐀𠀀",
    "ÀБ ÉCOLE ÇA İSTANBUL \u212aELVIN", "НЕLLО Ρ\u0391Υ ＡＢＣ", "a" * 100, "a" * 101, "é" * 50, "é" * 51 + " ok",
    "😂😂 lol👍🏽 ok🔥!", "$5 €10 x² 3.5 10:30 @user #tag <url>", "ひらがな カタカナー 한국어 العربية؟",
    "line\u2028sep para\u2029sep", "", "   ", "!!!", "[CLS] [UNK] [SEP]", "naïve café résumé",
    "h4te h@te ha\u200bte h a t e", "\u0430\u0441\u0435 latin", "end.", "ǅ ǈ ß ẞ",
]


def ascii_lower(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def is_isolated(char: str) -> bool:
    code = ord(char)
    return (0x21 <= code <= 0x2F or 0x3A <= code <= 0x40 or 0x5B <= code <= 0x60 or 0x7B <= code <= 0x7E
            or unicodedata.category(char).startswith("P") or any(lo <= code <= hi for lo, hi in CJK_RANGES))


def tasks_words(text: str) -> list[str]:
    words, current = [], ""
    for char in text:
        if char in ASCII_WHITESPACE or is_isolated(char):
            if current:
                words.append(current)
            current = ""
            if char not in ASCII_WHITESPACE:
                words.append(char)
        else:
            current += char
    return words + [current] if current else words


def tasks_wordpiece(word: str, vocab: dict[str, int]) -> list[str]:
    if len(word.encode("utf-8")) > MAX_BYTES:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(word):
        for end in range(len(word), start, -1):  # longest match first
            piece = ("##" if start else "") + word[start:end]
            if piece in vocab:
                break
        else:
            return ["[UNK]"]
        pieces.append(piece)
        start = end
    return pieces


def tasks_encode(text: str, vocab: dict[str, int], length: int) -> tuple[list[int], list[int]]:
    pieces = [p for word in tasks_words(ascii_lower(text)) for p in tasks_wordpiece(word, vocab)]
    tokens = ["[CLS]", *pieces[: length - 2], "[SEP]"]
    return [vocab[t] for t in tokens] + [0] * (length - len(tokens)), [1] * len(tokens) + [0] * (length - len(tokens))


@pytest.fixture(scope="module")
def tokenizer() -> WordPieceTokenizer:
    corpus = real_texts(300) + TRICKY * 3 + ["é ée éé " * 5, "a aa aaa " * 5]
    return train_wordpiece(corpus, vocab_size=800, min_frequency=1, max_length=40, pre_tokenization="mediapipe_tasks")


def fuzz_texts(n: int, seed: int = 0) -> list[str]:
    pool = list("aAbBzZ09 \t\n\f\r\u000b!-/:@[`{~_'\"") + list("\u00a0\u3000\u2003\u200b\u00ad«»—…¿¡、。「」؟·•‘’“”") + \
        list("中文字㐀\U00020000\uf900ひカ한éÀБНΡ²€$😂👍🏽") + ["hate", "ok", "the", "you"]
    rng = random.Random(seed)
    return ["".join(rng.choice(pool) for _ in range(rng.randint(0, 40))) for _ in range(n)]


def test_uses_the_tasks_normalizer_by_default(tokenizer):
    assert tokenizer.normalizer.name == "mediapipe-bert-v1" and tokenizer.pre_tokenization == "mediapipe_tasks"
    assert tokenizer.placeholders == {}


@pytest.mark.parametrize("text", TRICKY, ids=range(len(TRICKY)))
def test_matches_the_tasks_reference_on_tricky_text(tokenizer, text):
    vocab = {token: i for i, token in enumerate(tokenizer.vocab)}
    ids, mask = tokenizer.encode([text], 40)
    assert (ids[0].tolist(), mask[0].tolist()) == tasks_encode(text, vocab, 40)


def test_matches_the_tasks_reference_on_real_and_random_text(tokenizer):
    vocab = {token: i for i, token in enumerate(tokenizer.vocab)}
    texts = real_texts(400)[300:] + fuzz_texts(600)
    ids, mask = tokenizer.encode(texts, 24)
    for text, row, row_mask in zip(texts, ids.tolist(), mask.tolist()):
        assert (row, row_mask) == tasks_encode(text, vocab, 24), text


def test_words_are_cut_like_tasks():
    words = [w for w, _ in pre_tokenizer("mediapipe_tasks").pre_tokenize_str("Don't\u00a0go! 中文 x\u000by\u200bz")]
    assert words == ["Don", "'", "t\u00a0go", "!", "中", "文", "x\u000by\u200bz"]


def test_word_limit_is_100_utf8_bytes(tokenizer):
    assert tokenizer.tokenize("a" * 100) != ["[UNK]"] and tokenizer.tokenize("a" * 101) == ["[UNK]"]
    assert tokenizer.tokenize("é" * 50) != ["[UNK]"]  # 100 bytes
    assert tokenizer.tokenize("é" * 51 + " ok") == ["[UNK]", *tokenizer.tokenize("ok")]  # 102 bytes in 51 characters


def test_every_code_point_is_cut_like_tasks():
    """Dropped, a word of its own, or inside a word: the regexes agree with the reference on every code
    point assigned in Python's Unicode version (newer code points may differ: see the tokenizer docs)."""
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and unicodedata.category(chr(c)) != "Cn"]
    text = "a" + "a".join(chars) + "a"  # chars[n] sits at offset 2n + 1
    covered, alone = bytearray(len(text)), set()
    for _, (start, end) in pre_tokenizer("mediapipe_tasks").pre_tokenize_str(text):
        covered[start:end] = b"\x01" * (end - start)
        if end - start == 1:
            alone.add(start)

    def kind(char: str) -> str:
        return "dropped" if char in ASCII_WHITESPACE else "alone" if is_isolated(char) else "in word"

    wrong = []
    for n, char in enumerate(chars):
        at = 2 * n + 1
        got = "dropped" if not covered[at] else "alone" if at in alone else "in word"
        if char != "a" and got != kind(char):
            wrong.append((hex(ord(char)), got, kind(char)))
    assert not wrong, wrong[:20]


def test_save_load_round_trip_keeps_the_mode(tokenizer, tmp_path):
    folder = tokenizer.save(tmp_path / "tok")
    spec = json.loads((folder / "tokenizer_spec.json").read_text(encoding="utf-8"))
    assert spec["pre_tokenization"] == "mediapipe_tasks" and spec["max_input_bytes_per_word"] == 100
    assert spec["normalizer"]["name"] == "mediapipe-bert-v1" and spec["placeholders"] == {}
    assert "ASCII whitespace" in spec["steps"][1] and "UTF-8 bytes" in spec["steps"][2]
    assert spec["split"]["drop"] == "[\\t\\n\\f\\r ]+"
    hf = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    assert [p["behavior"] for p in hf["pre_tokenizer"]["pretokenizers"]] == ["Removed", "Isolated"]
    loaded = WordPieceTokenizer.load(folder)
    assert loaded.pre_tokenization == "mediapipe_tasks"
    texts = TRICKY + fuzz_texts(100, seed=1)
    for a, b in zip(tokenizer.encode(texts), loaded.encode(texts)):
        assert (a == b).all()


def test_load_refuses_a_pre_tokenizer_that_is_not_the_recorded_one(tokenizer, tmp_path):
    folder = tokenizer.save(tmp_path / "tok")
    hf = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    hf["pre_tokenizer"] = {"type": "BertPreTokenizer"}
    (folder / "tokenizer.json").write_text(json.dumps(hf), encoding="utf-8")
    with pytest.raises(EdgemodError, match="pre-tokenizer"):
        WordPieceTokenizer.load(folder)


def test_bert_mode_records_its_mode(tmp_path):
    bert = train_wordpiece(["some text here, and more text"] * 5, vocab_size=100, min_frequency=1)
    spec = json.loads((bert.save(tmp_path / "tok") / "tokenizer_spec.json").read_text(encoding="utf-8"))
    assert spec["pre_tokenization"] == "bert" and "max_input_bytes_per_word" not in spec
    assert "placeholder" in spec["steps"][1]


def test_placeholders_do_not_mix_with_tasks_mode():
    with pytest.raises(EdgemodError, match="mediapipe-bert-v1"):
        train_wordpiece(["some text"] * 5, vocab_size=100, normalizer="moderation-v1", pre_tokenization="mediapipe_tasks")
    with pytest.raises(EdgemodError, match="did you mean 'mediapipe_tasks'"):
        train_wordpiece(["some text"], vocab_size=100, pre_tokenization="mediapipe_task")
    assert load_normalizer("mediapipe-bert-v1").placeholders == []


def test_real_mediapipe_tasks_feeds_the_same_ids(tokenizer, tmp_path):
    """The oracle: a Tasks-ready model whose scores are the ids and mask Tasks fed it
    (`ids + 10000 * mask`), run by MediaPipe Tasks' TextClassifier on the raw texts (~15 s)."""
    pytest.importorskip("mediapipe")
    from types import SimpleNamespace

    import torch

    from edgemod.export.mediapipe_tasks import add_tasks_metadata
    from edgemod.export.tflite import export_tflite
    from edgemod.runtime.tasks_check import tasks_scores
    from edgemod.runtime.tasks_layout import text_layout

    class Ids(torch.nn.Module):
        def forward(self, input_ids, attention_mask, token_type_ids):
            return input_ids.float() + 10000.0 * attention_mask.float() + 0.0 * token_type_ids.float()

    length, layout = tokenizer.max_length, text_layout()
    tokenizer.save(tmp_path / "tokenizer")
    path = export_tflite(Ids().eval(), {name: np.zeros((1, length), np.int32) for name in layout["inputs"]},
                         tuple(layout["inputs"]), tmp_path / "ids.tflite")
    labels = [f"position_{i}" for i in range(length)]
    add_tasks_metadata(path, SimpleNamespace(labels=labels, run_dir=tmp_path, is_text=True), layout)
    texts = TRICKY + real_texts(400)[300:] + fuzz_texts(300, seed=3)
    ids, mask = tokenizer.encode(texts, length)
    fed = tasks_scores(path, "text", labels, texts).astype(np.int64)
    wrong = [text for text, row, expected in zip(texts, fed, ids + 10000 * mask) if not np.array_equal(row, expected)]
    assert not wrong, wrong[:5]
