"""Decoding images the same way for training, scanning and golden vectors.

`load_image` turns any file PIL can read into 8-bit RGB, with the rules a port must copy:

- EXIF orientation is applied (`ImageOps.exif_transpose`): phones store rotated JPEGs.
- Transparency (RGBA, LA, PA, P or L/RGB with a `transparency` entry) is alpha-composited over
  `background`, mid grey `(128, 128, 128)` by default: near zero after normalisation, so it
  reads as "nothing" instead of the black or garbage RGB under transparent pixels.
- 16-bit and 32-bit integer grey (`I;16*`, `I`) is scaled by 1/257 (65535 -> 255); PIL's own
  conversion clips at 255, which turns most 16-bit images white. Float grey (`F`) is clipped
  to 0-255.
- Everything else (`1`, `L`, `P`, `CMYK`, `YCbCr`, `LAB`, `HSV`) goes through PIL's `convert("RGB")`.
- Tiny images (1x1) are fine: the resize in pre-processing scales them up.

A file that is missing, not an image, truncated or otherwise undecodable raises `ImageLoadError`
naming the path and the cause. `scan_images` decodes a whole list once up front, so a training
run learns about bad files before it starts, not at step 3,000 inside a DataLoader worker.
"""
from __future__ import annotations

import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from torch.utils.data import Dataset  # a base class cannot be imported lazily; PIL and numpy are

from edgemod.errors import EdgemodError
from edgemod.training.vision.preprocess import NEUTRAL_BACKGROUND

OnBadImage = Literal["error", "skip"]

_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_WIDE_GREY_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}
_SKIP_HINT = "replace or remove the file(s), or set `data.on_bad_image: skip` in the recipe to leave them out"


class ImageLoadError(EdgemodError):
    """An image file could not be decoded.

    Constructible from the message alone, so a DataLoader worker can re-raise it in the parent.
    """

    def __init__(self, message: str, hint: str | None = None, *, path: str | None = None, cause: str | None = None):
        super().__init__(message, hint)
        self.path = path
        self.cause = cause


class BadImagesWarning(UserWarning):
    """Images were left out because they cannot be decoded (`on_bad_image="skip"`)."""


def _load_error(path: Path | str, cause: str) -> ImageLoadError:
    return ImageLoadError(f"cannot load image {path}: {cause}", _SKIP_HINT, path=str(path), cause=cause)


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
# Scanning a set before training


class BadImage(BaseModel):
    index: int = Field(description="position in the scanned list")
    path: str
    reason: str


class ScanReport(BaseModel):
    """What `scan_images` found: bad files with reasons, PIL modes, size range, time taken."""

    total: int
    bad: list[BadImage] = Field(default_factory=list)
    modes: dict[str, int] = Field(default_factory=dict, description="PIL mode as stored in the file -> count")
    min_size: tuple[int, int] | None = Field(None, description="(smallest width, smallest height), each on its own")
    max_size: tuple[int, int] | None = Field(None, description="(largest width, largest height), each on its own")
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.bad

    def raise_or_skip(self, on_bad_image: OnBadImage = "error") -> list[int]:
        """Indices of the good images; or raise if there are bad ones and `on_bad_image` is "error".

        Raises:
            EdgemodError: bad images in "error" mode (lists the first five), or an unknown mode.
        """
        if on_bad_image not in ("error", "skip"):
            raise EdgemodError(f"unknown on_bad_image '{on_bad_image}'", "use 'error' or 'skip'")
        bad = {item.index for item in self.bad}
        if bad and on_bad_image == "error":
            first = "; ".join(f"{item.path}: {item.reason}" for item in self.bad[:5])
            more = f" (+{len(self.bad) - 5} more)" if len(self.bad) > 5 else ""
            raise EdgemodError(f"{len(self.bad)} of {self.total} image(s) cannot be decoded: {first}{more}", _SKIP_HINT)
        if bad:
            # warnings, not logging: callers and tests can filter or escalate them by category.
            warnings.warn(
                f"skipped {len(bad)} of {self.total} image(s) that cannot be decoded (e.g. {self.bad[0].path})",
                BadImagesWarning,
                stacklevel=2,
            )
        return [i for i in range(self.total) if i not in bad]


def _scan_one(path: str) -> tuple[str, tuple[int, int]]:
    image = decode_image(path)
    to_rgb(image)  # the conversion load_image will do can fail too (exotic modes)
    return image.mode, image.size


def scan_images(paths: Sequence[str | Path], workers: int = 2) -> ScanReport:
    """Decode every image once and report the bad ones, PIL modes and size range.

    Threads suffice: PIL releases the GIL while decoding. On this machine the 4,848 weapons
    images (JPEG, <= 224 px) take about a second.

    Args:
        paths: image files, in the order of the dataset (indices in the report refer to it).
        workers: decoding threads; 1 decodes in the calling thread.
    """
    started = time.perf_counter()
    paths = [str(p) for p in paths]
    results = _map(_scan_one_safe, paths, workers)
    report = ScanReport(total=len(paths))
    modes: Counter[str] = Counter()
    sizes = []
    for index, (path, result) in enumerate(zip(paths, results)):
        if isinstance(result, ImageLoadError):
            report.bad.append(BadImage(index=index, path=path, reason=result.cause or str(result)))
            continue
        modes[result[0]] += 1
        sizes.append(result[1])
    report.modes = dict(modes.most_common())
    if sizes:
        report.min_size = (min(w for w, _ in sizes), min(h for _, h in sizes))
        report.max_size = (max(w for w, _ in sizes), max(h for _, h in sizes))
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _scan_one_safe(path: str) -> Any:
    try:
        return _scan_one(path)
    except ImageLoadError as err:
        return err


def _map(fn: Callable, items: list, workers: int) -> list:
    from concurrent.futures import ThreadPoolExecutor

    if workers <= 1 or len(items) < 2:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


# ---------------------------------------------------------------------------------------------
# Dataset


class ImageDataset(Dataset):
    """Images as tensors through `transform`; targets stay with the caller (same index order).

    Run `scan_images(paths).raise_or_skip(...)` first; a file that still fails here (changed on
    disk since) raises `ImageLoadError` naming the index and path.
    """

    def __init__(self, paths: Sequence[str | Path], transform: Callable, background: tuple[int, int, int] = NEUTRAL_BACKGROUND):
        self.paths = [str(p) for p in paths]
        self.transform = transform
        self.background = tuple(background)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        try:
            image = load_image(self.paths[index], self.background)
        except ImageLoadError as err:
            raise ImageLoadError(
                f"dataset item {index}: {err.message}",
                "the file changed or broke after the scan; " + _SKIP_HINT,
                path=err.path,
                cause=err.cause,
            ) from err
        return self.transform(image)
