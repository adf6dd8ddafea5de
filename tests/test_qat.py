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


def test_text_recipes_refuse_qat():
    from edgemod.recipe import load_recipe

    with pytest.raises(Exception, match="qat_epochs"):
        load_recipe("recipes/text-spam.yaml", overrides=["distill.qat_epochs=1"])
