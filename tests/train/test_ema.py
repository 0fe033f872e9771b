import pytest
import torch

from fastuss_fx.train.ema import EMA, ema_weights


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(3))
        self.register_buffer("count", torch.tensor(0))


def test_update_follows_the_formula_and_round_trips():
    model = Tiny()
    ema = EMA(model, decay=0.9)
    expected = torch.zeros(3, dtype=torch.float64)
    for n in range(30):
        with torch.no_grad():
            model.weight.add_(1.0)
            model.count.add_(1)
        ema.update()
        d = min(0.9, (1 + n) / (10 + n))
        expected = d * expected + (1 - d) * model.weight.detach().double()
    torch.testing.assert_close(ema.shadow["weight"].double(), expected, rtol=1e-6, atol=1e-5)
    assert int(ema.shadow["count"]) == 30 and ema.updates == 30
    again = EMA(Tiny(), decay=0.9)
    again.load_state_dict(ema.state_dict())
    assert torch.equal(again.shadow["weight"], ema.shadow["weight"]) and again.updates == 30
    with pytest.raises(ValueError, match="ema decay"):
        EMA(model, decay=1.0)


def test_applied_swaps_the_weights_in_and_back():
    model = Tiny()
    ema = EMA(model, decay=0.5)
    with torch.no_grad():
        model.weight.fill_(4.0)
    ema.update()  # first update: d = min(0.5, 1/10) = 0.1 -> 3.6
    with ema_weights(ema):
        assert torch.allclose(model.weight, torch.full((3,), 3.6))
    assert torch.equal(model.weight.detach(), torch.full((3,), 4.0))
    with ema_weights(None):
        assert torch.equal(model.weight.detach(), torch.full((3,), 4.0))
