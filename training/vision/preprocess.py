"""The pre-processing config a vision student is trained with, looked up in timm.

The config itself and the eval pipeline are the on-device contract (`edgemod.runtime.image`);
reading timm's data config for an architecture is needed only when training starts.
"""
from __future__ import annotations

from typing import Any

from edgemod.errors import EdgemodError, did_you_mean
from edgemod.runtime.image import PreprocessConfig


def preprocess_from_timm(model_or_name: Any, image_size: int | None = None) -> PreprocessConfig:
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
    return PreprocessConfig(
        input_size=tuple(data["input_size"]),
        interpolation=data["interpolation"],
        crop_pct=data["crop_pct"],
        mean=tuple(data["mean"]),
        std=tuple(data["std"]),
    )


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
