"""Image augmentation sections of a recipe (`student.augment`, and the photometric part of `views:`).

Moderation frames are re-framed, recoloured and heavily compressed live streams."""
from __future__ import annotations

from pydantic import Field, model_validator

from edgemod.strict_model import StrictModel


class _AugmentStrict(StrictModel):
    pass


class ColorJitterSpec(_AugmentStrict):
    """torchvision ColorJitter factors; 0 turns one off."""

    brightness: float = Field(0.3, ge=0)
    contrast: float = Field(0.3, ge=0)
    saturation: float = Field(0.3, ge=0)
    hue: float = Field(0.05, ge=0, le=0.5)


class JpegSpec(_AugmentStrict):
    """Re-encode as JPEG at a quality drawn uniformly from `quality` (inclusive), with probability `p`."""

    quality: tuple[int, int] = (30, 95)
    p: float = Field(0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _range(self) -> JpegSpec:
        low, high = self.quality
        if not 1 <= low <= high <= 100:
            raise ValueError(f"jpeg quality must be 1 <= low <= high <= 100, got {self.quality}")
        return self


class AugmentSpec(_AugmentStrict):
    """Train-time augmentation; `enabled: false` trains on the eval pipeline."""

    enabled: bool = True
    scale: tuple[float, float] = Field((0.6, 1.0), description="random resized crop: area fraction range")
    ratio: tuple[float, float] = Field((3 / 4, 4 / 3), description="random resized crop: aspect ratio range")
    hflip: float = Field(0.5, ge=0, le=1, description="probability of a horizontal flip")
    rotation: float = Field(10.0, ge=0, le=180, description="max degrees either way")
    color_jitter: ColorJitterSpec = Field(default_factory=ColorJitterSpec)
    jpeg: JpegSpec = Field(default_factory=JpegSpec)

    @model_validator(mode="after")
    def _ranges(self) -> AugmentSpec:
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {self.scale}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < low <= high, got {self.ratio}")
        return self
