"""The int8 emulation behind `distill.quantization_robust` (training/quant_robust.py)."""
import pytest
import torch

from edgemod.recipe import QuantizationRobustSpec
from training.quant_robust import (QuantizationEmulator, _activation_points, fake_quantize_activation,
                                   fake_quantize_weight)


def test_weights_round_per_output_channel_with_straight_through_gradient():
    torch.manual_seed(0)
    weight = (torch.randn(4, 3, 3, 3) * torch.tensor([0.01, 1.0, 10.0, 100.0]).view(4, 1, 1, 1)).requires_grad_()
    rounded = fake_quantize_weight(weight, bits=8)
    for channel in range(4):
        scale = weight[channel].abs().max().item() / 127
        error = (rounded[channel] - weight[channel]).abs().max().item()
        assert 0 < error <= scale / 2 + 1e-6  # each channel on its own grid, whatever its magnitude
        assert len(torch.unique(rounded[channel].detach())) <= 255
    rounded.sum().backward()
    assert torch.equal(weight.grad, torch.ones_like(weight))


def test_activations_round_to_the_range_with_zero_exact_and_clip_outside():
    x = torch.tensor([-1.0, 0.0, 0.3, 2.9, 5.0])
    rounded = fake_quantize_activation(x, low=-1.0, high=3.0, bits=8)
    assert rounded[1].item() == 0.0
    assert rounded[4].item() == pytest.approx(3.0, abs=4.0 / 255)
    assert (rounded[:4] - x[:4]).abs().max().item() <= 4.0 / 255 / 2 + 1e-6


def _tiny_net():
    import timm

    return timm.create_model("mobilenetv3_small_050", num_classes=4, pretrained=False).eval()


def test_batch_norm_with_fused_activation_is_one_quantization_point():
    names = [name for name, _ in _activation_points(_tiny_net())]
    assert "conv_stem" not in names and "bn1" in names
    assert "bn1.act" not in names  # fused into bn1, as the converters do
    assert any(name.endswith("se.act_fn") or ".se." in name for name in names)


def test_emulation_is_close_to_float_and_hooks_stay_off_outside_it():
    torch.manual_seed(0)
    model = _tiny_net()
    emulator = QuantizationEmulator(model, QuantizationRobustSpec())
    image = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        float_before = model(image)
        emulated = emulator.emulated_logits(image)
        float_after = model(image)
    assert torch.equal(float_before, float_after)  # the emulation leaves the float model alone
    assert not torch.equal(emulated, float_before)
    assert (emulated - float_before).abs().max().item() < 1.0
    emulator.close()
    assert all(not module._forward_hooks for module in model.modules())


def test_minimising_the_consistency_loss_brings_int8_closer_to_float():
    torch.manual_seed(0)
    model = _tiny_net().train()
    emulator = QuantizationEmulator(model, QuantizationRobustSpec(weight=1.0))
    images = torch.randn(8, 3, 64, 64)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def distance():
        model.eval()
        with torch.no_grad():
            value = emulator.consistency_loss(model(images), images).item()
        model.train()
        return value

    before = distance()
    for _ in range(30):
        loss = emulator.consistency_loss(model(images), images)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert distance() < 0.5 * before
