"""Multi-view teacher labels (recipe `views:`): sampled deterministically, rendered identically for
teacher and student, mixed as stored, and carried through label -> train on real weapons frames."""
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from edgemod.catalog import load_split
from edgemod.recipe_views import MixSpec, ViewsSpec
from edgemod.training.vision.views import ViewTargets, crop_box, render_view, view_items


@pytest.fixture(scope="module")
def frames():
    items = load_split("weapons:train", max_items=6)
    items["role"] = "train"
    return items


def test_views_are_deterministic_and_inside_the_image(frames):
    spec = ViewsSpec(per_image=3, mix=MixSpec(kind="cutmix", p=0.5))
    first, again = view_items(frames, spec), view_items(frames, spec)
    assert len(first) == 18 and first["key"].tolist() == again["key"].tolist()
    assert first["view"].tolist() == again["view"].tolist()
    assert set(first["parent"]) == set(frames["key"]) and (first["role"] == "view").all()
    other_seed = view_items(frames, spec.model_copy(update={"seed": 1}))
    assert other_seed["view"].tolist() != first["view"].tolist()
    for view in map(json.loads, first["view"]):
        x0, y0, x1, y1 = view["box"]
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1


def test_crop_area_follows_the_scale_range():
    spec = ViewsSpec(per_image=1, scale=(0.25, 0.5))
    rng = np.random.default_rng(0)
    areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in (crop_box(rng, (200, 160), spec) for _ in range(200))]
    assert 0.23 <= min(areas) and max(areas) <= 0.52


def test_render_crops_flips_and_mixes_as_stored(tmp_path):
    left = np.zeros((40, 40, 3), np.uint8)
    left[:, :20] = 255  # white left half, black right half
    path = tmp_path / "half.png"
    Image.fromarray(left).save(path)
    whole = {"box": [0, 0, 1, 1], "flip": False}
    plain = np.asarray(render_view(whole, str(path), 20, (128, 128, 128)))
    flipped = np.asarray(render_view({**whole, "flip": True}, str(path), 20, (128, 128, 128)))
    assert plain[:, :8].min() == 255 and plain[:, 12:].max() == 0
    assert np.array_equal(flipped, plain[:, ::-1])
    right_half = np.asarray(render_view({"box": [0.5, 0, 1, 1], "flip": False}, str(path), 20, (0, 0, 0)))
    assert right_half.max() == 0
    mixup = {**whole, "mix": {"kind": "mixup", "path": str(path), "box": [0, 0, 1, 1], "flip": True, "lam": 0.5}}
    blended = np.asarray(render_view(mixup, str(path), 20, (0, 0, 0))).astype(int)
    assert abs(blended[:, :8].mean() - 127.5) < 2  # half white, half black
    cut = {**whole, "mix": {"kind": "cutmix", "path": str(path), "box": [0, 0, 1, 1], "flip": True,
                            "cut": [0, 0, 0.25, 1], "lam": 0.75}}
    pasted = np.asarray(render_view(cut, str(path), 20, (0, 0, 0)))
    assert pasted[:, :5].max() == 0 and pasted[:, 5:8].min() == 255  # the partner's (mirrored) black half


def test_photometric_views_are_drawn_only_when_on_and_keep_older_views(frames):
    plain = ViewsSpec(per_image=2, mix=MixSpec(kind="mixup", p=1.0))
    photo = ViewsSpec.model_validate({**plain.model_dump(), "rotation": 10.0,
                                      "color_jitter": {"brightness": 0.3, "contrast": 0.3, "saturation": 0.3,
                                                       "hue": 0.05},
                                      "jpeg": {"quality": (30, 95), "p": 1.0}})
    for view in map(json.loads, view_items(frames, plain)["view"]):
        assert not {"angle", "jitter", "jpeg"} & (set(view) | set(view["mix"]))
    for old, new in zip(map(json.loads, view_items(frames, plain)["view"]),
                        map(json.loads, view_items(frames, photo)["view"])):
        assert new["box"] == old["box"] and new["flip"] == old["flip"]  # drawn first, unchanged
        for entry in (new, new["mix"]):
            assert abs(entry["angle"]) <= 10 and 30 <= entry["jpeg"] <= 95
            b, c, s, h = entry["jitter"]
            assert all(0.7 <= f <= 1.3 for f in (b, c, s)) and abs(h) <= 0.05


