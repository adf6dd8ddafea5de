"""Vision data for training students: timm's pre-processing config, scanning image sets, augmentation,
balancing. Decoding and eval pre-processing are the on-device contract: `edgemod.runtime.image`."""
from edgemod.training.vision.augment import (
    AugmentSpec,
    ColorJitterSpec,
    JpegSpec,
    RandomJpeg,
    class_balanced_sampler,
    class_weights,
    train_transform,
)
from edgemod.training.vision.images import BadImage, BadImagesWarning, ImageDataset, ScanReport, scan_images
from edgemod.training.vision.preprocess import preprocess_from_timm

__all__ = [
    "AugmentSpec",
    "BadImage",
    "BadImagesWarning",
    "ColorJitterSpec",
    "ImageDataset",
    "JpegSpec",
    "RandomJpeg",
    "ScanReport",
    "class_balanced_sampler",
    "class_weights",
    "preprocess_from_timm",
    "scan_images",
    "train_transform",
]
