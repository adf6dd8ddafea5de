"""Vision data: the pre-processing contract against timm, image decoding edge cases, scanning,
augmentation and class balancing. Fast: generated files in tmp_path plus a few real images."""
from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from edgemod.errors import EdgemodError
from edgemod.runtime.image import ImageLoadError, PreprocessConfig, eval_transform, load_image, to_rgb
from edgemod.training.vision import (
    AugmentSpec,
    BadImagesWarning,
    ImageDataset,
    RandomJpeg,
    class_balanced_sampler,
    class_weights,
    preprocess_from_timm,
    scan_images,
    train_transform,
)

GREY = (128, 128, 128)


@pytest.fixture(scope="module")
def validation_paths() -> list[str]:
    from edgemod.catalog import load_split

    return load_split("weapons:validation")["path"].tolist()


@pytest.fixture(scope="module")
def real_image(validation_paths):
    """A non-square real image, so the shorter-side resize and the crop both matter."""
    for path in validation_paths:
        image = load_image(path)
        if image.size[0] != image.size[1]:
            return image
    pytest.fail("no non-square image in weapons:validation")


def _noise(size=(64, 48), seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def _jpeg_bytes(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **kwargs)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# PreprocessConfig and eval_transform


def _timm_config(cfg: PreprocessConfig) -> dict:
    return {"input_size": cfg.input_size, "interpolation": cfg.interpolation, "crop_pct": cfg.crop_pct,
            "mean": cfg.mean, "std": cfg.std, "crop_mode": "center"}


@pytest.mark.parametrize(
    "make_cfg",
    [
        lambda: preprocess_from_timm("mobilenetv3_small_100"),
        lambda: preprocess_from_timm("mobilenetv3_small_100", image_size=160),  # 160/0.875 is not whole
        lambda: PreprocessConfig(input_size=(3, 192, 192), interpolation="bilinear", crop_pct=0.95,
                                 mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    ],
    ids=["mobilenetv3_small_100", "image_size_160", "bilinear_0.95"],
)
def test_eval_transform_matches_timm_on_a_real_image(real_image, make_cfg):
    from timm.data import create_transform

    cfg = make_cfg()
    ours = eval_transform(cfg)(real_image)
    theirs = create_transform(**_timm_config(cfg), is_training=False)(real_image)
    assert ours.shape == theirs.shape == (3, *cfg.input_size[1:])
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)


def test_from_timm_reads_the_default_config_of_an_untrained_model():
    import timm
    from timm.data import resolve_data_config

    model = timm.create_model("mobilenetv3_small_100", pretrained=False)
    cfg = preprocess_from_timm(model)
    assert cfg == preprocess_from_timm("mobilenetv3_small_100")
    data = resolve_data_config({}, model=model)
    assert (cfg.input_size, cfg.interpolation, cfg.crop_pct) == (data["input_size"], data["interpolation"], data["crop_pct"])
    assert cfg.resize_size == 256
    assert preprocess_from_timm(model, image_size=160).input_size == (3, 160, 160)


def test_from_timm_errors_say_how_to_fix():
    with pytest.raises(EdgemodError, match="did you mean 'resnet50'"):
        preprocess_from_timm("resnet5O")
    with pytest.raises(EdgemodError, match="list_pretrained"):
        preprocess_from_timm("mobilenetv3_small_100.no_such_tag")


def test_preprocess_config_json_round_trip():
    cfg = preprocess_from_timm("mobilenetv3_small_100", image_size=192)
    data = json.loads(json.dumps(cfg.to_dict()))
    assert data["resize_size"] == int(192 / 0.875)
    assert data["channel_order"] == "RGB" and data["layout"] == "NCHW"
    assert PreprocessConfig.from_dict(data) == cfg


def test_preprocess_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValidationError, match="extra"):
        PreprocessConfig.from_dict({"input_size": [3, 224, 224], "crop_ptc": 0.9})
    with pytest.raises(ValidationError, match="square"):
        PreprocessConfig(input_size=(3, 224, 160))
    with pytest.raises(ValidationError):
        PreprocessConfig(channel_order="BGR")
    with pytest.raises(EdgemodError, match="resize_size"):
        PreprocessConfig.from_dict({**PreprocessConfig().to_dict(), "resize_size": 250})


