"""Image pre-processing a phone must copy: decode a file, then resize, crop and normalise it.

Decoding (`load_image`) turns any file PIL can read into 8-bit RGB, with the rules a port must copy:

- EXIF orientation is applied (`ImageOps.exif_transpose`): phones store rotated JPEGs.
- Transparency (RGBA, LA, PA, P or L/RGB with a `transparency` entry) is alpha-composited over
  `background`, mid grey `(128, 128, 128)` by default: near zero after normalisation, so it
  reads as "nothing" instead of the black or garbage RGB under transparent pixels.
- 16-bit and 32-bit integer grey (`I;16*`, `I`) is scaled by 1/257 (65535 -> 255); PIL's own
  conversion clips at 255, which turns most 16-bit images white. Float grey (`F`) is clipped
  to 0-255.
- Everything else (`1`, `L`, `P`, `CMYK`, `YCbCr`, `LAB`, `HSV`) goes through PIL's `convert("RGB")`.
- Tiny images (1x1) are fine: the resize scales them up.

A file that is missing, not an image, truncated or otherwise undecodable raises `ImageLoadError`
naming the path and the cause.

`PreprocessConfig` travels with the weights (timm's rule: the data config belongs to the model)
and into the published manifest, so the Swift/Kotlin ports can replicate it. The eval pipeline,
step by step, for `input_size=(3, H, W)` (H == W) and `crop_pct`:

1. Decode to 8-bit RGB with `load_image`, transparency composited over `alpha_background`.
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
and `eval_transform` builds exactly it (tested against timm on a real image). PIL, numpy and
torchvision are imported inside the functions that use them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edgemod.errors import EdgemodError

TASKS_RESIZE_RULE = (
    "mediapipe_tasks_roi: what MediaPipe Tasks' CPU image-to-tensor does with the region of interest "
    "the app passes (the center square of side min(w, h) * crop_pct): OpenCV warpPerspective of the 8-bit "
    "frame, bilinear, the ROI's corners mapped onto the output's corners (0, 0) and (W, H), edge pixels "
    "replicated; `interpolation` is not used"
)

# Transparency is composited over mid grey: after ImageNet normalisation it lands near zero,
# so a transparent area reads as "nothing" rather than as a white or black object.
NEUTRAL_BACKGROUND: tuple[int, int, int] = (128, 128, 128)

RESIZE_RULE = (
    "resize shorter side to int(H / crop_pct) (longer side int(S * long / short)), antialiased "
    "`interpolation` as PIL resize; then center crop H x W at round((h - H) / 2), round((w - W) / 2)"
)

_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_WIDE_GREY_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}
# Training reads whole sets of files, so the hint names its way to leave bad ones out too.
SKIP_HINT = "replace or remove the file(s), or set `data.on_bad_image: skip` in the recipe to leave them out"


class ImageLoadError(EdgemodError):
    """An image file could not be decoded.

    Constructible from the message alone, so a DataLoader worker can re-raise it in the parent.
    """

    def __init__(self, message: str, hint: str | None = None, *, path: str | None = None, cause: str | None = None):
        super().__init__(message, hint)
        self.path = path
        self.cause = cause


def _load_error(path: Path | str, cause: str) -> ImageLoadError:
    return ImageLoadError(f"cannot load image {path}: {cause}", SKIP_HINT, path=str(path), cause=cause)


def decode_image(path: str | Path):
    """Open and fully decode `path`, EXIF orientation applied, in the file's own PIL mode.

    Raises:
        ImageLoadError: missing, unreadable, truncated or not an image.
    """
    from PIL import Image, ImageOps

    path = Path(path)
    if not path.is_file():
        raise _load_error(path, "file not found" if not path.exists() else "not a regular file")
    try:
        with Image.open(path) as image:
            image.load()  # decode now: Image.open only reads the header, truncation shows here
            return ImageOps.exif_transpose(image)  # a new, file-independent image
    except Image.UnidentifiedImageError:
        raise _load_error(path, "not an image file PIL can identify") from None
    # PIL reports corrupt data as OSError, SyntaxError, ValueError, struct.error, EOFError, ... .
    except Exception as err:
        raise _load_error(path, f"{type(err).__name__}: {err}") from err


def to_rgb(image, background: tuple[int, int, int] = NEUTRAL_BACKGROUND):
    """Any PIL mode -> 8-bit RGB by the rules of the module docstring (returns a new image)."""
    from PIL import Image

    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if image.mode in _WIDE_GREY_MODES or image.mode == "F":
        return _wide_grey_to_rgb(image)
    return image.convert("RGB")


def _wide_grey_to_rgb(image):
    import numpy as np
    from PIL import Image

    values = np.asarray(image, dtype=np.float64)
    if image.mode != "F":
        values = values / 257.0  # 0..65535 -> 0..255
    grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, mode="L").convert("RGB")


def load_image(path: str | Path, background: tuple[int, int, int] = NEUTRAL_BACKGROUND):
    """Decode `path` to an 8-bit RGB PIL image (EXIF orientation applied, alpha composited).

    Args:
        path: the image file.
        background: RGB under transparent pixels; keep it equal to `PreprocessConfig.alpha_background`.

    Raises:
        ImageLoadError: missing, unreadable, truncated or not an image (names path and cause).
    """
    image = decode_image(path)
    try:
        return to_rgb(image, background)
    except Exception as err:  # an exotic mode PIL cannot convert
        raise _load_error(path, f"cannot convert mode {image.mode} to RGB: {err}") from err


# ---------------------------------------------------------------------------------------------
# Resize, crop, normalise


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
    resize: Literal["shorter_side_then_center_crop", "mediapipe_tasks_roi"] = Field(
        "shorter_side_then_center_crop", description=f"{RESIZE_RULE}; or {TASKS_RESIZE_RULE}"
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
        """Side of the square model input (H == W)."""
        return self.input_size[1]

    @property
    def resize_size(self) -> int:
        """Length of the shorter side after step 2 (256 for 224 at crop_pct 0.875)."""
        return int(self.input_size[1] / self.crop_pct)

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


def eval_transform(cfg: PreprocessConfig):
    """PIL RGB image -> normalised float32 tensor (C, H, W), exactly as the module docstring says.

    Equal to `timm.data.create_transform(**data_config, is_training=False)` for the same config;
    with `resize: mediapipe_tasks_roi`, MediaPipe Tasks' own crop and resize instead.
    """
    from torchvision import transforms as T

    if cfg.resize == "mediapipe_tasks_roi":
        return T.Compose([TasksRoiResize(cfg.image_size, cfg.crop_pct), *tensor_and_normalise(cfg)])
    return T.Compose(
        [
            T.Resize(cfg.resize_size, interpolation=interpolation_mode(cfg.interpolation), antialias=True),
            T.CenterCrop((cfg.input_size[1], cfg.input_size[2])),
            *tensor_and_normalise(cfg),
        ]
    )


class TasksRoiResize:
    """PIL RGB image -> PIL RGB image (size x size) as MediaPipe Tasks builds it on the CPU from a
    center-square region of interest (`TASKS_RESIZE_RULE`). Students meant to run in Tasks' own
    pre-processing use it, so edgemod checks them on exactly the pixels Tasks gives the model:
    PIL's half-pixel, antialiased resize and Tasks' corner-mapped warp differ by up to 0.45 in the
    scores of small upscaled frames."""

    def __init__(self, size: int, crop_pct: float):
        self.size, self.crop_pct = size, crop_pct

    def __call__(self, image):
        import numpy as np
        from PIL import Image

        cv2 = _opencv()
        frame = np.asarray(image)
        height, width = frame.shape[:2]
        side = min(width, height) * self.crop_pct
        box = ((width / 2, height / 2), (side, side), 0.0)
        corners = cv2.boxPoints(box).astype(np.float32)  # bottom-left, top-left, top-right, bottom-right
        out = np.array([[0, self.size], [0, 0], [self.size, 0], [self.size, self.size]], np.float32)
        warp = cv2.getPerspectiveTransform(corners, out)
        pixels = cv2.warpPerspective(frame, warp, (self.size, self.size), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE)
        return Image.fromarray(pixels, mode="RGB")

    def __repr__(self) -> str:
        return f"TasksRoiResize(size={self.size}, crop_pct={self.crop_pct})"


def _opencv():
    try:
        import cv2
    except ImportError:
        from edgemod.errors import MissingDependencyError

        raise MissingDependencyError("opencv-contrib-python", "the mediapipe_tasks_roi resize (it comes with mediapipe)") \
            from None
    return cv2


def tensor_and_normalise(cfg: PreprocessConfig) -> list:
    """The tail every pipeline shares, so train and eval tensors cannot drift apart."""
    from torchvision import transforms as T

    return [T.ToTensor(), T.Normalize(mean=list(cfg.mean), std=list(cfg.std))]


def interpolation_mode(name: str):
    """torchvision's InterpolationMode for a `PreprocessConfig.interpolation` name."""
    from torchvision.transforms import InterpolationMode

    return {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC}[name]
