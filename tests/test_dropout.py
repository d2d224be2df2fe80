"""The CPU dropout used by every MGT Linear: the statistics, scaling, gradient and seeding of ``nn.Dropout``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sketchgraph.model import build_model
from sketchgraph.model.dropout import Dropout, dropout, keep_mask


@pytest.mark.parametrize("p", [0.02, 0.1, 0.25, 0.5, 0.9])
def test_keep_rate_and_inverted_scaling(p):
    torch.manual_seed(0)
    x = torch.ones(400, 1000)
    y = dropout(x, p)
    kept = (y != 0).double().mean().item()
    assert kept == pytest.approx(1 - p, abs=5 * (p * (1 - p) / x.numel()) ** 0.5 + 1e-4)  # 5 sigma
    values = y[y != 0].unique()
    assert values.numel() == 1 and values.item() == pytest.approx(1 / (1 - p), rel=1e-4)
    assert y.mean().item() == pytest.approx(1.0, abs=5 * (p / (1 - p) / x.numel()) ** 0.5)  # expectation kept


def test_mask_elements_are_independent():
    torch.manual_seed(1)
    m = keep_mask((1000, 1000), 0.5).double()
    # neighbouring elements come from the two halves of one 32-bit draw: they must not be correlated
    corr = torch.corrcoef(torch.stack([m.flatten()[0::2], m.flatten()[1::2]]))[0, 1].item()
    assert abs(corr) < 0.01
    assert abs(torch.corrcoef(torch.stack([m[:, :-1].flatten(), m[:, 1:].flatten()]))[0, 1].item()) < 0.01


def test_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(2)
    x = torch.randn(64, 33, requires_grad=True)  # odd element count: the last 16-bit half is unused
    y = dropout(x, 0.25)
    y.backward(torch.ones_like(y))
    assert torch.equal(x.grad, (y != 0).float() * (1 / 0.75))
    assert torch.allclose(y, x.detach() * x.grad)


def test_eval_identity_and_seeding():
    x = torch.randn(10, 20)
    d = Dropout(0.3)
    d.eval()
    assert d(x) is x
    assert dropout(x, 0.0) is x and dropout(x, 0.3, training=False) is x
    d.train()
    torch.manual_seed(5)
    a = d(x)
    torch.manual_seed(5)
    assert torch.equal(a, d(x))
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.5)


def test_models_use_it_and_keep_their_state_dict_names():
    model = build_model("mgt-paper", num_classes=5)
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())
    assert sum(isinstance(m, Dropout) for m in model.modules()) == 4 * (3 + 2) + 2  # q/k/v inputs, mix, FFN; MLP
    assert not any("dropout" in k for k in model.state_dict())
