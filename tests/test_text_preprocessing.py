"""Text normalizer (portable JSON spec) and WordPiece tokenizer."""
from __future__ import annotations

import csv
import json
import os
import time
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from edgemod.catalog import DATA_DIR_ENV
from edgemod.errors import EdgemodError
from edgemod.runtime.normalizer import SPEC_DIR, TextNormalizer, available_normalizers, load_normalizer
from edgemod.runtime.tokenizer import SPECIAL_TOKENS, WordPieceTokenizer
from edgemod.training.text.tokenizer import train_wordpiece

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get(DATA_DIR_ENV) or ROOT / "../shared/data").resolve() / "text"
SPEC_PATH = SPEC_DIR / "moderation-v1.json"
NORMALIZER = load_normalizer()
GOLDEN = NORMALIZER.golden
SPECS = {name: load_normalizer(name) for name in available_normalizers()}  # every shipped spec
ALL_GOLDEN = [(name, case) for name, spec in SPECS.items() for case in spec.golden]


def real_texts(n_per_file: int) -> list[str]:
    """The first texts of OLID (tweets) and SMS spam: real spelling, emoji, URLs, mentions."""
    texts: list[str] = []
    for path in (DATA / "olid" / "olid.csv", DATA / "sms_spam" / "sms_spam.csv"):
        if not path.is_file():
            pytest.skip(f"shared data {path} is not present")
        with path.open(newline="", encoding="utf-8") as handle:
            rows = csv.DictReader(handle)
            texts += [row["text"] for _, row in zip(range(n_per_file), rows)]
    return texts


def spec_with(**changes) -> dict:
    spec = NORMALIZER.spec
    spec.update(changes)
    return spec


# --- the spec and its golden examples ------------------------------------------------------------

@pytest.mark.parametrize(("name", "case"), ALL_GOLDEN,
                         ids=[f"{name}:{i}:{c['note'][:40]}" for i, (name, c) in enumerate(ALL_GOLDEN)])
def test_golden_example(name, case):
    assert SPECS[name](case["input"]) == case["output"]


@pytest.mark.parametrize("name", SPECS)
def test_golden_examples_cover_every_step(name):
    golden = SPECS[name].golden
    assert len(golden) >= min(40, 10 * len(SPECS[name].spec["steps"]))
    notes = " ".join(case["note"] for case in golden)
    missing = {step["step"] for step in SPECS[name].spec["steps"]} - {w.strip(":,+") for w in notes.split()}
    assert not missing, f"no golden example names these steps: {missing}"


@pytest.mark.parametrize("name", SPECS)
def test_golden_outputs_are_fixed_points(name):
    for case in SPECS[name].golden:
        assert SPECS[name](case["output"]) == case["output"], case


def test_shipped_specs_include_the_mediapipe_one():
    assert {"moderation-v1", "mediapipe-bert-v1"} <= set(SPECS)
    spec = SPECS["mediapipe-bert-v1"].spec
    assert [(s["step"], s["mode"]) for s in spec["steps"]] == [("case_fold", "ascii")]
    assert all(spec.get(key) for key in ("description", "conventions", "golden"))


def test_ascii_case_fold_is_a_bytewise_ascii_lowercase():
    """What absl::AsciiStrToLower does to UTF-8: only A-Z change, on every code point."""
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    assert SPECS["mediapipe-bert-v1"](text) == text.encode("utf-8").lower().decode("utf-8")


def test_spec_is_plain_portable_data():
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    assert spec["name"] == "moderation-v1" and "moderation-v1" in available_normalizers()
    assert [s["step"] for s in spec["steps"]] == [
        "remove_invisible", "unicode_normalize", "collapse_whitespace", "case_fold", "strip_marks_after",
        "fold_homoglyphs", "fold_leet", "join_spaced_letters", "replace_patterns", "squash_repeats"]
    assert all(step.get("doc") for step in spec["steps"]), "every step carries its prose rule for the ports"
    assert spec["steps"][3]["mode"] == "full" and "CaseFolding.txt" in spec["steps"][3]["doc"]


@pytest.mark.parametrize("name", SPECS)
def test_spec_file_hides_no_characters(name):
    """Look-alike and invisible characters are written as \\u escapes; only emoji appear as-is."""
    raw = (SPEC_DIR / f"{name}.json").read_text(encoding="utf-8")
    shown = {c for c in raw if not c.isascii()}
    assert all(unicodedata.category(c) == "So" and ord(c) >= 0x2600 for c in shown), shown


