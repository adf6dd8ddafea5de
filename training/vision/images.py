"""Checking and reading a whole set of images for training.

Decoding one file is the on-device contract (`edgemod.runtime.image.load_image`). Here:
`scan_images` decodes a whole list once up front, so a training run learns about bad files
before it starts, not at step 3,000 inside a DataLoader worker, and `ImageDataset` feeds the
decoded images through a transform.
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
from edgemod.runtime.image import NEUTRAL_BACKGROUND, SKIP_HINT, ImageLoadError, decode_image, load_image, to_rgb

OnBadImage = Literal["error", "skip"]


class BadImagesWarning(UserWarning):
    """Images were left out because they cannot be decoded (`on_bad_image="skip"`)."""


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
            raise EdgemodError(f"{len(self.bad)} of {self.total} image(s) cannot be decoded: {first}{more}", SKIP_HINT)
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
                "the file changed or broke after the scan; " + SKIP_HINT,
                path=err.path,
                cause=err.cause,
            ) from err
        return self.transform(image)
