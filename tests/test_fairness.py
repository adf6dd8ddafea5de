"""Identity fairness in distillation: counterfactual copies through the label cache, family-averaged
targets, reweighting, the unmitigated 'before' student, and the out-of-domain check."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from edgemod.counterfactual import counterfactuals, mentions
from edgemod.errors import EdgemodError
from edgemod.recipe import parse_recipe
from edgemod.training import fairness, label, train
from edgemod.training.items import COUNTERFACTUAL, OUT_OF_DOMAIN


@pytest.mark.parametrize("text, expected", [
    ("The Jews are a plague", {"The Muslims are a plague", "The Christians are a plague"}),
    ("a jewish man said", {"a muslim man said", "a christian man said", "a jewish woman said"}),
    ("JEWS control it", {"MUSLIMS control it", "CHRISTIANS control it"}),
    ("the muslim is here", {"the jew is here", "the christian is here"}),
    ("Islam is a religion", {"Judaism is a religion", "Christianity is a religion"}),
])
def test_religion_swaps_keep_form_and_case(text, expected):
    assert {copy for _, copy in counterfactuals(text, "k", 8, 0)} == expected


def test_articles_agree_with_the_swapped_term():
    copies = dict(counterfactuals("an arab guy", "k", 8, 0))
    assert copies["arab>asian"] == "an asian guy"
    assert copies["arab>black"] == "a black guy"


def test_a_group_lacking_a_used_form_is_skipped_and_mentioned_groups_are_not_targets():
    tags = [tag for tag, _ in counterfactuals("the jews and the muslims", "k", 8, 0)]
    assert "jewish>muslim" not in tags and "muslim>jewish" not in tags
    assert {"jewish>christian", "muslim>christian"} == set(tags)
    # 'chinese' has no form for one person: 'an arab' (a noun here) never becomes 'a chinese'
    assert "arab>chinese" not in dict(counterfactuals("I met an arab", "k", 8, 0))
    assert counterfactuals("nothing to swap here", "k", 8, 0) == []


def test_copies_are_seeded_per_item_and_capped():
    many = counterfactuals("those immigrants are here", "k1", 2, 0)
    assert len(many) == 2 and many == counterfactuals("those immigrants are here", "k1", 2, 0)
    assert mentions("The Jews")["religion"][0].form == "many"


def test_family_average_and_inherited_gold():
    table = pd.DataFrame({"key": ["a", "b", "a~cf:1", "a~cf:2"], "role": ["train", "train", COUNTERFACTUAL, COUNTERFACTUAL],
                          "parent": [None, None, "a", "a"]})
    soft = np.array([[0.9, 0.1], [0.5, 0.5], [0.3, 0.7], [0.6, 0.4]], np.float32)
    averaged = fairness.family_averaged(table, soft)
    np.testing.assert_allclose(averaged[[0, 2, 3]], [[0.6, 0.4]] * 3, rtol=1e-6)
    np.testing.assert_allclose(averaged[1], [0.5, 0.5])
    np.testing.assert_array_equal(fairness.inherited_gold(table, np.array([1, 0, -1, -1])), [1, 0, 1, 1])


def test_counterfactual_sensitivity_finds_the_term_a_scorer_leans_on():
    """A scorer that adds 0.3 for 'jews' shifts jewish posts by +0.3 and the other religions' posts by
    -0.15 (one of their two rewrites names jews); a scorer blind to groups shifts nothing."""
    from edgemod.benchmarks.slices import counterfactual_sensitivity

    texts = ["the jews are here", "jews run the bank", "the muslims are here", "the christians pray",
             "a white man", "nothing about anyone"]
    biased = counterfactual_sensitivity(texts, lambda batch: np.array([0.3 * ("jews" in t) + 0.1 for t in batch]))
    assert biased["jewish"] == {"items": 2, "mean_shift": 0.3, "mean_abs_shift": 0.3}
    assert biased["muslim"]["mean_shift"] == biased["christian"]["mean_shift"] == -0.15
    assert biased["white"]["mean_shift"] == 0.0
    blind = counterfactual_sensitivity(texts, lambda batch: np.array([len(t.split()) / 10 for t in batch]))
    assert all(entry["mean_shift"] == 0.0 for entry in blind.values())
    assert "jewish" not in counterfactual_sensitivity(texts, lambda batch: np.zeros(len(batch)), min_items=3)
    with_interval = counterfactual_sensitivity(texts, lambda batch: np.array([0.3 * ("jews" in t) for t in batch]),
                                               resamples=200)
    assert with_interval["jewish"]["mean_shift_interval"] == [0.3, 0.3]  # every post shifts by exactly 0.3


def test_benign_identity_mentions_are_upweighted(tiny_recipe_dict):
    tiny_recipe_dict["distill"]["fairness"] = {"method": "reweight", "benign_identity_weight": 4.0}
    recipe = parse_recipe(tiny_recipe_dict)
    texts = ["the jews are nice", "the jews are vermin", "nice day", "jewish food"]
    soft = np.array([[0.9, 0.05, 0.05], [0.1, 0.1, 0.8], [0.9, 0.05, 0.05], [0.2, 0.7, 0.1]])
    gold = np.array([-1, -1, 0, 0])  # the last is benign by its gold label, whatever the teacher says
    np.testing.assert_array_equal(fairness.sample_weights(recipe, texts, soft, gold), [4, 1, 1, 4])


def test_identity_mentions_are_upweighted_under_any_method(tiny_recipe_dict):
    texts = ["the jews are nice", "the jews are vermin", "nice day", "jewish food"]
    soft = np.array([[0.9, 0.05, 0.05], [0.1, 0.1, 0.8], [0.9, 0.05, 0.05], [0.2, 0.7, 0.1]])
    gold = np.array([-1, -1, 0, 0])
    tiny_recipe_dict["distill"]["fairness"] = {"method": "none", "identity_weight": 3.0}
    recipe = parse_recipe(tiny_recipe_dict)
    assert fairness.uses_reweighting(recipe)
    np.testing.assert_array_equal(fairness.sample_weights(recipe, texts, soft, gold), [3, 3, 1, 3])
    tiny_recipe_dict["distill"]["fairness"] = {"method": "reweight", "benign_identity_weight": 4.0, "identity_weight": 3.0}
    recipe = parse_recipe(tiny_recipe_dict)
    np.testing.assert_array_equal(fairness.sample_weights(recipe, texts, soft, gold), [12, 3, 1, 12])
    before = fairness.unmitigated(recipe)  # the 'before' student of the report draws every item alike
    assert before.distill.fairness.identity_weight == 1 and not fairness.uses_reweighting(before)


def test_counterfactual_method_without_copies_is_refused(tiny_recipe_dict):
    tiny_recipe_dict["distill"]["fairness"] = {"method": "counterfactual"}
    with pytest.raises(EdgemodError, match="add 'counterfactuals"):
        parse_recipe(tiny_recipe_dict)


def test_out_of_domain_labels_must_exist(tiny_recipe_dict, tmp_path):
    tiny_recipe_dict["data"]["out_of_domain"] = [{"ref": "olid:test", "violating": ["OFFENSIVE"]}]
    with pytest.raises(EdgemodError, match="labels \\['OFFENSIVE'\\] do not occur"):
        label.run(parse_recipe(tiny_recipe_dict), tmp_path / "label")


@pytest.fixture(scope="module")
def fair_run(tmp_path_factory):
    """A tiny recipe with counterfactual copies, counterfactual distillation and an out-of-domain set."""
    from conftest import tiny_text_recipe

    root = tmp_path_factory.mktemp("fair")
    spec = tiny_text_recipe()
    spec["data"]["counterfactuals"] = {"per_item": 2}
    spec["data"]["out_of_domain"] = [{"ref": "olid:test", "violating": ["OFF"]}]
    spec["distill"]["fairness"] = {"method": "counterfactual"}
    spec["budgets"] = {"accuracy": {"min_out_of_domain_auroc_vs_teacher": 0.5}}
    label.run(parse_recipe(spec), root / "label")
    train.run(root / "label", root / "train")
    return root


def test_copies_go_through_the_label_cache(fair_run, tmp_path, teacher_calls):
    import shutil

    table = pd.read_parquet(fair_run / "label" / "labels.parquet")
    copies = table[table["role"] == COUNTERFACTUAL]
    assert len(copies) > 20 and copies["parent"].isin(table["key"]).all()
    assert copies["label"].isna().all() and copies["p:normal"].notna().all()
    assert set(table.loc[table["role"] == OUT_OF_DOMAIN, "violating"]) == {0, 1}
    # more copies per item: only the items not scored before reach the teacher
    shutil.copytree(fair_run / "label", tmp_path / "label")
    spec = json.loads((fair_run / "label" / "manifest.json").read_text())["recipe"]
    spec["data"]["counterfactuals"]["per_item"] = 3
    label.run(parse_recipe(spec), tmp_path / "label")
    more = pd.read_parquet(tmp_path / "label" / "labels.parquet")
    assert len(more) > len(table) and sum(teacher_calls) == len(set(more["key"]) - set(table["key"]))


def test_fairness_run_trains_the_unmitigated_student_too(fair_run):
    manifest = json.loads((fair_run / "train" / "manifest.json").read_text())
    assert manifest["metrics"]["unmitigated"]["method"] == "counterfactual"
    predictions = pd.read_parquet(fair_run / "train" / "predictions.parquet")
    assert {"unmitigated:normal", "student:normal"} <= set(predictions.columns)
    assert set(predictions["role"]) == {"validation", "test", OUT_OF_DOMAIN}
    test = predictions[predictions["role"] == "test"]
    assert not np.allclose(test["unmitigated:normal"], test["student:normal"])


def test_bench_reports_out_of_domain_and_the_before_student(fair_run):
    from edgemod.benchmarks import bench, gate
    from edgemod.export import stage

    stage.run(fair_run / "train", fair_run / "export", ["export=[{target: onnx, quant: fp32}]"])
    bench.run(fair_run / "export", fair_run / "bench", quick=True)
    results = json.loads((fair_run / "bench" / "bench.json").read_text())
    ood = results["out_of_domain"]["olid:test"]
    assert ood["items"] == 150 and 0 < ood["fp32_student"]["auroc"] <= 1 and 0 < ood["teacher"]["auroc"] <= 1
    assert list(results["slices"])[:3] == ["teacher", "unmitigated_student", "fp32_student"]
    for model in ("teacher", "unmitigated_student", "fp32_student"):
        identity = results["slices"][model]["identity"]
        assert identity["bootstrap"] == {"resamples": 1000, "confidence": 0.95, "seed": 0}
        low, high = identity["overall_auc_interval"]
        assert low <= identity["overall_auc"] <= high
        for group in identity["groups"].values():
            assert group["items"] == group["positives"] + group["negatives"]
            assert ("vs_teacher" in group) == (model != "teacher")
            assert group["subgroup_auc"] is None or group["subgroup_auc_interval"] is not None
    shifts = {m: results["slices"][m]["counterfactual"]["groups"] for m in ("teacher", "fp32_student")}
    assert shifts["fp32_student"] and set(shifts["fp32_student"]) == set(shifts["teacher"])
    for entry in [*shifts["fp32_student"].values(), *shifts["teacher"].values()]:
        assert entry["items"] >= 1 and abs(entry["mean_shift"]) <= entry["mean_abs_shift"] <= 1
    verdict = gate.run(fair_run / "bench", fair_run / "gate")
    checks = [c for c in verdict["checks"] if c["name"] == "out-of-domain AUROC vs teacher"]
    assert checks and checks[0]["value"] == ood["student_auroc_vs_teacher"]


def test_sensitivity_script_prints_the_bench_shifts(fair_run, tmp_path, monkeypatch):
    import importlib.util
    import sys

    from edgemod.benchmarks import bench
    from edgemod.export import stage

    stage.run(fair_run / "train", fair_run / "export", ["export=[{target: onnx, quant: fp32}]"])
    bench.run(fair_run / "export", fair_run / "bench", quick=True)  # nothing to do after the test above
    path = Path(__file__).resolve().parent.parent / "scripts" / "counterfactual_sensitivity.py"
    module_spec = importlib.util.spec_from_file_location("counterfactual_sensitivity", path)
    script = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(script)
    out = tmp_path / "sensitivity.json"
    monkeypatch.setattr(sys, "argv", [str(path), str(fair_run / "bench"), "--min-items", "1", "--json", str(out)])
    script.main()
    results = json.loads(out.read_text())
    recorded = json.loads((fair_run / "bench" / "bench.json").read_text())["slices"]
    assert results["fp32_student"] == recorded["fp32_student"]["counterfactual"]["groups"]
    assert results["teacher"] == recorded["teacher"]["counterfactual"]["groups"]


def test_results_file_and_readme_tables_come_from_the_run(fair_run, tmp_path):
    from edgemod.results import BEGIN, END, collect, readme_block, update_readme, write

    if not (fair_run / "gate" / "gate.json").exists():
        pytest.skip("needs the bench/gate of test_bench_reports_out_of_domain_and_the_before_student")
    results = collect(fair_run, commit="0123456789abcdef")
    assert results["fairness"]["method"] == "counterfactual"
    assert list(results["fairness"]["identity"]) == ["teacher", "unmitigated_student", "fp32_student"]
    assert results["out_of_domain"]["olid:test"]["items"] == 150
    write(results, tmp_path / "results" / "tiny-hate.json")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{BEGIN}\nSTALE-TABLE\n{END}\n\nafter\n")
    assert update_readme(readme, tmp_path / "results") and not update_readme(readme, tmp_path / "results")
    text = readme.read_text()
    assert readme_block(tmp_path / "results") in text and text.endswith("after\n") and "STALE-TABLE" not in text
    assert f"| teacher | {results['teacher']['test_macro_f1']:.4f} |" in text


# --- slice checks with confidence: synthetic scores, no model -------------------------------------

def _synthetic_slices(student_of, n=2400, named=400, seed=0):
    """bench-style `slices` for a teacher and a student built from it by `student_of(teacher, named_mask, rng)`:
    `named` of `n` posts name Jewish people, half of all posts violate, the teacher ranks them with AUC ~0.85."""
    from edgemod.benchmarks.slices import identity_slices

    rng = np.random.default_rng(seed)
    texts = [f"the jews and post {i}" if i < named else f"post number {i}" for i in range(n)]
    violating = rng.integers(0, 2, n)
    teacher = violating + rng.normal(0, 0.7, n)
    student = student_of(teacher, np.arange(n) < named, rng)
    identity = identity_slices(texts, violating, {"teacher": teacher, "fp32_student": student}, min_items=30,
                               pairs={"fp32_student": "teacher"}, resamples=300)
    return {model: {"identity": entry} for model, entry in identity.items()}


def _slice_recipe(tiny_recipe_dict, **slices):
    tiny_recipe_dict["budgets"] = {"slices": slices}
    return parse_recipe(tiny_recipe_dict)


def test_a_student_worse_than_its_teacher_on_one_slice_fails(tiny_recipe_dict):
    from edgemod.benchmarks.gate_slices import slice_checks

    def randomised_on_the_slice(teacher, named, rng):
        student = teacher + rng.normal(0, 0.05, len(teacher))
        student[named] = rng.permutation(student[named])  # the student learned nothing about these posts
        return student

    recipe = _slice_recipe(tiny_recipe_dict, max_auc_drop_vs_teacher=0.05)
    checks = slice_checks(recipe, {"slices": _synthetic_slices(randomised_on_the_slice)})
    failed = {c.subject for c in checks if not c.passed}
    assert "fp32_student / jewish / subgroup AUC" in failed
    row = next(c for c in checks if c.subject == "fp32_student / jewish / subgroup AUC")
    assert row.value < -0.2 and row.budget == -0.05
    assert "n=400" in row.detail and "student - teacher" in row.detail and "interval excludes 0" in row.detail


def test_a_student_as_good_as_its_teacher_passes(tiny_recipe_dict):
    from edgemod.benchmarks.gate_slices import slice_checks

    recipe = _slice_recipe(tiny_recipe_dict, max_auc_drop_vs_teacher=0.05)
    checks = slice_checks(recipe, {"slices": _synthetic_slices(lambda t, named, rng: t + rng.normal(0, 0.05, len(t)))})
    assert len(checks) == 3 and all(c.passed and not c.warning for c in checks)


def test_a_drop_within_noise_passes_but_a_sure_one_fails():
    """Below the budget but with an interval reaching 0: passes (small slice); the interval below 0: fails."""
    from edgemod.benchmarks.gate_slices import _vs_teacher
    from edgemod.budgets import SliceBudget

    budget, entry = SliceBudget(max_auc_drop_vs_teacher=0.05), {"items": 40, "subgroup_auc": 0.7}
    noisy = _vs_teacher("x", "g", "subgroup_auc", entry, entry, {"difference": -0.08, "interval": [-0.2, 0.03]}, 0.05, budget)
    sure = _vs_teacher("x", "g", "subgroup_auc", entry, entry, {"difference": -0.08, "interval": [-0.14, -0.02]}, 0.05, budget)
    small = _vs_teacher("x", "g", "subgroup_auc", entry, entry, {"difference": -0.03, "interval": [-0.05, -0.01]}, 0.05, budget)
    assert noisy.passed and "includes 0" in noisy.detail
    assert not sure.passed and small.passed


def test_an_absolute_gap_is_a_warning_that_never_fails(tiny_recipe_dict):
    """The teacher and the student rank the slice equally badly (its labels are noise): warn, do not fail."""
    from edgemod.benchmarks.gate_slices import slice_checks

    def noise_on_the_slice(teacher, named, rng):
        teacher[named] = rng.normal(0, 1, named.sum())  # the slice's labels carry no signal, for either model
        return teacher + rng.normal(0, 0.01, len(teacher))

    recipe = _slice_recipe(tiny_recipe_dict, max_auc_drop_vs_teacher=0.05, warn_subgroup_auc_gap=0.10)
    checks = slice_checks(recipe, {"slices": _synthetic_slices(noise_on_the_slice)})
    warnings = [c for c in checks if c.warning]
    assert [c.subject for c in warnings] == ["fp32_student / jewish"] and warnings[0].value > 0.2
    assert "n=400" in warnings[0].detail and "teacher subgroup AUC" in warnings[0].detail
    assert all(c.passed for c in checks)  # the gate's verdict: pass


def test_counterfactual_shift_is_gated_on_the_student_and_shows_the_teacher(tiny_recipe_dict):
    from edgemod.benchmarks.gate_slices import slice_checks

    recipe = _slice_recipe(tiny_recipe_dict, max_counterfactual_shift=0.05)
    shift = {"items": 115, "mean_abs_shift": 0.2, "mean_shift_interval": [0.08, 0.15]}
    slices = {"fp32_student": {"counterfactual": {"groups": {"jewish": {**shift, "mean_shift": 0.011},
                                                             "muslim": {**shift, "mean_shift": -0.12},
                                                             "gay": {**shift, "items": 5, "mean_shift": 0.5}}}},
              "teacher": {"counterfactual": {"not_measured_because": "a scores-file teacher has no scores"}}}
    checks = {c.subject: c for c in slice_checks(recipe, {"slices": slices})}
    assert set(checks) == {"fp32_student / jewish", "fp32_student / muslim"}  # 5 posts: under min_items
    assert checks["fp32_student / jewish"].passed and not checks["fp32_student / muslim"].passed
    assert "teacher not measured: a scores-file teacher" in checks["fp32_student / muslim"].detail
    missing = slice_checks(recipe, {"slices": {"fp32_student": {}}})
    assert len(missing) == 1 and not missing[0].passed and "edgemod bench" in missing[0].detail


@pytest.mark.parametrize("true_auc", [0.7, 0.9])
def test_auc_intervals_contain_the_truth_and_shrink_with_n(true_auc):
    """Binormal scores with AUC = Phi(d / sqrt 2); the rank AUC matches sklearn's, ties included."""
    from scipy.stats import norm
    from sklearn.metrics import roc_auc_score

    from edgemod.benchmarks.slices import percentile_interval, resampled_counts, weighted_auc

    shift = norm.ppf(true_auc) * np.sqrt(2)
    widths = []
    for n in (200, 5000):
        rng = np.random.default_rng(n)
        y = rng.integers(0, 2, n)
        s = np.round(rng.normal(0, 1, n) + shift * y, 2)  # rounded: ties
        assert weighted_auc(y, s, np.ones((1, n)))[0] == pytest.approx(roc_auc_score(y, s), abs=1e-9)
        draws = np.concatenate([weighted_auc(y, s, counts) for counts in resampled_counts(n, 500, 0)])
        low, high = percentile_interval(draws, 0.95)
        assert low <= true_auc <= high
        widths.append(high - low)
    assert widths[1] < widths[0] / 3  # ~ 1 / sqrt(n): 5x narrower for 25x the items