def test_homoglyph_table_rows_are_consistent():
    table = next(s for s in NORMALIZER.spec["steps"] if s["step"] == "fold_homoglyphs")["table"]
    for row in table:
        char = chr(int(row["from"][2:], 16))
        assert unicodedata.name(char) == row["name"], row
        # The step runs on NFKC, case-folded text: a key outside that form could never match.
        assert char.casefold() == char == unicodedata.normalize("NFKC", char), row
        assert row["to"].isascii() and row["to"].islower(), row


def test_spec_sha256_is_canonical():
    from_dict = TextNormalizer.from_spec(json.loads(SPEC_PATH.read_text(encoding="utf-8")))
    assert from_dict.spec_sha256 == NORMALIZER.spec_sha256 == load_normalizer().spec_sha256
    changed = TextNormalizer.from_spec(spec_with(version="9.9.9"))
    assert changed.spec_sha256 != NORMALIZER.spec_sha256
    assert NORMALIZER.placeholders == ["<url>", "<user>"]


# --- behaviour -----------------------------------------------------------------------------------

def test_idempotent_on_real_texts():
    texts = real_texts(100_000)  # every row of both files, about 20k texts
    once = NORMALIZER.batch(texts)
    assert NORMALIZER.batch(once) == once
    assert all("  " not in t and t == t.strip(" ") for t in once)


@pytest.mark.parametrize("text", ["2", "9", "10:30", "3.5", "1000000", "$20", "+44 7700 900123",
                                  "2nd", "5pm", "10:30pm", "2019", "4 u", "24/7", "$5k", "50%"])
def test_numbers_and_times_are_preserved(text):
    assert NORMALIZER(f"meet at {text} ok") == f"meet at {text} ok"


def test_emoji_are_kept():
    assert NORMALIZER("great 😂👍🏽 🔥") == "great 😂👍🏽 🔥"
    assert NORMALIZER("love ❤️") == "love ❤"  # only the invisible variation selector goes
    assert NORMALIZER("😂😂😂😂😂") == "😂😂"


@pytest.mark.parametrize("hidden", ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u200e",
                                    "\u200f", "\u202e", "\u2066", "\u2069", "\u061c", "\ufe0f", "\U000e0041"])
def test_zero_width_and_format_characters_are_removed(hidden):
    assert NORMALIZER(f"he{hidden}llo wo{hidden}{hidden}rld") == "hello world"


def test_control_characters():
    assert NORMALIZER("one\ttwo\nthree\r\nfour\x0bfive\u2028six") == "one two three four five six"
    assert NORMALIZER("bad\x00\x07\x1bword") == "badword"


CYRILLIC = "\u0430\u0435\u043e\u0440\u0441\u0445\u0443\u0456"  # а е о р с х у і
GREEK = "\u03bf\u03b1\u03b5\u03b9\u03ba\u03bd\u03c1\u03c4\u03c5\u03c7"  # ο α ε ι κ ν ρ τ υ χ


@pytest.mark.parametrize("look_alike, latin", [*zip(CYRILLIC, "aeopcxyi"),
                                               *zip(GREEK, "oaeikvptux")])
def test_homoglyphs_fold_in_latin_words(look_alike, latin):
    assert NORMALIZER(f"w{look_alike}rd") == f"w{latin}rd"


def test_homoglyphs_leave_real_cyrillic_and_greek_alone():
    assert NORMALIZER("Привет, как дела?") == "привет, как дела?"
    assert NORMALIZER("Ελληνικά κείμενα") == "ελληνικά κείμενα"  # case-folded, accents kept
    assert NORMALIZER("\u0440\u0430\u0443\u0440\u0430l") == "paypal"  # look-alikes + one Latin letter
    assert NORMALIZER("\u0441\u043e\u0441\u043e") == "coco"  # look-alikes only


