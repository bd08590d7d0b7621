"""Elementwise activations: ReLU, LeakyReLU, Sigmoid, Tanh.  Output shape and dtype follow the input."""

import numpy as np

from digits.nn.layers import Layer, real_in


class _Elementwise(Layer):
    def output_shape(self, shape):
        return tuple(shape)


class ReLU(_Elementwise):
    """``max(x, 0)``; the gradient at 0 is 0, as in torch (it passes where the output is positive)."""

    def __init__(self):
        super().__init__()
        self._out = None

    def forward(self, x):
        self._out = np.maximum(x, 0)
        return self._out

    def backward(self, dout):
        return dout * (self._out > 0)


class LeakyReLU(_Elementwise):
    """``x`` where x > 0, else ``negative_slope * x``, like ``torch.nn.LeakyReLU`` (slope at 0 too)."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = real_in("negative_slope", negative_slope, 0.0, 1.0, high_inclusive=True)
        self._slope = None

    def forward(self, x):
        self._slope = np.where(x > 0, x.dtype.type(1), x.dtype.type(self.negative_slope))
        return x * self._slope

    def backward(self, dout):
        return dout * self._slope


class Sigmoid(_Elementwise):
    """``1 / (1 + exp(-x))``, evaluated without overflow for large |x|; gradient ``y (1 - y)``."""

    def __init__(self):
        super().__init__()
        self._out = None

    def forward(self, x):
        e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
        self._out = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return self._out

    def backward(self, dout):
        return dout * self._out * (1 - self._out)


class Tanh(_Elementwise):
    """Hyperbolic tangent; gradient ``1 - y**2``."""

    def __init__(self):
        super().__init__()
        self._out = None

    def forward(self, x):
        self._out = np.tanh(x)
        return self._out

    def backward(self, dout):
        return dout * (1 - self._out * self._out)
