"""Vision data for students: pre-processing contract, image decoding, augmentation, balancing."""
from edgemod.training.vision.augment import (
    AugmentSpec,
    ColorJitterSpec,
    JpegSpec,
    RandomJpeg,
    class_balanced_sampler,
    class_weights,
    train_transform,
)
from edgemod.training.vision.images import (
    BadImage,
    BadImagesWarning,
    ImageDataset,
    ImageLoadError,
    ScanReport,
    decode_image,
    load_image,
    scan_images,
    to_rgb,
)
from edgemod.training.vision.preprocess import NEUTRAL_BACKGROUND, PreprocessConfig, eval_transform

__all__ = [
    "NEUTRAL_BACKGROUND",
    "AugmentSpec",
    "BadImage",
    "BadImagesWarning",
    "ColorJitterSpec",
    "ImageDataset",
    "ImageLoadError",
    "JpegSpec",
    "PreprocessConfig",
    "RandomJpeg",
    "ScanReport",
    "class_balanced_sampler",
    "class_weights",
    "decode_image",
    "eval_transform",
    "load_image",
    "scan_images",
    "to_rgb",
    "train_transform",
]