@pytest.mark.parametrize("text, expected", [
    ("n00b", "noob"), ("h4x0r", "haxor"), ("c00l", "cool"), ("l33t", "leet"), ("ca$h", "cash"),
    ("sh!ny", "shiny"), ("h@ppy", "happy"), ("h€llo", "hello"),
    ("b4", "b4"), ("4u", "4u"), ("mp3", "mp3"), ("covid19", "covid19"), ("100%", "100%"), ("$5k", "$5k"),
    ("wow!!", "wow!!"), ("hi!", "hi!"),
])
def test_leetspeak(text, expected):
    assert NORMALIZER(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("f r e e", "free"), ("f.r.e.e", "free"), ("f-r-e-e", "free"), ("f_r_e_e", "free"),
    ("f.r.e.e m.o.n.e.y", "free money"), ("a b", "a b"), ("is a b c ok", "is abc ok"),
    ("soooo", "soo"), ("noooo!!!!", "noo!!"), ("hahaha", "hahaha"),
])
def test_spaced_letters_and_repeats(text, expected):
    assert NORMALIZER(text) == expected


def test_urls_and_mentions_become_placeholders():
    assert NORMALIZER("@USER look https://t.co/AbC123 or www.example.com!") == "<user> look <url> or <url>"
    assert NORMALIZER("mail a@b.com") == "mail aab.com"  # @ between letters is leet, not a mention
    assert NORMALIZER("@a_1@b_2 @c hi") == "<user> <user> hi"  # back-to-back mentions: one placeholder
    assert NORMALIZER("see https://example.com/😂") == "see <url>😂"


def test_batch_and_type_errors():
    assert NORMALIZER.batch(["A", "b\u200b"]) == ["a", "b"]
    with pytest.raises(EdgemodError, match="takes str"):
        NORMALIZER(None)


def test_fast_enough_for_a_training_set():
    texts = real_texts(2500) * 2  # ~10k texts; 60k must take seconds
    start = time.perf_counter()
    NORMALIZER.batch(texts)
    per_text = (time.perf_counter() - start) / len(texts)
    assert per_text < 200e-6, f"{per_text * 1e6:.0f} us per text"


# --- spec errors ---------------------------------------------------------------------------------

def test_unknown_step_says_did_you_mean():
    spec = NORMALIZER.spec
    spec["steps"][1]["step"] = "unicode_normalise"
    with pytest.raises(EdgemodError) as err:
        TextNormalizer.from_spec(spec)
    assert "did you mean 'unicode_normalize'" in str(err.value)
    assert "fold_leet" in err.value.hint and "case_fold" in err.value.hint


def test_unknown_case_fold_mode():
    steps = [{"step": "case_fold", "mode": "asci"}]
    with pytest.raises(EdgemodError, match="did you mean 'ascii'"):
        TextNormalizer.from_spec(spec_with(steps=steps))


def test_unknown_and_missing_parameters():
    spec = NORMALIZER.spec
    spec["steps"][1]["from"] = spec["steps"][1].pop("form")
    with pytest.raises(EdgemodError, match="unknown key 'from'.*did you mean 'form'"):
        TextNormalizer.from_spec(spec)
    spec = NORMALIZER.spec
    del spec["steps"][3]["mode"]
    with pytest.raises(EdgemodError, match="missing key"):
        TextNormalizer.from_spec(spec)


def test_non_portable_regex_is_rejected():
    spec = NORMALIZER.spec
    rules = next(s for s in spec["steps"] if s["step"] == "replace_patterns")["rules"]
    rules[0]["pattern"] = r"(?<=\s)https?://\S+"
    with pytest.raises(EdgemodError, match="portable subset"):
        TextNormalizer.from_spec(spec)


def test_missing_spec_and_unknown_name(tmp_path):
    with pytest.raises(EdgemodError, match="did you mean 'moderation-v1'"):
        load_normalizer("moderation-v2")
    with pytest.raises(EdgemodError, match="does not exist"):
        TextNormalizer.from_spec(tmp_path / "nope.json")


@pytest.mark.slow
def test_idempotent_on_every_code_point():
    """Minutes: every assigned code point, alone and in small contexts."""
    for cp in range(0x110000):
        char = chr(cp)
        if 0xD800 <= cp <= 0xDFFF or unicodedata.category(char) == "Cn":
            continue
        for text in (char, f"a{char}b", char * 3, f"x {char} y", f"\u0391{char}", f"{char}\u0301"):
            once = NORMALIZER(text)
            assert NORMALIZER(once) == once, (hex(cp), text)


# --- tokenizer -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return real_texts(1000)