def test_agreement_interval_covers_the_truth_and_is_reproducible():
    """Over 40 independent test splits a 95 % interval should miss the true agreement about twice."""
    from edgemod.benchmarks.slices import agreement_interval

    def split(seed, n=1000):
        rng = np.random.default_rng(seed)
        fp32 = rng.integers(0, 3, n)
        return np.where(rng.random(n) < 0.02, (fp32 + 1) % 3, fp32), fp32  # 2 % of decisions flipped

    found = [agreement_interval(*split(seed), resamples=400, seed=seed) for seed in range(40)]
    assert sum(f["interval"][0] <= 0.98 <= f["interval"][1] for f in found) >= 34
    int8, fp32 = split(0)
    assert found[0] == agreement_interval(int8, fp32, resamples=400, seed=0) and found[0]["items"] == 1000
    wide, narrow = agreement_interval(int8[:200], fp32[:200]), agreement_interval(int8, fp32)
    assert narrow["interval"][1] - narrow["interval"][0] < wide["interval"][1] - wide["interval"][0]
    assert agreement_interval(np.eye(3)[int8], np.eye(3)[fp32]) == narrow  # multi-label: every label agrees


def test_the_old_gap_budget_is_refused_with_how_to_migrate(tiny_recipe_dict):
    tiny_recipe_dict["budgets"] = {"slices": {"max_subgroup_auc_gap": 0.1}}
    with pytest.raises((EdgemodError, ValueError), match="max_auc_drop_vs_teacher"):
        parse_recipe(tiny_recipe_dict)
