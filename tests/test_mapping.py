import numpy as np
import pytest

from edgemod.errors import EdgemodError
from edgemod.training.teachers.mapping import combine, map_scores

RECIPE = ["normal", "offensive", "hatespeech"]


def test_distribution_teacher_renamed_and_summed():
    scores = np.array([[0.1, 0.2, 0.3, 0.4]], dtype=np.float32)
    mapped = map_scores(scores, ["hate", "slur", "offensive_language", "neither"], False,
                        {"hate": "hatespeech", "slur": "hatespeech", "offensive_language": "offensive",
                         "neither": "normal"}, RECIPE, False)
    np.testing.assert_allclose(mapped, [[0.4, 0.3, 0.3]], atol=1e-6)


def test_dropped_labels_renormalise():
    scores = np.array([[0.5, 0.25, 0.25]], dtype=np.float32)
    mapped = map_scores(scores, ["other", "normal", "offensive"], False, {"other": None}, RECIPE, False)
    np.testing.assert_allclose(mapped, [[0.5, 0.5, 0.0]], atol=1e-6)


def test_multi_label_teacher_into_single_label_recipe_fills_the_benign_class():
    scores = np.array([[0.9, 0.2, 0.1], [0.05, 0.1, 0.0]], dtype=np.float32)
    mapped = map_scores(scores, ["hate", "harassment", "violence"], True,
                        {"hate": "hatespeech", "harassment": "offensive", "violence": None}, RECIPE, False)
    assert mapped[0].argmax() == 2 and mapped[1].argmax() == 0
    np.testing.assert_allclose(mapped.sum(axis=1), 1.0, atol=1e-6)


def test_multi_label_teacher_needs_exactly_one_benign_gap():
    with pytest.raises(EdgemodError, match="exactly one"):
        map_scores(np.zeros((1, 1), np.float32), ["hate"], True, {"hate": "hatespeech"}, RECIPE, False)


def test_unknown_teacher_label_in_map():
    with pytest.raises(EdgemodError, match="did you mean 'hate'"):
        map_scores(np.zeros((1, 1), np.float32), ["hate"], False, {"hat": "hatespeech"}, RECIPE, False)


def test_nothing_maps():
    with pytest.raises(EdgemodError, match="none of teacher"):
        map_scores(np.zeros((1, 2), np.float32), ["a", "b"], False, {}, RECIPE, False)


def test_weighted_combination():
    a = np.array([[1.0, 0.0, 0.0]], np.float32)
    b = np.array([[0.0, 1.0, 0.0]], np.float32)
    np.testing.assert_allclose(combine([a, b], [3, 1]), [[0.75, 0.25, 0.0]], atol=1e-6)