@pytest.fixture(scope="module")
def tokenizer(corpus) -> WordPieceTokenizer:
    return train_wordpiece(corpus, vocab_size=1000, normalizer=NORMALIZER, min_frequency=2, max_length=32)


def test_vocab_within_requested_size_with_fixed_special_ids(tokenizer):
    assert 500 < tokenizer.vocab_size <= 1000
    assert tokenizer.vocab_size == len(tokenizer.vocab)
    assert tuple(tokenizer.vocab[:4]) == SPECIAL_TOKENS
    assert tokenizer.placeholders == {"<url>": 4, "<user>": 5}


def test_training_is_deterministic(corpus, tokenizer):
    again = train_wordpiece(corpus, vocab_size=1000, normalizer="moderation-v1")
    assert again.vocab == tokenizer.vocab


def test_encode_shapes_padding_and_truncation(tokenizer):
    texts = ["hello there", "", "word " * 100]
    ids, mask = tokenizer.encode(texts, 16)
    assert ids.shape == mask.shape == (3, 16) and ids.dtype == mask.dtype == np.int32
    assert (ids[:, 0] == 2).all()  # [CLS]
    lengths = mask.sum(axis=1)
    assert lengths[1] == 2 and list(ids[1, :2]) == [2, 3]  # empty text: [CLS] [SEP]
    assert lengths[2] == 16 and ids[2, -1] == 3  # truncated, still ends with [SEP]
    for row, row_mask, n in zip(ids, mask, lengths):
        assert row[n - 1] == 3 and (row[n:] == 0).all()  # [SEP], then right padding with [PAD]
        assert (row_mask == (np.arange(16) < n)).all()
    assert tokenizer.encode(texts)[0].shape == (3, 32)  # the tokenizer's own max_length


def test_placeholders_are_single_tokens(tokenizer):
    assert tokenizer.tokenize("@USER see https://example.com/a?b=1 now") == ["<user>", "see", "<url>", "now"]
    ids, _ = tokenizer.encode(["@someone"], 8)
    assert list(ids[0, :3]) == [2, 5, 3]


def test_out_of_vocabulary_words(tokenizer):
    pieces = tokenizer.tokenize("zqxjvbwk")
    assert pieces == ["[UNK]"] or (len(pieces) > 1 and all(p.startswith("##") for p in pieces[1:]))
    assert tokenizer.tokenize("ᚠᚢᚦᚨ") == ["[UNK]"]  # a character the alphabet never saw


def test_encode_normalizes_unless_told_otherwise(tokenizer, corpus):
    raw = corpus[:200]
    ids, mask = tokenizer.encode(raw)
    ids2, mask2 = tokenizer.encode(NORMALIZER.batch(raw), normalized=True)
    assert (ids == ids2).all() and (mask == mask2).all()


def test_save_load_round_trip(tokenizer, corpus, tmp_path):
    folder = tokenizer.save(tmp_path / "tok")
    assert {p.name for p in folder.iterdir()} == {"tokenizer.json", "vocab.txt", "tokenizer_spec.json",
                                                   "normalizer.json"}
    assert (folder / "vocab.txt").read_text(encoding="utf-8").splitlines() == tokenizer.vocab
    spec = json.loads((folder / "tokenizer_spec.json").read_text(encoding="utf-8"))
    assert spec["lowercase"] is False and spec["encoding"]["max_length"] == 32
    assert spec["encoding"]["padding_side"] == "right"
    assert spec["special_tokens"] == {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3}
    assert spec["normalizer"]["sha256"] == NORMALIZER.spec_sha256
    loaded = WordPieceTokenizer.load(folder)
    for a, b in zip(tokenizer.encode(corpus), loaded.encode(corpus)):
        assert (a == b).all()


def test_load_refuses_a_different_normalizer(tokenizer, tmp_path):
    folder = tokenizer.save(tmp_path / "tok")
    spec = json.loads((folder / "normalizer.json").read_text(encoding="utf-8"))
    spec["steps"] = [s for s in spec["steps"] if s["step"] != "fold_leet"]
    (folder / "normalizer.json").write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(EdgemodError, match="sha256"):
        WordPieceTokenizer.load(folder)


def test_vocab_size_limit():
    with pytest.raises(EdgemodError, match="8000"):
        train_wordpiece(["some text"], vocab_size=20000)
