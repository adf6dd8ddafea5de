"""distill.freeze: frozen modules keep their weights and BatchNorm statistics; patterns are checked."""
import pytest
import torch

from edgemod.errors import EdgemodError
from edgemod.training import freezing
from edgemod.training.students import build_student


def test_frozen_modules_keep_weights_and_statistics_while_the_rest_trains():
    torch.manual_seed(0)
    model = build_student("test_vision_tiny", 3)
    names = freezing.freeze(model, ["conv_stem", "bn1", "blocks.[0-1]"])
    assert names == ["conv_stem", "bn1", "blocks.0", "blocks.1"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):
        model.train()
        freezing.keep_frozen(model, names)
        loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 64, 64)), torch.tensor([0, 1, 2, 0]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = model.state_dict()
    frozen = [k for k in after if k.split(".")[0] in ("conv_stem", "bn1") or k.startswith(("blocks.0.", "blocks.1."))]
    assert any("running_mean" in k for k in frozen)
    assert all(torch.equal(before[k], after[k]) for k in frozen)
    assert not torch.equal(before["blocks.2.0.conv_pw.weight"], after["blocks.2.0.conv_pw.weight"])
    assert not torch.equal(before["blocks.2.0.bn1.running_mean"], after["blocks.2.0.bn1.running_mean"])


def test_a_pattern_that_matches_nothing_names_the_modules_there_are():
    with pytest.raises(EdgemodError, match="blokcs.0") as error:
        freezing.freeze(build_student("test_vision_tiny", 3), ["blokcs.0"])
    assert "conv_stem" in error.value.hint
