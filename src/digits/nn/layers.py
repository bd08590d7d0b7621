"""The layer interface, and the dense layers: Linear, Flatten, Dropout.

Every layer caches what its backward pass needs during ``forward``; ``backward``
takes the gradient of the loss with respect to the last output and returns the
gradient with respect to the last input.  Parameter gradients are written into
``grads`` in place, overwriting (not accumulating) the previous values, so the
arrays an optimizer holds stay valid for the layer's lifetime.

Layers with parameters take ``dtype`` (float32 by default, float64 on request)
and convert their input to it; layers without parameters keep their input's dtype.
Batches are NCHW, but need not be C-contiguous: ``Conv2d`` hands back a transposed
view of a (H, W, N, C) buffer, and the layers after it allocate like their input
(``empty_like``), so that memory order survives from one convolution to the next.
"""

import numbers
from abc import ABC, abstractmethod

import numpy as np

from digits.errors import SettingError
from digits.nn.init import init_weight_and_bias
from digits.nn.fast.parallel import matmul


class Layer(ABC):
    """Base class: ``params`` and ``grads`` share keys and shapes; ``buffers`` hold
    non-trained state saved with the model (batch-norm statistics); ``training`` is the mode.

    Layers with parameters accept ``backward(dout, input_grad=False)``, which fills
    ``grads`` and skips the input gradient (returning None): the first layer of a
    network never needs it.
    """

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.training = True

    @abstractmethod
    def forward(self, x):
        """Map a batch ``x`` of shape (N, ...) to the output batch."""

    @abstractmethod
    def backward(self, dout):
        """Gradient w.r.t. the last input, given ``dout`` shaped like the last output."""

    @abstractmethod
    def output_shape(self, shape):
        """Shape of one output example for one input example of ``shape`` (no batch axis)."""

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    def _add_param(self, name, value):
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)


def int_at_least(name, value, low):
    """``value`` as an int, or SettingError naming ``name`` unless it is an integer >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise SettingError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def real_in(name, value, low, high, high_inclusive=False):
    """``value`` as a float, or SettingError unless it is a number in [low, high) (or [low, high])."""
    inside = isinstance(value, numbers.Real) and not isinstance(value, bool) and low <= value and (
        value <= high if high_inclusive else value < high)
    if not inside:
        raise SettingError(f"{name} must be a number in [{low}, {high}{']' if high_inclusive else ')'}, got {value!r}")
    return float(value)


def check_bool(name, value):
    if not isinstance(value, bool):
        raise SettingError(f"{name} must be true or false, got {value!r}")
    return value


def expect_image(name, shape):
    if len(shape) != 3:
        raise SettingError(f"{name} needs (C, H, W) examples, got shape {tuple(shape)}")


def window_count(size, kernel, stride, padding=0):
    """Number of kernel positions along an axis of ``size`` (torch's floor rule), or SettingError if none."""
    count = (size + 2 * padding - kernel) // stride + 1
    if count < 1:
        raise SettingError(f"kernel {kernel} does not fit an input of size {size} with padding {padding}")
    return count


class Linear(Layer):
    """Affine map ``x @ weight.T + bias`` like ``torch.nn.Linear``.

    ``weight`` is (out_features, in_features), ``bias`` (out_features,); ``init`` names
    an initialiser of ``digits.nn.init`` (torch's default uniform init unless told).
    Input (N, in_features), output (N, out_features).
    """

    def __init__(self, in_features, out_features, bias=True, init="default", *, rng, dtype=np.float32):
        super().__init__()
        self.in_features = int_at_least("in_features", in_features, 1)
        self.out_features = int_at_least("out_features", out_features, 1)
        weight, bias = init_weight_and_bias(rng, (self.out_features, self.in_features), init,
                                            check_bool("bias", bias), dtype)
        self._add_param("weight", weight)
        if bias is not None:
            self._add_param("bias", bias)
        self._x = None

    def output_shape(self, shape):
        if len(shape) != 1:
            raise SettingError(f"linear needs flat examples (put 'flatten' before it), got shape {tuple(shape)}")
        return (self.out_features,)

    def forward(self, x):
        weight = self.params["weight"]
        x = np.asarray(x, dtype=weight.dtype)
        self._x = x
        out = matmul(x, weight.T)
        if "bias" in self.params:
            out += self.params["bias"]
        return out

    def backward(self, dout, input_grad=True):
        self.grads["weight"][...] = matmul(dout.T, self._x)
        if "bias" in self.params:
            np.sum(dout, axis=0, out=self.grads["bias"])
        return matmul(dout, self.params["weight"]) if input_grad else None


class Flatten(Layer):
    """Reshape (N, C, H, W) (or any (N, ...)) to (N, C*H*W) in C order, as ``torch.nn.Flatten``.

    The input gradient comes back in the memory order of the input.
    """

    def __init__(self):
        super().__init__()
        self._x = None

    def output_shape(self, shape):
        return (int(np.prod(shape)),)

    def forward(self, x):
        self._x = x
        return x.reshape(len(x), -1)

    def backward(self, dout):
        dx = np.empty_like(self._x, dtype=dout.dtype)
        dx[...] = dout.reshape(self._x.shape)
        return dx


class Dropout(Layer):
    """Inverted dropout: in training, zero each entry with probability ``p`` and scale
    the kept ones by 1/(1-p); identity in eval mode.  ``rng`` draws the masks."""

    def __init__(self, p, *, rng):
        super().__init__()
        self.p = real_in("p", p, 0.0, 1.0)
        self.rng = rng
        self._scale = None

    def output_shape(self, shape):
        return tuple(shape)

    def forward(self, x):
        if not self.training or self.p == 0:
            self._scale = None
            return x
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.p
        self._scale = keep * np.asarray(1.0 / (1.0 - self.p), dtype=x.dtype)
        return x * self._scale

    def backward(self, dout):
        return dout if self._scale is None else dout * self._scale
