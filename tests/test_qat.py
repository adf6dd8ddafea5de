"""Quantization-aware fine-tuning (distill.qat_epochs): int8 fake quantization at the tensors static
int8 export quantizes, active only while training, gone afterwards."""
import pytest
import torch

from edgemod.training.qat import FakeQuant, _RangeQuantizer


def test_range_quantizer_rounds_to_256_levels_with_straight_through_gradients():
    quantize = _RangeQuantizer()
    x = torch.linspace(-1.0, 3.0, 1000, requires_grad=True)
    y = quantize(x)
    assert len(torch.unique(y.detach())) <= 256
    assert (y - x).abs().max() <= (4.0 / 255) / 2 + 1e-6  # at most half a step away
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))  # inside the range the gradient passes unchanged
    assert quantize(torch.tensor([10.0])).item() == pytest.approx(10.0, abs=11 / 255)  # the range grows


def test_fake_quant_acts_in_training_only_and_leaves_no_trace():
    from edgemod.training.students.vision import create_timm_student

    torch.manual_seed(0)
    model = create_timm_student("efficientnet_lite0", 4, 64)
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        clean = model(x)
    fake = FakeQuant(model)
    with torch.no_grad():
        assert torch.equal(model(x), clean)  # eval: untouched
        model.train()
        model(x)
        assert len(fake.quantizers) > 30  # input, every conv+BN(+act), residual sums, the pooled features
        model.eval()
    summary = fake.remove()
    assert summary["tensors"] == len(fake.quantizers) and summary["widest_range"] > 0
    with torch.no_grad():
        model.train()
        torch.manual_seed(1)
        plain = model(x)
        quantized = FakeQuant(model)
        torch.manual_seed(1)
        assert not torch.allclose(model(x), plain)
        quantized.remove()
        torch.manual_seed(1)
        assert torch.allclose(model(x), plain)


def test_calibrated_ranges_come_from_eval_mode_images_and_stay_fixed():
    """qat_ranges: validation — min/max of clean images through the eval-mode model, not grown by
    the (wider) training batches afterwards."""
    from torch.utils.data import TensorDataset

    from edgemod.training.students.vision import create_timm_student

    torch.manual_seed(0)
    model = create_timm_student("efficientnet_lite0", 4, 64)
    clean = torch.rand(6, 3, 64, 64)
    fake = FakeQuant(model)
    fake.calibrate(model, TensorDataset(clean, torch.zeros(6, 4), torch.zeros(6, dtype=torch.long)), batch_size=4)
    assert not model.training and len(fake.quantizers) > 30
    ranges = {name: (q.low, q.high) for name, q in fake.quantizers.items()}
    assert ranges["input"] == (0.0, pytest.approx(float(clean.max())))
    with torch.no_grad():
        assert model(clean).shape == (6, 4)  # eval after calibration: nothing observed, nothing quantized
    model.train()
    wide = 20 * torch.randn(2, 3, 64, 64)
    quantized_input = fake.quantizers["input"](wide)
    assert float(quantized_input.max()) <= ranges["input"][1] + 1e-6  # clipped to the calibrated range
    model(wide)
    assert {name: (q.low, q.high) for name, q in fake.quantizers.items()} == ranges
    fake.remove()


def test_text_recipes_refuse_qat():
    from edgemod.recipe import load_recipe

    with pytest.raises(Exception, match="qat_epochs"):
        load_recipe("recipes/text-spam.yaml", overrides=["distill.qat_epochs=1"])
