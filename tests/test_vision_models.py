"""Image students, the portable image checkpoint and the `timm` teacher, at 64 px so the whole file
runs in seconds. Every model is random-init (`pretrained=False`) and briefly trained where BatchNorm
statistics matter."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from edgemod.errors import EdgemodError
from edgemod.recipe import TeacherSpec
from edgemod.runtime.image import PreprocessConfig, eval_transform, load_image
from edgemod.training.students import STUDENTS, build_student, list_students
from edgemod.training.students.vision import count_parameters, reparameterize, student_preprocess
from edgemod.training.teachers.base import Item, Teacher, TeacherContext, build_teacher
from edgemod.training.vision.checkpoint import load_image_checkpoint, save_image_checkpoint

WEAPONS = Path("/work/shared/data/vision/weapons")
LABELS = ["gun", "knife", "none"]
SIZE = 64
# Parameter counts with 3 classes under timm 1.0.31: a change means timm changed the architecture.
PARAMETERS = {
    "mobilenetv3_small_100": 1_520_931,
    "mobileone_s0": 4_271_347,
    "efficientvit_b0": 2_132_851,
    "fastvit_t8": 3_259_539,
    "repvit_m0_9": 4_719_715,
    "test_vision_tiny": 571_299,
    "efficientnet_lite0": 3_374_851,
    "efficientnet_lite1": 4_139_523,
    "efficientnet_lite2": 4_814_915,
}
REPARAMETERIZABLE = ["mobileone_s0", "fastvit_t8", "repvit_m0_9"]


def image_students() -> list[str]:
    return [name for name, entry in STUDENTS.items() if entry.task == "image-classification"]


def trained(model, steps: int = 3, size: int = SIZE):
    """A few SGD steps on random data, so BatchNorm running stats and weights are non-trivial."""
    torch.manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            # Cumulative averages: after 3 steps the running stats are the batches' statistics,
            # not 70% of their init, which makes deep random-init nets (MobileOne) explode in eval.
            module.momentum = None
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)  # gentle: random-init nets diverge fast
    model.train()
    for _ in range(steps):
        x = torch.randn(4, 3, size, size)
        loss = torch.nn.functional.cross_entropy(model(x), torch.randint(0, model.num_classes, (4,)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(1)
    model = trained(build_student("test_vision_tiny", len(LABELS), image_size=SIZE))
    folder = tmp_path_factory.mktemp("ckpt") / "tiny"
    return save_image_checkpoint(folder, model, "test_vision_tiny", LABELS, student_preprocess(model),
                                 extra={"recipe": "test"})


@pytest.fixture(scope="module")
def image_items() -> list[Item]:
    """Six real images, two per coarse label, from the weapons set."""
    with open(WEAPONS / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    picked = []
    for label in sorted({row["label"] for row in rows}):
        picked += [row for row in rows if row["label"] == label][:2]
    return [Item(key=f"weapons:{row['split']}:{row['path']}", path=str(WEAPONS / row["path"])) for row in picked]


# --- students ------------------------------------------------------------------------------------

def test_registered_image_students_and_wildcards():
    assert sorted(image_students()) == sorted(PARAMETERS)
    assert list_students("*vit*") == ["efficientvit_b0", "fastvit_t8", "repvit_m0_9"]
    assert all(STUDENTS[name].description for name in PARAMETERS)


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_student_builds_and_runs(name):
    torch.manual_seed(0)
    model = build_student(name, len(LABELS), image_size=SIZE).eval()
    assert count_parameters(model) == PARAMETERS[name]
    with torch.inference_mode():
        out = model(torch.randn(2, 3, SIZE, SIZE))
    assert out.shape == (2, len(LABELS)) and torch.isfinite(out).all()


def test_student_preprocess_follows_timm_and_image_size():
    model = build_student("fastvit_t8", 2)
    assert student_preprocess(model).input_size == (3, 256, 256)  # timm's default for fastvit
    assert student_preprocess(build_student("fastvit_t8", 2, image_size=96)).input_size == (3, 96, 96)
    assert student_preprocess(model, image_size=128).image_size == 128


def test_bad_student_option_is_an_edgemod_error():
    with pytest.raises(EdgemodError, match="mobilenetv3_small_100"):
        build_student("mobilenetv3_small_100", 2, no_such_option=1)


@pytest.mark.parametrize("name", REPARAMETERIZABLE)
def test_reparameterize_keeps_outputs(name):
    torch.manual_seed(0)
    model = trained(build_student(name, len(LABELS)))
    fused = reparameterize(model)
    x = torch.randn(4, 3, SIZE, SIZE)
    with torch.inference_mode():
        before, after = model(x), fused(x)
    assert not fused.training and count_parameters(fused) < count_parameters(model)
    # 1e-4 absolute for logits of order 1; random-init MobileOne sums several un-normalised branches
    # per block, so its logits reach ~1e3 and float32 rounding alone is ~1e-4 of that: scale it.
    scale = max(1.0, before.abs().max().item())
    assert (before - after).abs().max().item() < 1e-4 * scale
    assert before.std().item() > 1e-3  # the comparison is not between two constant outputs


# --- checkpoint ----------------------------------------------------------------------------------

def test_checkpoint_round_trip_is_exact(tiny_checkpoint):
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    assert config["arch"] == "test_vision_tiny" and config["timm_arch"] == "mobilenetv3_small_050"
    assert config["labels"] == LABELS and config["num_classes"] == 3 and config["extra"] == {"recipe": "test"}
    assert config["preprocess"]["input_size"] == [3, SIZE, SIZE] and config["versions"]["timm"]
    assert sorted(p.name for p in tiny_checkpoint.parent.iterdir()) == ["tiny"]  # no temp folders left

    model, loaded_config = load_image_checkpoint(tiny_checkpoint)
    assert not model.training and loaded_config["labels"] == LABELS
    # A second load of the same folder must also give the same outputs (deterministic rebuild).
    again, _ = load_image_checkpoint(tiny_checkpoint)
    x = torch.randn(3, 3, SIZE, SIZE)
    with torch.inference_mode():
        assert torch.equal(model(x), again(x))


def test_checkpoint_round_trip_of_live_and_reparameterized_model(tmp_path):
    torch.manual_seed(0)
    model = trained(build_student("mobileone_s0", 2))
    fused = reparameterize(model)
    x = torch.randn(2, 3, SIZE, SIZE)
    for tag, module in (("live", model), ("fused", fused)):
        folder = save_image_checkpoint(tmp_path / tag, module, "mobileone_s0", ["a", "b"], student_preprocess(module))
        loaded, config = load_image_checkpoint(folder)
        assert config["reparameterized"] == (tag == "fused")
        with torch.inference_mode():
            assert torch.equal(loaded(x), module(x)), tag


def test_checkpoint_replaces_a_checkpoint_but_not_other_folders(tmp_path):
    model = build_student("test_vision_tiny", 2, image_size=SIZE)
    cfg = student_preprocess(model)
    folder = save_image_checkpoint(tmp_path / "c", model, "test_vision_tiny", ["a", "b"], cfg)
    save_image_checkpoint(folder, model, "test_vision_tiny", ["x", "y"], cfg)
    assert load_image_checkpoint(folder)[1]["labels"] == ["x", "y"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(EdgemodError, match="not an image checkpoint"):
        save_image_checkpoint(tmp_path / "mine", model, "test_vision_tiny", ["a", "b"], cfg)
    with pytest.raises(EdgemodError, match="arch 'tiny_net': it is neither"):
        save_image_checkpoint(tmp_path / "d", model, "tiny_net", ["a", "b"], cfg)
    with pytest.raises(EdgemodError, match="2 outputs but 3 labels"):
        save_image_checkpoint(tmp_path / "d", model, "test_vision_tiny", ["a", "b", "c"], cfg)


def _copy_with_config(source: Path, target: Path, **changes) -> Path:
    target.mkdir()
    (target / "model.safetensors").write_bytes((source / "model.safetensors").read_bytes())
    config = {**json.loads((source / "config.json").read_text()), **changes}
    (target / "config.json").write_text(json.dumps(config))
    return target


def test_checkpoint_errors_name_the_problem(tiny_checkpoint, tmp_path):
    with pytest.raises(EdgemodError, match="folder not found"):
        load_image_checkpoint(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgemodError, match="has no config.json"):
        load_image_checkpoint(tmp_path / "empty")

    wrong = _copy_with_config(tiny_checkpoint, tmp_path / "wrong", arch="mobilenetv3_small_100")
    with pytest.raises(EdgemodError, match=r"do not match arch 'mobilenetv3_small_100': first mismatched key "
                                           r"'blocks.0.0.conv_pw.weight' has shape \[8, 16, 1, 1\] in the file"):
        load_image_checkpoint(wrong)

    typo = _copy_with_config(tiny_checkpoint, tmp_path / "typo", arch="test_vision_tyny")
    with pytest.raises(EdgemodError, match="unknown arch 'test_vision_tyny'.*did you mean 'test_vision_tiny'"):
        load_image_checkpoint(typo)


# --- the timm teacher ----------------------------------------------------------------------------

def timm_teacher(folder: Path, **options) -> Teacher:
    return build_teacher(TeacherSpec(kind="timm", path=str(folder), options=options), TeacherContext(recipe=None))


def direct_probs(folder: Path, items: list[Item], flip: bool = False) -> np.ndarray:
    """The same scores computed by hand: decode, checkpoint pre-processing, model, softmax."""
    model, config = load_image_checkpoint(folder)
    transform = eval_transform(PreprocessConfig.from_dict(config["preprocess"]))
    x = torch.stack([transform(load_image(item.path)) for item in items])
    with torch.inference_mode():
        return model(x.flip(-1) if flip else x).softmax(-1).numpy()


def test_timm_teacher_matches_a_direct_model_call(tiny_checkpoint, image_items):
    teacher = timm_teacher(tiny_checkpoint, batch_size=4, threads=1)
    assert isinstance(teacher, Teacher)
    assert teacher.labels == LABELS and teacher.multi_label is False and teacher.batch_size == 4
    assert teacher.parameters == PARAMETERS["test_vision_tiny"]
    probs = teacher.predict_proba(image_items)
    assert probs.shape == (len(image_items), len(LABELS)) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probs, direct_probs(tiny_checkpoint, image_items), atol=1e-5)
    assert teacher.predict_proba([]).shape == (0, len(LABELS))

    identity = json.loads(teacher.identity())
    assert len(identity["weights_sha256"]) == 64 and identity["preprocess"]["input_size"] == [3, SIZE, SIZE]


def test_timm_teacher_tta_hflip_and_options(tiny_checkpoint, image_items):
    plain = timm_teacher(tiny_checkpoint)
    tta = timm_teacher(tiny_checkpoint, tta_hflip=True)
    expected = (direct_probs(tiny_checkpoint, image_items)
                + direct_probs(tiny_checkpoint, image_items, flip=True)) / 2
    np.testing.assert_allclose(tta.predict_proba(image_items), expected, atol=1e-5)
    assert tta.identity() != plain.identity()

    bigger = timm_teacher(tiny_checkpoint, image_size=96)
    assert bigger.preprocess.input_size == (3, 96, 96) and bigger.identity() != plain.identity()
    assert bigger.predict_proba(image_items[:2]).shape == (2, len(LABELS))

    multi = timm_teacher(tiny_checkpoint, multi_label=True).predict_proba(image_items[:2])
    assert ((multi > 0) & (multi < 1)).all() and not np.allclose(multi.sum(1), 1.0)


def test_timm_teacher_errors(tiny_checkpoint, image_items, tmp_path):
    teacher = timm_teacher(tiny_checkpoint)
    missing = Item(key="weapons:test:gone", path=str(tmp_path / "gone.jpg"))
    with pytest.raises(EdgemodError, match=r"'weapons:test:gone' not found: .*gone\.jpg"):
        teacher.predict_proba([image_items[0], missing])
    with pytest.raises(EdgemodError, match="unknown option 'batch_szie' \\(did you mean 'batch_size'\\?\\)"):
        timm_teacher(tiny_checkpoint, batch_szie=2)
    with pytest.raises(EdgemodError, match="timm teacher checkpoint not found"):
        timm_teacher(tmp_path / "no-checkpoint")
