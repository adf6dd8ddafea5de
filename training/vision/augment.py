"""Training-time augmentation and class balancing for vision students.

The train pipeline ends in the same ToTensor + Normalize as `eval_transform`, so its tensors have
the eval shape, dtype and value scale. All randomness comes from torch's RNG (never Python's
`random`), so `torch.manual_seed` (and DataLoader's per-worker seeding) makes it reproducible.

Order, and why: capture-side changes first (camera tilt -> rotation, lighting -> colour jitter),
then the stream's compression (JPEG re-encode: live streams are heavily compressed before they
reach the phone), then the framing the app does (random resized crop, horizontal flip).
"""
from __future__ import annotations

import io

import numpy as np

from edgemod.errors import EdgemodError
from edgemod.recipe import AugmentSpec, ColorJitterSpec, JpegSpec  # noqa: F401  (re-exported)
from edgemod.runtime.image import PreprocessConfig, eval_transform, interpolation_mode, tensor_and_normalise


class RandomJpeg:
    """Re-encode a PIL RGB image as JPEG at a random quality; size and mode are kept.

    Args:
        quality: (low, high), inclusive, drawn uniformly.
        p: probability of applying it.
    """

    def __init__(self, quality: tuple[int, int] = (30, 95), p: float = 0.5):
        self.quality = (int(quality[0]), int(quality[1]))
        self.p = p

    def __call__(self, image):
        import torch

        if self.p < 1 and torch.rand(1).item() >= self.p:
            return image
        quality = int(torch.randint(self.quality[0], self.quality[1] + 1, (1,)).item())
        return jpeg_reencode(image, quality)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(quality={self.quality}, p={self.p})"


def jpeg_reencode(image, quality: int):
    """The PIL image encoded as JPEG at `quality` and decoded again (RGB, same size)."""
    from PIL import Image

    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def train_transform(cfg: PreprocessConfig, spec: AugmentSpec | None = None):
    """PIL RGB image -> augmented, normalised float32 tensor of shape `cfg.input_size`.

    Args:
        cfg: the student's pre-processing (size, interpolation, mean/std).
        spec: augmentation settings; None means the defaults, `enabled=False` the eval pipeline.
    """
    from torchvision import transforms as T

    spec = spec or AugmentSpec()
    if not spec.enabled:
        return eval_transform(cfg)
    jitter = spec.color_jitter
    steps = []
    if spec.rotation:
        # Fill with the alpha background (mid grey) so rotated corners look like "nothing".
        steps.append(T.RandomRotation(spec.rotation, interpolation=interpolation_mode("bilinear"),
                                      fill=list(cfg.alpha_background)))
    if any((jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue)):
        steps.append(T.ColorJitter(jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue))
    if spec.jpeg.p > 0:
        steps.append(RandomJpeg(spec.jpeg.quality, spec.jpeg.p))
    steps.append(
        T.RandomResizedCrop(
            (cfg.input_size[1], cfg.input_size[2]),
            scale=spec.scale,
            ratio=spec.ratio,
            interpolation=interpolation_mode(cfg.interpolation),
            antialias=True,
        )
    )
    if spec.hflip:
        steps.append(T.RandomHorizontalFlip(spec.hflip))
    return T.Compose([*steps, *tensor_and_normalise(cfg)])


# ---------------------------------------------------------------------------------------------
# Class imbalance: the trainer picks one of the two from the recipe.


def _class_ids(labels: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or not len(labels):
        raise EdgemodError(f"labels must be a non-empty 1-D array, got shape {labels.shape}", "pass one class id per example")
    if not np.issubdtype(labels.dtype, np.integer):
        raise EdgemodError(f"labels must be integer class ids, got dtype {labels.dtype}", "map label names to ids first")
    if labels.min() < 0 or (num_classes is not None and labels.max() >= num_classes):
        raise EdgemodError(
            f"class ids must lie in [0, {num_classes}), got {labels.min()}..{labels.max()}",
            "check num_classes against the recipe's labels",
        )
    return labels


def class_balanced_sampler(labels: np.ndarray, seed: int = 0):
    """Sampler that draws every class equally often in expectation (weight 1/class count).

    Draws `len(labels)` indices with replacement per epoch from a generator seeded with `seed`,
    so rare classes repeat and common ones are sub-sampled; pass it as DataLoader's `sampler`.
    """
    labels = _class_ids(labels)
    counts = np.bincount(labels)
    return weighted_sampler(1.0 / counts[labels], seed)


def weighted_sampler(weights: np.ndarray, seed: int = 0):
    """`len(weights)` draws with replacement per epoch, row i with probability proportional to weights[i]."""
    import torch
    from torch.utils.data import WeightedRandomSampler

    generator = torch.Generator().manual_seed(int(seed))
    return WeightedRandomSampler(torch.as_tensor(np.asarray(weights), dtype=torch.double), num_samples=len(weights),
                                 replacement=True, generator=generator)


def class_weights(labels: np.ndarray, num_classes: int):
    """Per-class loss weights, inverse to class frequency and normalised to mean 1.

    A class absent from `labels` gets weight 0 (it is never a target, so the loss does not
    change) and the mean is taken over the classes present.

    Returns:
        float32 tensor of shape (num_classes,), for `CrossEntropyLoss(weight=...)`.
    """
    import torch

    labels = _class_ids(labels, num_classes)
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = 1.0 / counts[present]
    weights[present] /= weights[present].mean()
    return torch.as_tensor(weights, dtype=torch.float32)
