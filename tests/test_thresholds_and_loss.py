import numpy as np
import pytest
import torch

from edgemod.recipe import DistillSpec, ThresholdSpec
from edgemod.runtime.decision import decide
from edgemod.training.distill import distillation_loss, soften
from edgemod.training.thresholds import choose_thresholds, operating_points

LABELS = ["normal", "offensive", "hatespeech"]


def _scores(seed=0, n=400):
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + 2.0 * np.eye(3)[gold]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return probs, gold


def test_precision_target_is_met_on_the_data_it_was_chosen_on():
    probs, gold = _scores()
    chosen = choose_thresholds(probs, gold, LABELS, ThresholdSpec(policy="precision_at", precision=0.9),
                               "normal", False)
    assert "normal" not in chosen["per_class"]
    points = operating_points(probs, gold, LABELS, chosen)
    for label in ("offensive", "hatespeech"):
        assert chosen["per_class"][label]["target_met_on_validation"]
        assert points[label]["precision"] >= 0.9


def test_recall_target_is_met():
    probs, gold = _scores(1)
    chosen = choose_thresholds(probs, gold, LABELS, ThresholdSpec(policy="recall_at", recall=0.95), "normal", False)
    points = operating_points(probs, gold, LABELS, chosen)
    assert all(points[name]["recall"] >= 0.95 for name in ("offensive", "hatespeech"))


def test_a_class_can_have_its_own_operating_point():
    probs, gold = _scores(3)
    spec = ThresholdSpec(policy="max_f1", per_class={"hatespeech": {"policy": "recall_at", "recall": 0.97}})
    chosen = choose_thresholds(probs, gold, LABELS, spec, "normal", False)
    points = operating_points(probs, gold, LABELS, chosen)
    assert points["hatespeech"]["recall"] >= 0.97
    assert chosen["per_class"]["hatespeech"]["rule"] == {"policy": "recall_at", "recall": 0.97}
    plain = choose_thresholds(probs, gold, LABELS, ThresholdSpec(policy="max_f1"), "normal", False)
    assert chosen["per_class"]["offensive"] == plain["per_class"]["offensive"]
    assert chosen["per_class"]["hatespeech"]["threshold"] < plain["per_class"]["hatespeech"]["threshold"]


def test_per_class_rules_must_name_a_non_benign_label():
    from edgemod.recipe import parse_recipe

    recipe = {"name": "r", "labels": LABELS, "data": {"train": "a:train", "validation": "a:v", "test": "a:t"},
              "student": {"arch": "text_cnn_small"}, "distill": {"gold_only": True},
              "thresholds": {"benign": "normal", "per_class": {"hatespech": {"policy": "max_f1"}}}}
    with pytest.raises(Exception, match="did you mean 'hatespeech'"):
        parse_recipe(recipe, "test")
    recipe["thresholds"]["per_class"] = {"normal": {"policy": "max_f1"}}
    with pytest.raises(Exception, match="non-benign"):
        parse_recipe(recipe, "test")


def test_unreachable_precision_is_reported_not_hidden():
    probs, gold = _scores(2)
    probs = np.full_like(probs, 1 / 3)  # no signal: no cut reaches 99% precision
    chosen = choose_thresholds(probs, gold, LABELS, ThresholdSpec(policy="precision_at", precision=0.99),
                               "normal", False)
    assert not chosen["per_class"]["offensive"]["target_met_on_validation"]


def test_decision_rule_falls_back_to_benign():
    thresholds = {"policy": "max_f1", "benign": "normal", "multi_label": False,
                  "per_class": {"offensive": {"threshold": 0.6}, "hatespeech": {"threshold": 0.3}}}
    probs = np.array([[0.5, 0.5, 0.0], [0.1, 0.55, 0.35], [0.1, 0.7, 0.2]])
    assert decide(probs, LABELS, thresholds).tolist() == [0, 2, 1]


def test_soften_matches_logit_temperature():
    logits = torch.tensor([[2.0, 0.5, -1.0]])
    np.testing.assert_allclose(soften(torch.softmax(logits, -1), 2.0), torch.softmax(logits / 2.0, -1), atol=1e-6)


def test_transfer_rows_get_only_the_soft_loss():
    spec = DistillSpec(alpha=0.5, temperature=1.0)
    teacher = torch.tensor([[0.7, 0.2, 0.1]])
    student = torch.log(teacher)  # student equals teacher: the soft loss is zero
    unlabeled = distillation_loss(student, teacher, torch.tensor([-1]), spec, False)
    labeled = distillation_loss(student, teacher, torch.tensor([2]), spec, False)
    assert unlabeled.item() == pytest.approx(0.0, abs=1e-6)
    assert labeled.item() == pytest.approx(0.5 * -np.log(0.1), rel=1e-4)


def test_gold_only_ignores_the_teacher():
    spec = DistillSpec(gold_only=True)
    student = torch.tensor([[3.0, 0.0, 0.0]])
    loss_a = distillation_loss(student, torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([0]), spec, False)
    loss_b = distillation_loss(student, torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([0]), spec, False)
    assert loss_a.item() == pytest.approx(loss_b.item())


def test_multi_label_uses_bce_with_soft_targets():
    spec = DistillSpec(loss="bce", alpha=1.0)
    teacher = torch.tensor([[0.9, 0.1]])
    near = distillation_loss(torch.logit(teacher), teacher, torch.tensor([[-1, -1]]), spec, True)
    far = distillation_loss(-torch.logit(teacher), teacher, torch.tensor([[-1, -1]]), spec, True)
    assert near < far


def test_logit_mse_matches_centred_log_probabilities():
    spec = DistillSpec(loss="logit_mse", alpha=1.0)
    teacher = torch.tensor([[0.7, 0.2, 0.1], [0.05, 0.05, 0.9]])
    same = torch.log(teacher) + torch.tensor([[3.0], [-1.5]])  # a per-row shift does not change the softmax
    assert distillation_loss(same, teacher, torch.tensor([-1, -1]), spec, False).item() == pytest.approx(0.0, abs=1e-9)
    # one row off by +1 on its first logit: centred difference (2/3, -1/3, -1/3), mean square 2/9, over 2 rows
    off = same.clone()
    off[0, 0] += 1.0
    assert distillation_loss(off, teacher, torch.tensor([-1, -1]), spec, False).item() == pytest.approx(1 / 9, rel=1e-5)
