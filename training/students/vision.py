"""Image students: small timm models for on-device image classification.

Every student is a plain `timm.create_model(..., pretrained=False)` with the recipe's label count,
so the architecture and its pre-processing defaults come from timm's `pretrained_cfg`. Options a
factory takes: `image_size` (training/export resolution; the pre-processing follows it),
`drop_rate`, and any other timm keyword. The options are recorded on the model
(`edgemod_build_options`) so a checkpoint can rebuild exactly the same module.

Re-parameterizable models (MobileOne, FastViT, RepViT) train with extra branches; call
`reparameterize(model)` before export to fold them into single convolutions.
"""
from __future__ import annotations

from typing import Any

from edgemod.errors import EdgemodError, MissingDependencyError
from edgemod.training.students.registry import STUDENTS, register_student

TASK = "image-classification"
BUILD_OPTIONS_ATTR = "edgemod_build_options"
REPARAMETERIZED_ATTR = "edgemod_reparameterized"

# Per-architecture timm defaults that differ from timm's. RepViT's second (distillation) head is
# only useful with a separate distillation-token target; without it, it just doubles the head.
TIMM_DEFAULTS: dict[str, dict[str, Any]] = {"repvit_m0_9": {"distillation": False}}


def _timm():
    try:
        import timm
    except ImportError:
        raise MissingDependencyError("timm", "image students") from None
    return timm


def create_timm_student(arch: str, num_labels: int, image_size: int | None = None,
                        drop_rate: float = 0.0, **timm_kwargs):
    """A randomly initialised timm model with `num_labels` outputs, its build options recorded.

    Args:
        arch: a timm model name (`timm.list_models()`).
        num_labels: classifier width.
        image_size: the input side in pixels the model will see; None keeps timm's default.
        drop_rate: dropout before the classifier.
        **timm_kwargs: passed to `timm.create_model` (e.g. `drop_path_rate`).
    """
    timm = _timm()
    if not timm.is_model(arch):
        raise EdgemodError(f"timm {timm.__version__} has no model '{arch}'",
                           "pick a name from timm.list_models(), or upgrade timm")
    kwargs = {**TIMM_DEFAULTS.get(arch, {}), **timm_kwargs}
    try:
        model = timm.create_model(arch, pretrained=False, num_classes=num_labels, drop_rate=drop_rate,
                                  **kwargs)
    except TypeError as error:
        raise EdgemodError(f"timm model '{arch}' does not accept these options {sorted(kwargs)}: {error}",
                           "remove the option from student.options") from None
    # Everything needed to rebuild this exact module (checkpoint.py writes it into config.json).
    setattr(model, BUILD_OPTIONS_ATTR,
            {"image_size": image_size, "drop_rate": drop_rate, **timm_kwargs})
    return model


def _timm_student(name: str, arch: str, description: str):
    """Register `name` as a student built from the timm model `arch`."""

    def factory(num_labels: int, image_size: int | None = None, drop_rate: float = 0.0, **timm_kwargs):
        return create_timm_student(arch, num_labels, image_size=image_size, drop_rate=drop_rate,
                                   **timm_kwargs)

    factory.__name__ = f"build_{name}"
    factory.__doc__ = description
    factory.timm_arch = arch
    register_student(name, task=TASK, description=description)(factory)


_timm_student("mobilenetv3_small_100", "mobilenetv3_small_100",
              "MobileNetV3-Small 1.0: 1.5M params, the fastest baseline, hardswish activations")
_timm_student("mobileone_s0", "mobileone_s0",
              "MobileOne-S0: re-parameterizable CNN (call reparameterize before export)")
_timm_student("efficientvit_b0", "efficientvit_b0",
              "EfficientViT-B0 (MIT): CNN + linear attention; static int8 fails in ai-edge-quantizer")
_timm_student("fastvit_t8", "fastvit_t8",
              "FastViT-T8: re-parameterizable hybrid; slow in int8 on x86 (reparameterize before export)")
_timm_student("repvit_m0_9", "repvit_m0_9",
              "RepViT-M0.9: re-parameterizable mobile CNN, single head (reparameterize before export)")
# EfficientNet-Lite was designed for int8 on phones: ReLU6, no squeeze-excite, fixed stem and head.
# ImageNet weights: student.pretrained: imagenet:efficientnet_lite<N> (training/vision/pretrained.py).
for _variant, _about in ((0, "4.7M params, 224 px"), (1, "5.4M params, 240 px"), (2, "6.1M params, 260 px")):
    _timm_student(f"efficientnet_lite{_variant}", f"tf_efficientnet_lite{_variant}",
                  f"EfficientNet-Lite{_variant} ({_about}): int8-friendly; ImageNet weights as "
                  f"imagenet:efficientnet_lite{_variant}")
# Tests need a real mobile architecture that builds and trains in milliseconds at 64 px.
_timm_student("test_vision_tiny", "mobilenetv3_small_050",
              "tiny MobileNetV3-Small 0.5 (0.6M params) for tests")


def timm_arch(name: str) -> str:
    """The timm model behind a registered image student; other names are taken as timm names."""
    entry = STUDENTS.get(name)
    return getattr(entry.factory, "timm_arch", name) if entry else name


def is_image_student(name: str) -> bool:
    return name in STUDENTS and STUDENTS[name].task == TASK


def student_preprocess(model, image_size: int | None = None):
    """The eval pre-processing (`PreprocessConfig`) that goes with `model`.

    `image_size` overrides the size the model was built for, which overrides timm's default.
    """
    from edgemod.training.vision.preprocess import preprocess_from_timm

    built = getattr(model, BUILD_OPTIONS_ATTR, {}).get("image_size")
    return preprocess_from_timm(model, image_size=image_size or built)


def reparameterize(model):
    """An eval-mode copy of `model` with MobileOne/FastViT/RepViT branches fused for inference.

    The input model is left untouched (still trainable). Models without such branches come back as
    an eval-mode copy. Fusing uses the BatchNorm running statistics, hence eval mode.
    """
    from timm.utils import reparameterize_model

    was_training = model.training
    model.eval()  # deepcopy inside timm copies the mode; fusing is only exact in eval mode
    try:
        fused = reparameterize_model(model, inplace=False)
    finally:
        model.train(was_training)
    setattr(fused, REPARAMETERIZED_ATTR, True)
    return fused.eval()


def count_parameters(model, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those with `requires_grad`)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
