"""Data sources and licences of a model: what the release manifest and model card state, and what
`edgemod publish --public` refuses (a model trained on data whose licence does not allow shipping it)."""
from __future__ import annotations

import pytest

from edgemod.catalog import load_catalog
from edgemod.data_sources import data_sources, require_shippable, weight_sources
from edgemod.errors import EdgemodError
from edgemod.model_card import _data


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


TEXT_HATE = {"train": "hatexplain:train", "validation": "hatexplain:validation", "test": "hatexplain:test",
             "transfer": ["davidson", "olid:train"], "calibration": "hatexplain:validation",
             "out_of_domain": [{"ref": "olid:test", "violating": ["OFF"]}]}


def test_every_dataset_of_a_recipe_is_listed_once_with_roles_and_licence(catalog):
    sources = {s["dataset"]: s for s in data_sources(TEXT_HATE, catalog)}
    assert sorted(sources) == ["davidson", "hatexplain", "olid"]
    assert sources["hatexplain"]["roles"] == ["train", "validation", "test", "calibration"]
    assert sources["olid"]["roles"] == ["transfer", "out_of_domain"] and sources["olid"]["trained_on"]
    assert sources["davidson"]["license"] == "MIT" and sources["davidson"]["ship_models"] is True
    require_shippable(list(sources.values()), "text-hate")  # every trained-on set allows shipping


def test_a_model_trained_on_internal_only_frames_is_refused_and_evaluation_only_sets_are_not(catalog):
    weapons = data_sources({"train": "weapons:train", "test": "weapons:test"}, catalog)
    with pytest.raises(EdgemodError, match="weapons \\(train, test\\).*internal evaluation only") as error:
        require_shippable(weapons, "the weapons model")
    assert "licensed sources only" in error.value.hint
    evaluated_only = data_sources({"train": "sms_spam:train", "out_of_domain": [{"ref": "weapons:test"}]}, catalog)
    require_shippable(evaluated_only, "a spam model judged on weapons frames")  # never in the weights


def test_a_dataset_nobody_checked_is_refused_until_datasets_yaml_says(catalog):
    unknown = data_sources({"train": "nowhere:train"}, catalog)
    assert unknown[0]["license"].startswith("unknown")
    with pytest.raises(EdgemodError, match="set ship_models"):
        require_shippable(unknown, "x")


def test_the_model_card_names_sources_licences_and_pretrained_weights(catalog):
    release = {"data": TEXT_HATE, "data_sources": data_sources(TEXT_HATE, catalog),
               "weight_sources": weight_sources({"student": {"init_embeddings_from": "minilm-l6"}}),
               "teachers": [{"name": "minilm", "kind": "hf"}]}
    card = _data(release)
    for name in ("hatexplain", "olid", "davidson"):
        assert f"| {name} |" in card and catalog.datasets[name].license in card
    assert "all-MiniLM-L6-v2" in card and "Apache-2.0" in card
    assert "none of their weights ship" in card
