"""Weight initialisers, with torch's fan conventions.

For a weight of shape (out, in, *kernel) the fans are ``fan_in = in * prod(kernel)``
and ``fan_out = out * prod(kernel)``, as in ``torch.nn.init``.  Every initialiser
takes ``(rng, shape, dtype)`` and returns a new array.
"""

import numpy as np

from digits.errors import SettingError


def fans(shape):
    """(fan_in, fan_out) of a weight shaped (out, in, *kernel)."""
    if len(shape) < 2:
        raise ValueError(f"fans need a weight of at least 2 dimensions, got shape {tuple(shape)}")
    receptive = int(np.prod(shape[2:]))
    return shape[1] * receptive, shape[0] * receptive


def torch_default(rng, shape, dtype):
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): what torch's Conv2d and Linear start from (kaiming_uniform, a=sqrt(5))."""
    bound = 1.0 / np.sqrt(fans(shape)[0])
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def kaiming_uniform(rng, shape, dtype):
    """He: U(-b, b) with b = sqrt(6 / fan_in), the variance that keeps ReLU activations steady."""
    bound = np.sqrt(6.0 / fans(shape)[0])
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def kaiming_normal(rng, shape, dtype):
    """He: N(0, 2 / fan_in)."""
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fans(shape)[0])).astype(dtype)


def xavier_uniform(rng, shape, dtype):
    """Glorot: U(-b, b) with b = sqrt(6 / (fan_in + fan_out))."""
    bound = np.sqrt(6.0 / sum(fans(shape)))
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def xavier_normal(rng, shape, dtype):
    """Glorot: N(0, 2 / (fan_in + fan_out))."""
    return (rng.standard_normal(shape) * np.sqrt(2.0 / sum(fans(shape)))).astype(dtype)


INITIALISERS = {
    "default": torch_default,
    "kaiming_uniform": kaiming_uniform,
    "kaiming_normal": kaiming_normal,
    "xavier_uniform": xavier_uniform,
    "xavier_normal": xavier_normal,
}


def init_weight_and_bias(rng, shape, init, bias, dtype):
    """Initial (weight, bias or None) for a layer whose weight is ``shape``.

    ``"default"`` draws the bias like torch, U(-1/sqrt(fan_in), 1/sqrt(fan_in));
    the named schemes start the bias at zero.
    """
    if init not in INITIALISERS:
        raise SettingError(f"init must be one of {', '.join(INITIALISERS)}, got {init!r}")
    weight = INITIALISERS[init](rng, shape, dtype)
    if not bias:
        return weight, None
    if init == "default":
        bound = 1.0 / np.sqrt(fans(shape)[0])
        return weight, rng.uniform(-bound, bound, size=shape[0]).astype(dtype)
    return weight, np.zeros(shape[0], dtype=dtype)