def test_render_applies_the_stored_rotation_colour_and_jpeg(frames):
    from torchvision.transforms import functional as F

    from edgemod.runtime.image import load_image
    from edgemod.training.vision.augment import jpeg_reencode

    path = frames["path"].iloc[0]
    view = {"box": [0.1, 0.05, 0.9, 0.95], "flip": True, "angle": 7.5, "jitter": [1.2, 0.8, 1.1, 0.03], "jpeg": 40}
    image = load_image(path, (128, 128, 128)).rotate(7.5, resample=Image.Resampling.BILINEAR, fillcolor=(128, 128, 128))
    image = F.adjust_hue(F.adjust_saturation(F.adjust_contrast(F.adjust_brightness(image, 1.2), 0.8), 1.1), 0.03)
    image = jpeg_reencode(image, 40)
    w, h = image.size
    expected = image.resize((24, 24), Image.Resampling.BILINEAR, box=(0.1 * w, 0.05 * h, 0.9 * w, 0.95 * h))
    expected = np.asarray(expected.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    rendered = np.asarray(render_view(view, path, 24, (128, 128, 128)))
    assert np.array_equal(rendered, expected)
    assert not np.array_equal(rendered, np.asarray(render_view({"box": view["box"], "flip": True}, path, 24,
                                                               (128, 128, 128))))


def test_mixed_views_train_on_the_teacher_alone_and_missing_views_are_named():
    table = pd.DataFrame({
        "key": ["a", "a~view:0", "a~view:1"], "role": ["train", "view", "view"],
        "view": [None, json.dumps({"box": [0, 0, 1, 1], "flip": False}),
                 json.dumps({"box": [0, 0, 1, 1], "flip": False, "mix": {"kind": "mixup"}})]})
    soft = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6]], np.float32)
    targets = ViewTargets.gather(table, ["a"], soft, np.array([0, -1, -1]), per_image=2)
    assert targets.gold.tolist() == [[0, -1]] and np.allclose(targets.soft[0], soft[1:])
    with pytest.raises(Exception, match="lack their 3 labelled views"):
        ViewTargets.gather(table, ["a"], soft, np.array([0, -1, -1]), per_image=3)


def test_views_are_for_image_recipes_only():
    from edgemod.recipe import load_recipe

    with pytest.raises(Exception, match="views"):
        load_recipe("recipes/text-spam.yaml", overrides=["views.per_image=2"])


def test_views_redrawn_under_another_spec_are_scored_again(tmp_path):
    from edgemod.training.label_shards import plan_chunks, store_chunk

    items = pd.DataFrame({"key": ["a", "a~view:0"], "path": ["a.png", "a.png"],
                          "view": [None, json.dumps({"box": [0, 0, 1, 1], "flip": False})]})
    done, chunks = plan_chunks("t", items, tmp_path, 10, None)
    store_chunk(*chunks[0], np.full((2, 2), 0.5, np.float32), ["x", "y"], "t", done)
    assert plan_chunks("t", items, tmp_path, 10, None)[1] == []
    redrawn = items.assign(view=[None, json.dumps({"box": [0, 0, 1, 1], "flip": True})])
    done, chunks = plan_chunks("t", redrawn, tmp_path, 10, None)
    assert [chunk["key"].tolist() for _, chunk in chunks] == [["a~view:0"]]


def test_trainer_replays_the_labelled_views_pixel_exactly(frames):
    """Same view parameters -> identical input tensors: the trainer's rows each epoch are the stored
    views rendered by the very transform the teacher scored them with, photometric steps included."""
    import torch

    from edgemod.training.students.vision import timm_arch
    from edgemod.training.vision.preprocess import preprocess_from_timm
    from edgemod.training.vision.views import ViewEpochs, view_transform

    spec = ViewsSpec.model_validate({"per_image": 3, "rotation": 10, "color_jitter": {},
                                     "jpeg": {"p": 1.0}, "mix": {"kind": "mixup", "p": 0.5}})
    table = pd.concat([frames, view_items(frames, spec)], ignore_index=True)
    keys = frames["key"].tolist()
    soft = np.random.default_rng(0).random((len(table), 4)).astype(np.float32)
    targets = ViewTargets.gather(table, keys, soft, np.zeros(len(table), np.int64), per_image=3)
    cfg = preprocess_from_timm(timm_arch("efficientnet_lite0"), 64)
    teacher_side = view_transform(cfg)  # what the label stage calls for each view row
    rows = ViewEpochs(frames["path"].tolist(), targets, view_transform(cfg), seed=0)
    chosen = []
    for epoch in (1, 2, 3):
        rows.set_epoch(epoch)
        chosen.append(rows.choice.tolist())
        for index in range(len(keys)):
            image, target, _ = rows[index]
            k = int(rows.choice[index])
            stored = json.loads(targets.views[index][k])
            assert torch.equal(image, teacher_side(stored, frames["path"].iloc[index]))
            assert torch.equal(target, torch.from_numpy(targets.soft[index, k]))
    assert all(len({epochs[i] for epochs in chosen}) == 3 for i in range(len(keys)))  # each frame walks its views
