"""The `views:` section of an image recipe: multi-view teacher labels (`training.vision.views`)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from edgemod.recipe_augment import ColorJitterSpec, JpegSpec
from edgemod.strict_model import StrictModel


class MixSpec(StrictModel):
    """Mix a view with a view of another train image; the teacher labels the mixed pixels."""

    kind: Literal["mixup", "cutmix"] = Field("mixup", description="mixup: blend the two views; cutmix: paste a box "
                                                                    "of the partner's view into this one")
    p: float = Field(0.5, ge=0, le=1, description="share of views that are mixed")
    alpha: float = Field(1.0, gt=0, description="the mixing ratio is drawn from Beta(alpha, alpha)")


class ViewsSpec(StrictModel):
    """K augmented views of every train (and transfer) image, each scored by the teachers once and
    stored with its parameters, so the student trains on exactly the pixels the teacher labelled
    (FKD, Shen & Xing, ECCV 2022; consistent teaching, Beyer et al., CVPR 2022)."""

    per_image: int = Field(0, ge=0, le=64, description="views per train/transfer image; 0: the teacher's labels "
                                                        "of the clean image only (fixed labels)")
    scale: tuple[float, float] = Field((0.35, 1.0), description="crop area as a share of the image")
    ratio: tuple[float, float] = Field((3 / 4, 4 / 3), description="crop aspect ratio range (width / height)")
    hflip: float = Field(0.5, ge=0, le=1, description="probability that a view is mirrored")
    # The photometric part of student.augment, drawn once per view and stored with it, so the teacher
    # labels the rotated, recoloured, re-compressed pixels the student then trains on.
    rotation: float = Field(0.0, ge=0, le=180, description="max degrees either way (0: none)")
    color_jitter: ColorJitterSpec | None = Field(None, description="brightness/contrast/saturation/hue factors")
    jpeg: JpegSpec | None = Field(None, description="re-encode at a random quality, with probability p")
    mix: MixSpec | None = None
    seed: int = 0

    @field_validator("scale", "ratio")
    @classmethod
    def _ordered(cls, bounds: tuple[float, float]) -> tuple[float, float]:
        if not 0 < bounds[0] <= bounds[1]:
            raise ValueError(f"need 0 < low <= high, got {list(bounds)}")
        return bounds

    @field_validator("scale")
    @classmethod
    def _area_share(cls, scale: tuple[float, float]) -> tuple[float, float]:
        if scale[1] > 1:
            raise ValueError(f"a crop cannot exceed the image: scale high {scale[1]} > 1")
        return scale
