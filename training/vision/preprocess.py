"""The pre-processing contract of a vision student: what the phone must do to a frame.

`PreprocessConfig` travels with the weights (timm's rule: the data config belongs to the model)
and into the published manifest, so the Swift/Kotlin ports can replicate it. The eval pipeline,
step by step, for `input_size=(3, H, W)` (H == W) and `crop_pct`:

1. Decode to 8-bit RGB (see `training.vision.images.load_image`: EXIF orientation applied,
   transparency composited over `alpha_background`, 16-bit grey scaled by 1/257).
2. Resize so the SHORTER side becomes `S = int(H / crop_pct)` (floor; 224 / 0.875 = 256); the
   longer side becomes `int(S * long / short)` (floor, torchvision's rule), aspect kept. Filter:
   `interpolation` with antialiasing, i.e. PIL's `Image.resize(..., BICUBIC|BILINEAR)`, whose
   kernel widens by the scale factor when shrinking (a plain 4-tap bicubic sample differs from
   it when downscaling). The resized pixels are rounded back to 8 bits, as PIL does.
3. Center crop H x W: `top = round((h - H) / 2)`, `left = round((w - W) / 2)` (Python's round,
   half to even), which never pads because step 2 made both sides >= S >= H.
4. To float32 in [0, 1] (`value / 255`), channels RGB, layout NCHW.
5. Normalise per channel: `(x - mean[c]) / std[c]`.

This is timm's `create_transform(**data_config, is_training=False)` for `crop_mode="center"`,
and `eval_transform` builds exactly it (tested against timm on a real image).
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edgemod.errors import EdgemodError, did_you_mean

# Transparency is composited over mid grey: after ImageNet normalisation it lands near zero,
# so a transparent area reads as "nothing" rather than as a white or black object.
NEUTRAL_BACKGROUND: tuple[int, int, int] = (128, 128, 128)

RESIZE_RULE = (
    "resize shorter side to int(H / crop_pct) (longer side int(S * long / short)), antialiased "
    "`interpolation` as PIL resize; then center crop H x W at round((h - H) / 2), round((w - W) / 2)"
)


class PreprocessConfig(BaseModel):
    """Everything a port needs to turn a decoded image into the model's input tensor.

    The Literal fields have one allowed value today; they are written out so the manifest states
    them instead of leaving a port to guess (BGR, NHWC and 0-255 inputs are common elsewhere).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_size: tuple[int, int, int] = Field((3, 224, 224), description="(C, H, W) of the model input")
    interpolation: Literal["bilinear", "bicubic"] = "bicubic"
    crop_pct: float = Field(0.875, gt=0, le=1, description="center-crop fraction of the resized shorter side")
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    channel_order: Literal["RGB"] = "RGB"
    layout: Literal["NCHW"] = "NCHW"
    value_range: Literal["0-1 before normalisation"] = "0-1 before normalisation"
    resize: Literal["shorter_side_then_center_crop"] = Field(
        "shorter_side_then_center_crop", description=RESIZE_RULE
    )
    alpha_background: tuple[int, int, int] = Field(
        NEUTRAL_BACKGROUND, description="RGB that transparent pixels are composited over"
    )

    @field_validator("std")
    @classmethod
    def _std_positive(cls, std: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(std) <= 0:
            raise ValueError(f"std must be > 0 per channel, got {std}")
        return std

    @field_validator("alpha_background")
    @classmethod
    def _byte_colour(cls, rgb: tuple[int, int, int]) -> tuple[int, int, int]:
        if not all(0 <= v <= 255 for v in rgb):
            raise ValueError(f"alpha_background must be 0-255 per channel, got {rgb}")
        return rgb

    @model_validator(mode="after")
    def _square_rgb(self) -> PreprocessConfig:
        c, h, w = self.input_size
        if c != 3:
            raise ValueError(f"input_size must have 3 channels (RGB), got {self.input_size}")
        if h != w or h < 8:
            # timm switches to a different keep-ratio resize for non-square inputs; one rule is
            # simpler to port and every mobile student here is square.
            raise ValueError(f"input_size must be square and >= 8 px, got {self.input_size}")
        return self

    @property
    def image_size(self) -> int:
        return self.input_size[1]

    @property
    def resize_size(self) -> int:
        """Length of the shorter side after step 2 (256 for 224 at crop_pct 0.875)."""
        return int(self.input_size[1] / self.crop_pct)

    @classmethod
    def from_timm(cls, model_or_name: Any, image_size: int | None = None) -> PreprocessConfig:
        """The data config timm ships with an architecture (works with `pretrained=False`).

        Args:
            model_or_name: a timm model, or a registered architecture name
                (`"mobilenetv3_small_100"`, `"mobilenetv3_small_100.lamb_in1k"`).
            image_size: train/serve at this square size instead of the default one.

        Raises:
            EdgemodError: unknown architecture, or a data config this contract cannot express.
        """
        from timm.data import resolve_data_config

        pretrained_cfg = _timm_pretrained_cfg(model_or_name) if isinstance(model_or_name, str) else None
        args = {"input_size": (3, image_size, image_size)} if image_size else {}
        model = None if pretrained_cfg is not None else model_or_name
        data = resolve_data_config(args, pretrained_cfg=pretrained_cfg, model=model)
        name = model_or_name if isinstance(model_or_name, str) else type(model_or_name).__name__
        if data.get("crop_mode", "center") != "center":
            raise EdgemodError(
                f"timm data config of '{name}' uses crop_mode '{data['crop_mode']}'; only 'center' is supported",
                "pick another architecture or pass an explicit PreprocessConfig",
            )
        if data["interpolation"] not in ("bilinear", "bicubic"):
            raise EdgemodError(
                f"timm data config of '{name}' uses interpolation '{data['interpolation']}'",
                "only bilinear and bicubic are supported; pass an explicit PreprocessConfig",
            )
        return cls(
            input_size=tuple(data["input_size"]),
            interpolation=data["interpolation"],
            crop_pct=data["crop_pct"],
            mean=tuple(data["mean"]),
            std=tuple(data["std"]),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, plus the derived `resize_size` so a port need not recompute it."""
        return {**self.model_dump(mode="json"), "resize_size": self.resize_size}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessConfig:
        """Inverse of `to_dict`; a stale `resize_size` (edited by hand) is an error."""
        data = dict(data)
        resize_size = data.pop("resize_size", None)
        cfg = cls.model_validate(data)
        if resize_size is not None and resize_size != cfg.resize_size:
            raise EdgemodError(
                f"pre-processing says resize_size {resize_size} but input_size/crop_pct give {cfg.resize_size}",
                "drop resize_size from the file (it is derived) or fix input_size/crop_pct",
            )
        return cfg


def _timm_pretrained_cfg(name: str):
    import timm
    from timm.models import get_pretrained_cfg

    arch = name.split(".", 1)[0]
    if not timm.is_model(arch):
        raise EdgemodError(
            f"unknown timm architecture '{arch}'{did_you_mean(arch, timm.list_models())}",
            "see timm.list_models('*mobile*')",
        )
    try:
        cfg = get_pretrained_cfg(name)
    except RuntimeError as err:  # a tag the architecture does not have
        raise EdgemodError(f"timm: {err}", f"use '{arch}' (default tag) or a tag of timm.list_pretrained('{arch}')") from err
    if cfg is None:
        raise EdgemodError(
            f"timm has no data config for '{name}'", "pass the created model instead of its name, or a PreprocessConfig"
        )
    return cfg.to_dict()


def eval_transform(cfg: PreprocessConfig):
    """PIL RGB image -> normalised float32 tensor (C, H, W), exactly as the module docstring says.

    Equal to `timm.data.create_transform(**data_config, is_training=False)` for the same config.
    """
    from torchvision import transforms as T

    return T.Compose(
        [
            T.Resize(cfg.resize_size, interpolation=interpolation_mode(cfg.interpolation), antialias=True),
            T.CenterCrop((cfg.input_size[1], cfg.input_size[2])),
            *tensor_and_normalise(cfg),
        ]
    )


def tensor_and_normalise(cfg: PreprocessConfig) -> list:
    """The tail every pipeline shares, so train and eval tensors cannot drift apart."""
    from torchvision import transforms as T

    return [T.ToTensor(), T.Normalize(mean=list(cfg.mean), std=list(cfg.std))]


def interpolation_mode(name: str):
    from torchvision.transforms import InterpolationMode

    return {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC}[name]