# ---------------------------------------------------------------------------------------------
# load_image


def test_load_image_grayscale_and_binary(tmp_path):
    Image.new("L", (6, 4), 77).save(tmp_path / "l.png")
    Image.new("1", (6, 4), 1).save(tmp_path / "one.png")
    for name, value in (("l.png", 77), ("one.png", 255)):
        image = load_image(tmp_path / name)
        assert image.mode == "RGB" and image.size == (6, 4)
        assert image.getpixel((0, 0)) == (value, value, value)


def test_load_image_scales_16_bit_grey_instead_of_clipping(tmp_path):
    values = np.array([[0, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "grey16.png")
    assert Image.open(tmp_path / "grey16.png").mode.startswith("I")
    image = load_image(tmp_path / "grey16.png")
    assert [image.getpixel((x, 0)) for x in range(3)] == [(0, 0, 0), GREY, (255, 255, 255)]


def test_load_image_composites_rgba_over_neutral_grey(tmp_path):
    rgba = Image.new("RGBA", (4, 2), (0, 0, 0, 0))  # black but fully transparent
    rgba.putpixel((3, 1), (255, 0, 0, 255))
    rgba.save(tmp_path / "rgba.png")
    image = load_image(tmp_path / "rgba.png")
    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == GREY
    assert image.getpixel((3, 1)) == (255, 0, 0)
    assert load_image(tmp_path / "rgba.png", background=(255, 255, 255)).getpixel((0, 0)) == (255, 255, 255)


def test_load_image_palette_with_transparency(tmp_path):
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([0, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    palette.putpixel((1, 1), 1)
    palette.save(tmp_path / "p.png", transparency=0)
    assert "transparency" in Image.open(tmp_path / "p.png").info
    image = load_image(tmp_path / "p.png")
    assert image.getpixel((0, 0)) == GREY
    assert image.getpixel((1, 1)) == (0, 0, 255)


def test_load_image_cmyk_jpeg_and_ycbcr(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    red, green, blue = load_image(tmp_path / "cmyk.jpg").getpixel((8, 8))
    assert red > 200 and green < 50 and blue < 50
    ycbcr = Image.new("RGB", (4, 4), (10, 200, 30)).convert("YCbCr")
    assert np.abs(np.asarray(to_rgb(ycbcr), dtype=int) - [10, 200, 30]).max() <= 3


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (5, 3)])
def test_tiny_images_load_and_resize(tmp_path, size):
    _noise(size).save(tmp_path / "tiny.png")
    image = load_image(tmp_path / "tiny.png")
    assert image.size == size
    cfg = PreprocessConfig()
    assert eval_transform(cfg)(image).shape == (3, 224, 224)
    assert train_transform(cfg, AugmentSpec())(image).shape == (3, 224, 224)


def test_load_image_applies_exif_orientation(tmp_path):
    stored = Image.new("RGB", (40, 20), (255, 0, 0))
    stored.paste((0, 0, 255), (20, 0, 40, 20))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    stored.save(tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=95)
    image = load_image(tmp_path / "rotated.jpg")
    assert image.size == (20, 40)
    top, bottom = image.getpixel((10, 5)), image.getpixel((10, 35))
    assert top[0] > 200 and top[2] < 60  # the stored left (red) is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def _broken_files(tmp_path) -> dict[str, object]:
    (tmp_path / "truncated.jpg").write_bytes(_jpeg_bytes(_noise((64, 64)), quality=90)[:1500])
    (tmp_path / "text.jpg").write_text("this is not an image\n")
    (tmp_path / "empty.png").write_bytes(b"")
    return {"truncated": tmp_path / "truncated.jpg", "text": tmp_path / "text.jpg",
            "empty": tmp_path / "empty.png", "missing": tmp_path / "missing.jpg"}


@pytest.mark.parametrize("kind", ["truncated", "text", "empty", "missing"])
def test_load_image_errors_name_the_path_and_cause(tmp_path, kind):
    path = _broken_files(tmp_path)[kind]
    with pytest.raises(ImageLoadError) as caught:
        load_image(path)
    assert str(path) in str(caught.value)
    assert caught.value.path == str(path) and caught.value.cause
    assert "on_bad_image: skip" in caught.value.hint
    if kind == "truncated":
        assert "truncated" in caught.value.cause
    if kind == "missing":
        assert "not found" in caught.value.cause


def test_image_load_error_can_be_rebuilt_from_its_message():
    # DataLoader workers re-raise exceptions as `type(err)(message)` in the parent process.
    assert isinstance(ImageLoadError("cannot load image x.jpg: truncated"), EdgemodError)


# ---------------------------------------------------------------------------------------------
# scan_images and ImageDataset


def _mixed_paths(tmp_path) -> list:
    good = []
    for i, mode in enumerate(("RGB", "L", "RGBA")):
        Image.new(mode, (10 + i, 20 + i)).save(tmp_path / f"good{i}.png")
        good.append(tmp_path / f"good{i}.png")
    broken = _broken_files(tmp_path)
    return [good[0], broken["truncated"], good[1], broken["text"], broken["missing"], good[2]]


def test_scan_images_reports_bad_files_modes_and_sizes(tmp_path):
    report = scan_images(_mixed_paths(tmp_path), workers=2)
    assert report.total == 6 and not report.ok
    assert [bad.index for bad in report.bad] == [1, 3, 4]
    reasons = {bad.path.rsplit("/", 1)[1]: bad.reason for bad in report.bad}
    assert "truncated" in reasons["truncated.jpg"]
    assert "not an image" in reasons["text.jpg"]
    assert "not found" in reasons["missing.jpg"]
    assert report.modes == {"RGB": 1, "L": 1, "RGBA": 1}
    assert report.min_size == (10, 20) and report.max_size == (12, 22)
    assert scan_images(_mixed_paths(tmp_path), workers=1).bad == report.bad


def test_raise_or_skip(tmp_path):
    report = scan_images(_mixed_paths(tmp_path))
    with pytest.raises(EdgemodError, match="3 of 6 image") as caught:
        report.raise_or_skip("error")
    assert "truncated.jpg" in str(caught.value) and "on_bad_image: skip" in caught.value.hint
    with pytest.warns(BadImagesWarning, match="skipped 3 of 6"):
        assert report.raise_or_skip("skip") == [0, 2, 5]
    with pytest.raises(EdgemodError, match="unknown on_bad_image"):
        report.raise_or_skip("ignore")
    clean = scan_images(_mixed_paths(tmp_path)[:1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert clean.raise_or_skip("error") == clean.raise_or_skip("skip") == [0]


def test_scan_of_real_validation_split_is_clean_and_fast(validation_paths):
    report = scan_images(validation_paths, workers=2)
    assert report.total == len(validation_paths) > 500
    assert report.bad == []
    assert report.raise_or_skip("error") == list(range(report.total))
    assert sum(report.modes.values()) == report.total
    assert max(report.max_size) <= 224  # the set is downscaled to fit 224 px
    assert report.seconds < 30  # about 0.3 s here; generous for a loaded 2-core CI box


def test_image_dataset_returns_tensors_and_names_late_failures(tmp_path, validation_paths):
    broken = _broken_files(tmp_path)
    dataset = ImageDataset([validation_paths[0], broken["truncated"]], eval_transform(PreprocessConfig()))
    assert len(dataset) == 2
    item = dataset[0]
    assert isinstance(item, torch.Tensor) and item.shape == (3, 224, 224)
    with pytest.raises(ImageLoadError, match=r"dataset item 1: cannot load image .*truncated\.jpg"):
        dataset[1]


# ---------------------------------------------------------------------------------------------
# Augmentation


def test_train_transform_shape_dtype_and_seeded_determinism(real_image):
    cfg = preprocess_from_timm("mobilenetv3_small_100", image_size=160)
    transform = train_transform(cfg, AugmentSpec(jpeg={"p": 1.0}))
    torch.manual_seed(3)
    first = transform(real_image)
    torch.manual_seed(3)
    again = transform(real_image)
    other = transform(real_image)
    assert first.shape == (3, 160, 160) and first.dtype == torch.float32
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    # Same normalisation as eval: a mid-grey image lands at (128/255 - mean) / std everywhere.
    grey = train_transform(cfg, AugmentSpec(color_jitter={"brightness": 0, "contrast": 0, "saturation": 0, "hue": 0},
                                            jpeg={"p": 0}))(Image.new("RGB", (50, 40), GREY))
    expected = (128 / 255 - torch.tensor(cfg.mean)) / torch.tensor(cfg.std)
    torch.testing.assert_close(grey.mean(dim=(1, 2)), expected.float(), atol=1e-5, rtol=0)


def test_disabled_augmentation_is_the_eval_pipeline(real_image):
    cfg = PreprocessConfig()
    torch.testing.assert_close(train_transform(cfg, AugmentSpec(enabled=False))(real_image), eval_transform(cfg)(real_image))


def test_augment_spec_validation():
    with pytest.raises(ValidationError, match="extra"):
        AugmentSpec(hflp=0.5)
    with pytest.raises(ValidationError, match="quality"):
        AugmentSpec(jpeg={"quality": (95, 30)})
    with pytest.raises(ValidationError, match="scale"):
        AugmentSpec(scale=(0.0, 1.0))
    assert AugmentSpec.model_validate_json(AugmentSpec().model_dump_json()) == AugmentSpec()


def test_random_jpeg_changes_pixels_but_keeps_size():
    image = _noise((37, 29))
    torch.manual_seed(0)
    out = RandomJpeg(quality=(10, 30), p=1.0)(image)
    assert out.size == image.size and out.mode == "RGB"
    assert np.abs(np.asarray(out, dtype=int) - np.asarray(image, dtype=int)).mean() > 5
    assert RandomJpeg(p=0.0)(image) is image


# ---------------------------------------------------------------------------------------------
# Class balancing


def test_class_balanced_sampler_draws_classes_about_equally():
    labels = np.array([0] * 900 + [1] * 90 + [2] * 10)
    sampler = class_balanced_sampler(labels, seed=7)
    drawn = list(sampler)
    assert len(drawn) == len(labels)
    shares = np.bincount(labels[drawn], minlength=3) / len(drawn)
    assert np.all(np.abs(shares - 1 / 3) < 0.08), shares
    assert list(class_balanced_sampler(labels, seed=7)) == drawn
    assert list(class_balanced_sampler(labels, seed=8)) != drawn


def test_class_weights_inverse_frequency_mean_one():
    labels = np.array([0] * 60 + [1] * 30 + [2] * 10)
    weights = class_weights(labels, 3)
    assert weights.dtype == torch.float32 and weights.shape == (3,)
    assert weights.mean().item() == pytest.approx(1.0)
    assert weights[2] > weights[1] > weights[0]
    assert weights[2] / weights[0] == pytest.approx(6.0)
    absent = class_weights(labels, 4)  # a class missing from a small slice: weight 0, never a target
    assert absent[3] == 0 and absent[:3].mean().item() == pytest.approx(1.0)
    with pytest.raises(EdgemodError, match="class ids"):
        class_weights(np.array([0, 5]), 3)
    with pytest.raises(EdgemodError, match="integer"):
        class_weights(np.array(["knife", "none"]), 2)
