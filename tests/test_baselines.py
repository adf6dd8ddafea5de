from edgemod.recipe import parse_recipe
from edgemod.training.baselines import tfidf_logreg


def test_tfidf_baseline_chooses_c_on_validation(tiny_recipe_dict):
    tiny_recipe_dict["data"] = {"train": "sms_spam:train", "validation": "sms_spam:validation",
                                "test": "sms_spam:test", "max_items_per_split": 400}
    tiny_recipe_dict["labels"] = ["ham", "spam"]
    report = tfidf_logreg(parse_recipe(tiny_recipe_dict), cs=(0.1, 10.0))
    by_c = report["validation_macro_f1_by_C"]
    assert report["validation"]["macro_f1"] == max(by_c.values())
    assert report["test"]["per_class"]["spam"]["f1"] > 0.5  # real signal even on 400 messages
