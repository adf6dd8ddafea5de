"""ONNX int8 on x86 CPUs without VNNI: the runner must not use saturating kernels."""
import numpy as np
import torch


def test_onnx_int8_runner_does_not_saturate_on_avx2(tmp_path):
    """Without VNNI, onnxruntime's fast u8 x s8 kernels clamp pairwise sums at 32767; the runner
    must select the exact kernels (a no-op on ARM and VNNI CPUs, where this passes either way)."""
    from edgemod.quantization.calibration import CalibrationSet
    from edgemod.quantization.onnx import quantize_onnx
    from edgemod.runtime.runners import OnnxRunner

    conv = torch.nn.Conv2d(64, 8, 1, bias=False)
    torch.nn.init.constant_(conv.weight, 0.5)
    sample = torch.full((1, 64, 4, 4), 6.0)
    torch.onnx.export(conv.eval(), (sample,), tmp_path / "fp32.onnx", input_names=["image"], dynamo=True,
                      external_data=False)
    images = np.random.default_rng(0).uniform(0, 6, (8, 64, 4, 4)).astype(np.float32)
    images[0] = 6.0  # the calibrated ranges cover the test input: only saturation can differ
    calibration = CalibrationSet(inputs={"image": images}, sha256="-", source="uniform noise", items=len(images))
    quantize_onnx(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", "int8_static", calibration, [], [])
    scores = OnnxRunner(tmp_path / "int8.onnx", ("image",))({"image": sample.numpy()})
    np.testing.assert_allclose(scores, 64 * 0.5 * 6.0, rtol=0.02)
