"""Core ML compression, and the same compression applied in PyTorch to estimate its accuracy on
Linux (Core ML itself only predicts on macOS).

- w8: int8 per-channel symmetric weights (`linear_quantize_weights`); estimate: PostTrainingQuantizer.
- palettize: k-means weight palettes of `palettize_bits`; estimate: PostTrainingPalettizer.
- w8a8: int8 weights and activations from the calibration set (coremltools.optimize.torch
  LinearQuantizer, then converted); the fake-quantized torch model is the estimate.
"""
from __future__ import annotations

import copy

from edgemod.optional import coremltools


def compress_program(model, scheme: str, bits: int):
    """w8 or palettize an fp16/fp32 mlprogram."""
    coremltools()  # the install hint when missing, and the safe import order
    import coremltools.optimize.coreml as cto

    if scheme == "w8":
        config = cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel")
        return cto.linear_quantize_weights(model, cto.OptimizationConfig(global_config=config))
    config = cto.OpPalettizerConfig(mode="kmeans", nbits=bits)
    return cto.palettize_weights(model, cto.OptimizationConfig(global_config=config))


def torch_estimate(module, scheme: str, bits: int, calibration_batches: list[tuple] | None = None):
    """A PyTorch module that computes what the compressed Core ML model computes (up to fp16)."""
    coremltools()
    module = copy.deepcopy(module).eval()
    if scheme == "w8":
        from coremltools.optimize.torch.quantization import PostTrainingQuantizer, PostTrainingQuantizerConfig

        config = PostTrainingQuantizerConfig.from_dict(
            {"global_config": {"weight_dtype": "int8", "granularity": "per_channel"}})
        return PostTrainingQuantizer(module, config).compress().eval()
    if scheme == "palettize":
        from coremltools.optimize.torch.palettization import PostTrainingPalettizer, PostTrainingPalettizerConfig

        config = PostTrainingPalettizerConfig.from_dict({"global_config": {"n_bits": bits}})
        return PostTrainingPalettizer(module, config).compress().eval()
    return _w8a8(module, calibration_batches or [])


def _w8a8(module, calibration_batches: list[tuple]):
    import torch
    from coremltools.optimize.torch.quantization import LinearQuantizer, LinearQuantizerConfig, ModuleLinearQuantizerConfig

    plain = plain_batchnorm(module)
    config = LinearQuantizerConfig(global_config=ModuleLinearQuantizerConfig(
        quantization_scheme="symmetric", milestones=[0, 1000, 1000, 0]))
    quantizer = LinearQuantizer(plain, config)
    prepared = quantizer.prepare(example_inputs=calibration_batches[0], inplace=False)
    quantizer.step()
    with torch.no_grad():
        for batch in calibration_batches:
            prepared(*batch)
    return quantizer.finalize(inplace=False).eval()


def plain_batchnorm(module):
    """timm's BatchNormAct2d traces as training-mode batch norm under FX (agreement fell to 0.17);
    swap each for BatchNorm2d followed by its drop and activation."""
    import torch

    try:
        from timm.layers import BatchNormAct2d
    except ImportError:
        return module
    for name, child in list(module.named_children()):
        if isinstance(child, BatchNormAct2d):
            bn = torch.nn.BatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                      child.track_running_stats)
            bn.load_state_dict({k: v for k, v in child.state_dict().items() if k in bn.state_dict()})
            setattr(module, name, torch.nn.Sequential(bn, child.drop, child.act).eval())
        else:
            plain_batchnorm(child)
    return module
