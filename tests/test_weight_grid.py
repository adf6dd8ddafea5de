"""distill.int8_weights: weights trained on a per-channel int8 grid."""
import pytest
import torch

from edgemod.errors import EdgemodError
from edgemod.training import weight_grid


def _convnet():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 8, 3, groups=8), torch.nn.Flatten(), torch.nn.LazyLinear(4))


def test_rounding_is_per_output_channel_with_127_levels():
    weight = torch.tensor([[0.5, -0.25, 0.1], [10.0, 3.0, -7.0]])
    rounded = weight_grid.int8_round(weight)
    levels = rounded / (weight.abs().amax(dim=1, keepdim=True) / 127)
    assert torch.allclose(levels, levels.round(), atol=1e-4)
    assert levels.abs().amax(dim=1).tolist() == pytest.approx([127, 127])
    assert not torch.equal(rounded, weight)


def test_gradients_pass_straight_through_and_materialized_weights_stay_on_the_grid():
    model = _convnet()
    model(torch.randn(2, 3, 8, 8))
    assert weight_grid.off_grid_layers(model)  # a fresh model is off the grid
    assert weight_grid.attach(model) == 3
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    latent = model[0].parametrizations.weight.original
    assert latent.grad is not None and latent.grad.abs().sum() > 0
    weight_grid.materialize(model)
    assert weight_grid.off_grid_layers(model) == []
    assert "0.weight" in model.state_dict() and not any("parametrizations" in k for k in model.state_dict())


def test_a_student_that_fuses_branches_at_export_is_refused():
    import timm

    with pytest.raises(EdgemodError, match="fuses its branches at export"):
        weight_grid.attach(timm.create_model("mobileone_s0", num_classes=4))
