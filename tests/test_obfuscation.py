"""Obfuscation: the fixed evaluation rewrites and the randomised training augmentation."""
from __future__ import annotations

import random

import numpy as np
import pytest

from edgemod.obfuscation import OBFUSCATIONS, augment, obfuscate, variants

TEXTS = ["you are an idiot", "I HATE all of them", "go back to your country <user>",
         "free money at www.example.com now @bob", "call 555 1234", "Das ist schön", "ok"]


def test_evaluation_rewrites_are_fixed():
    assert obfuscate("you are an idiot", "leetspeak") == "y0u 4r3 4n 1d10t"
    assert obfuscate("pace", "homoglyph") == "\u0440\u0430\u0441\u0435"
    assert obfuscate("hey", "zero_width") == "h\u200be\u200by"
    assert obfuscate("i hate you", "spacing") == "i h a t e you"
    assert OBFUSCATIONS == ("leetspeak", "homoglyph", "zero_width", "spacing")


def test_augment_is_deterministic_for_a_seed():
    for text in TEXTS:
        assert augment(text, random.Random(7)) == augment(text, random.Random(7))
    outputs = {augment("you are such an idiot", random.Random(seed)) for seed in range(30)}
    assert len(outputs) > 15  # random styles, words and characters


def test_augment_changes_every_text_with_a_word():
    rng = random.Random(0)
    for _ in range(50):
        for text in TEXTS:
            assert augment(text, rng) != text
    assert augment("123 456 !!", rng) == "123 456 !!" and augment("", rng) == ""


def test_augment_rewrites_some_words_not_all():
    text = " ".join(["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"])
    rng = random.Random(1)
    changed = []
    for _ in range(200):
        out = augment(text, rng, styles=("leetspeak",), mix_rate=0)
        changed.append(sum(a != b for a, b in zip(text.split(), out.split())))
    assert 1 <= min(changed) and max(changed) < 10 and 2 < np.mean(changed) < 5  # word_rate 0.35 of 10 words


@pytest.mark.parametrize("style", OBFUSCATIONS)
def test_each_style_is_realistic(style):
    rng = random.Random(2)
    for _ in range(20):
        out = augment("please do not hate me", rng, styles=(style,), mix_rate=0)
        if style == "spacing":
            assert len(out.split()) > 5 or any(s in out for s in ".-_*")
        elif style == "zero_width":
            assert set(out) - set("please do not hate me") <= set("\u200b\u200c\u200d\u2060\u00ad")
        elif style == "homoglyph":
            assert not out.isascii() and len(out) == len("please do not hate me")
        else:
            assert out.isascii() and len(out) == len("please do not hate me")


def test_augment_leaves_urls_mentions_and_placeholders_alone():
    rng = random.Random(3)
    for _ in range(50):
        out = augment("see www.example.com and https://x.org/path @someone <user> #tag now", rng)
        for kept in ("www.example.com", "https://x.org/path", "@someone", "<user>", "#tag"):
            assert kept in out


def test_unknown_style_is_refused():
    with pytest.raises(ValueError, match="known: leetspeak"):
        augment("text", random.Random(0), styles=("leet",))


def test_variants_are_seeded_per_item():
    first = variants(TEXTS, [f"k{i}" for i in range(len(TEXTS))], copies=2, seed=0)
    assert len(first) == 2 and all(len(copy) == len(TEXTS) for copy in first)
    assert first[0] != first[1]
    # the same item gets the same copies alone, in another order, in another call
    alone = variants(TEXTS[2:3], ["k2"], copies=2, seed=0)
    assert [copy[0] for copy in alone] == [copy[2] for copy in first]
    assert variants(TEXTS, [f"k{i}" for i in range(len(TEXTS))], copies=2, seed=1) != first


def test_training_dataset_swaps_items_at_the_asked_rate_and_keeps_targets():
    import torch

    from edgemod.training.inputs import ObfuscatedTexts

    n, copies, length = 4000, 2, 5
    clean = (np.zeros((n, length), np.int32), np.ones((n, length), np.int32))
    ids = np.stack([np.full((n, length), k + 1, np.int32) for k in range(copies)])
    soft, gold = np.random.default_rng(0).random((n, 3), dtype=np.float32), np.arange(n) % 3
    data = ObfuscatedTexts(clean, (ids, np.ones_like(ids)), soft, gold, rate=0.3, seed=5)

    def epoch_rows(epoch):
        data.set_epoch(epoch)
        return [data[i] for i in range(n)]

    rows = epoch_rows(1)
    swapped = np.array([int(r[0][0]) for r in rows])
    assert 0.27 < (swapped > 0).mean() < 0.33 and set(swapped) == {0, 1, 2}
    assert all(torch.equal(r[2], torch.from_numpy(soft[i])) and int(r[3]) == gold[i] for i, r in enumerate(rows))
    assert np.array_equal(swapped, [int(r[0][0]) for r in epoch_rows(1)])  # same epoch, same draw
    assert not np.array_equal(swapped, [int(r[0][0]) for r in epoch_rows(2)])
    none = ObfuscatedTexts(clean, (ids, np.ones_like(ids)), soft, gold, rate=0.0, seed=5)
    assert all(int(none[i][0][0]) == 0 for i in range(n))


def test_zero_width_sometimes_joins_every_character_of_the_whole_text():
    text = "please do not hate me"
    outputs = [augment(text, random.Random(seed), styles=("zero_width",), mix_rate=0) for seed in range(200)]
    whole = [out for out in outputs if len(out) == 2 * len(text) - 1]
    assert 60 < len(whole) < 140  # whole_text_rate 0.5
    for out in whole:
        assert out[::2] == text and len(set(out[1::2])) == 1  # one invisible character between every two
    assert all(len(augment(text, random.Random(s), styles=("zero_width",), whole_text_rate=0)) < 2 * len(text) - 1
               for s in range(50))
