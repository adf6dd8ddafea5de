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


def test_benign_identity_mentions_are_upweighted(tiny_recipe_dict):
    tiny_recipe_dict["distill"]["fairness"] = {"method": "reweight", "benign_identity_weight": 4.0}
    recipe = parse_recipe(tiny_recipe_dict)
    texts = ["the jews are nice", "the jews are vermin", "nice day", "jewish food"]
    soft = np.array([[0.9, 0.05, 0.05], [0.1, 0.1, 0.8], [0.9, 0.05, 0.05], [0.2, 0.7, 0.1]])
    gold = np.array([-1, -1, 0, 0])  # the last is benign by its gold label, whatever the teacher says
    np.testing.assert_array_equal(fairness.sample_weights(recipe, texts, soft, gold), [4, 1, 1, 4])


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
    verdict = gate.run(fair_run / "bench", fair_run / "gate")
    checks = [c for c in verdict["checks"] if c["name"] == "out-of-domain AUROC vs teacher"]
    assert checks and checks[0]["value"] == ood["student_auroc_vs_teacher"]


def test_sensitivity_script_scores_teacher_and_student_on_rewritten_test_posts(fair_run, tmp_path, monkeypatch):
    import importlib.util
    import sys

    from edgemod.export import stage

    stage.run(fair_run / "train", fair_run / "export", ["export=[{target: onnx, quant: fp32}]"])
    path = Path(__file__).resolve().parent.parent / "scripts" / "counterfactual_sensitivity.py"
    module_spec = importlib.util.spec_from_file_location("counterfactual_sensitivity", path)
    script = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(script)
    out = tmp_path / "sensitivity.json"
    monkeypatch.setattr(sys, "argv", [str(path), str(fair_run / "export"), "--min-items", "1", "--json", str(out)])
    script.main()
    results = json.loads(out.read_text())
    assert results["student"] and set(results["student"]) == set(results["teacher"])
    for entry in [*results["student"].values(), *results["teacher"].values()]:
        assert entry["items"] >= 1 and abs(entry["mean_shift"]) <= entry["mean_abs_shift"] <= 1


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
