"""Initialisers: torch's fans, and the spread torch.nn.init gives the same shapes."""

import numpy as np
import pytest
import torch

from digits.nn import Conv2d, Linear
from digits.nn.init import INITIALISERS, fans

SHAPES = [(64, 32, 5, 5), (300, 200), (10, 84)]
TORCH = {
    "kaiming_uniform": lambda t: torch.nn.init.kaiming_uniform_(t, nonlinearity="relu"),
    "kaiming_normal": lambda t: torch.nn.init.kaiming_normal_(t, nonlinearity="relu"),
    "xavier_uniform": torch.nn.init.xavier_uniform_,
    "xavier_normal": torch.nn.init.xavier_normal_,
    "default": lambda t: torch.nn.init.kaiming_uniform_(t, a=5 ** 0.5),
}


@pytest.mark.parametrize("shape", SHAPES + [(3, 1, 2, 7)])
def test_fans_are_torchs(shape):
    assert fans(shape) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


@pytest.mark.parametrize("name", sorted(INITIALISERS))
@pytest.mark.parametrize("shape", SHAPES)
def test_spread_matches_torch_init(name, shape):
    ours = INITIALISERS[name](np.random.default_rng(0), shape, np.float64)
    torch.manual_seed(0)
    theirs = TORCH[name](torch.empty(shape, dtype=torch.float64)).numpy()
    assert ours.shape == shape and ours.dtype == np.float64
    assert abs(ours.mean()) < 4 * theirs.std() / np.sqrt(ours.size)
    assert ours.std() == pytest.approx(theirs.std(), rel=0.08)
    if "normal" not in name:  # uniform: the same bound
        assert np.abs(ours).max() <= np.abs(theirs).max() * 1.05 and np.abs(ours).max() >= np.abs(theirs).max() * 0.95


@pytest.mark.parametrize("make", [lambda **kw: Conv2d(3, 8, 3, **kw), lambda **kw: Linear(20, 8, **kw)])
def test_layers_take_an_initialiser_and_zero_their_bias_for_named_schemes(make):
    default = make(rng=np.random.default_rng(0))
    he = make(init="kaiming_normal", rng=np.random.default_rng(0))
    assert np.all(he.params["bias"] == 0) and np.any(default.params["bias"] != 0)
    fan_in = fans(he.params["weight"].shape)[0]
    assert he.params["weight"].std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.25)
    assert he.params["weight"].dtype == np.float32
    with pytest.raises(ValueError, match="init must be one of"):
        make(init="orthogonal", rng=np.random.default_rng(0))
