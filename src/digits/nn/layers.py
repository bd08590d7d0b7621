"""Layers with hand-written backward passes, on NCHW numpy batches.

Every layer caches what its backward pass needs during ``forward``; ``backward``
takes the gradient of the loss with respect to the last output and returns the
gradient with respect to the last input.  Parameter gradients are written into
``grads`` in place, overwriting (not accumulating) the previous values, so the
arrays an optimizer holds stay valid for the layer's lifetime.
"""

import numbers

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


class Layer:
    """Base class: ``params`` and ``grads`` share keys and shapes; ``training`` is the mode."""

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.training = True

    def forward(self, x):
        """Map a batch ``x`` of shape (N, ...) to the output batch."""
        raise NotImplementedError

    def backward(self, dout):
        """Gradient w.r.t. the last input, given ``dout`` shaped like the last output."""
        raise NotImplementedError

    def output_shape(self, shape):
        """Shape of one output example for one input example of ``shape`` (no batch axis)."""
        raise NotImplementedError

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    def _add_param(self, name, value):
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)


def _int_at_least(name, value, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _uniform_init(rng, shape, fan_in, dtype):
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): torch's default (Kaiming-uniform, a=sqrt(5)) init."""
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def _window_count(size, kernel, stride, padding=0):
    count = (size + 2 * padding - kernel) // stride + 1
    if count < 1:
        raise ValueError(f"kernel {kernel} does not fit an input of size {size} with padding {padding}")
    return count


def _expect_image(name, shape):
    if len(shape) != 3:
        raise ValueError(f"{name} needs (C, H, W) examples, got shape {tuple(shape)}")


class Conv2d(Layer):
    """2-D convolution (cross-correlation) with a square kernel, like ``torch.nn.Conv2d``.

    ``weight`` is (out_channels, in_channels, kernel_size, kernel_size) and ``bias``
    (out_channels,); both start from torch's default uniform init.  Input (N, C, H, W)
    is converted to the parameter dtype; output is (N, out_channels, Ho, Wo).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, *, rng,
                 dtype=np.float32):
        super().__init__()
        self.in_channels = _int_at_least("in_channels", in_channels, 1)
        self.out_channels = _int_at_least("out_channels", out_channels, 1)
        self.kernel_size = _int_at_least("kernel_size", kernel_size, 1)
        self.stride = _int_at_least("stride", stride, 1)
        self.padding = _int_at_least("padding", padding, 0)
        if not isinstance(bias, bool):
            raise ValueError(f"bias must be true or false, got {bias!r}")
        k = self.kernel_size
        fan_in = self.in_channels * k * k
        self._add_param("weight", _uniform_init(rng, (self.out_channels, self.in_channels, k, k), fan_in, dtype))
        if bias:
            self._add_param("bias", _uniform_init(rng, (self.out_channels,), fan_in, dtype))
        self._cache = None

    def output_shape(self, shape):
        _expect_image("conv2d", shape)
        _, h, w = shape
        k, s, p = self.kernel_size, self.stride, self.padding
        return (self.out_channels, _window_count(h, k, s, p), _window_count(w, k, s, p))

    def forward(self, x):
        weight = self.params["weight"]
        x = np.asarray(x, dtype=weight.dtype)
        k, s, p = self.kernel_size, self.stride, self.padding
        if p:
            x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        n, c = x.shape[:2]
        windows = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::s, ::s]  # (N, C, Ho, Wo, k, k)
        ho, wo = windows.shape[2:4]
        cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * k * k)
        out = cols @ weight.reshape(self.out_channels, -1).T  # (N*Ho*Wo, out_channels)
        if "bias" in self.params:
            out += self.params["bias"]
        self._cache = (cols, x.shape)
        return np.ascontiguousarray(out.reshape(n, ho, wo, self.out_channels).transpose(0, 3, 1, 2))

    def backward(self, dout):
        cols, (n, c, hp, wp) = self._cache
        weight = self.params["weight"]
        o, ho, wo = dout.shape[1:]
        k, s, p = self.kernel_size, self.stride, self.padding
        dout_rows = dout.transpose(0, 2, 3, 1).reshape(-1, o)  # (N*Ho*Wo, out_channels), rows like cols
        self.grads["weight"][...] = (dout_rows.T @ cols).reshape(weight.shape)
        if "bias" in self.params:
            self.grads["bias"][...] = dout_rows.sum(axis=0)
        # col2im with the batch axis last, so each of the k*k additions runs over long contiguous stretches
        dout_cols = dout.transpose(1, 2, 3, 0).reshape(o, -1)  # (out_channels, Ho*Wo*N)
        dcols = (weight.reshape(o, -1).T @ dout_cols).reshape(c, k, k, ho, wo, n)
        dx = np.zeros((c, hp, wp, n), dtype=dcols.dtype)
        for i in range(k):
            for j in range(k):
                dx[:, i:i + s * ho:s, j:j + s * wo:s] += dcols[:, i, j]
        return np.ascontiguousarray(dx[:, p:hp - p, p:wp - p].transpose(3, 0, 1, 2))


class MaxPool2d(Layer):
    """Max pooling over square windows, no padding, like ``torch.nn.MaxPool2d``.

    Input (N, C, H, W), output (N, C, Ho, Wo); ``stride`` defaults to ``kernel_size``.
    The gradient goes to the first maximum of each window in row-major order.
    """

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = _int_at_least("kernel_size", kernel_size, 1)
        self.stride = self.kernel_size if stride is None else _int_at_least("stride", stride, 1)
        self._cache = None

    def output_shape(self, shape):
        _expect_image("maxpool2d", shape)
        c, h, w = shape
        k, s = self.kernel_size, self.stride
        return (c, _window_count(h, k, s), _window_count(w, k, s))

    def forward(self, x):
        k, s = self.kernel_size, self.stride
        ho, wo = (x.shape[2] - k) // s + 1, (x.shape[3] - k) // s + 1
        # one strided view per kernel offset, in row-major order: each is (N, C, Ho, Wo)
        views = [x[:, :, i:i + s * ho:s, j:j + s * wo:s] for i in range(k) for j in range(k)]
        out = views[0].copy()
        for view in views[1:]:
            np.maximum(out, view, out=out)
        chosen = np.empty((k * k, *out.shape), dtype=bool)  # chosen[o]: offset o holds the window's first max
        taken = np.zeros(out.shape, dtype=bool)
        for offset, view in enumerate(views):
            np.logical_and(view == out, ~taken, out=chosen[offset])
            taken |= chosen[offset]
        self._cache = (chosen, x.shape)
        return out

    def backward(self, dout):
        chosen, in_shape = self._cache
        k, s = self.kernel_size, self.stride
        ho, wo = dout.shape[2:]
        dx = np.zeros(in_shape, dtype=dout.dtype)
        for offset in range(k * k):
            i, j = divmod(offset, k)
            dx[:, :, i:i + s * ho:s, j:j + s * wo:s] += dout * chosen[offset]
        return dx


class Linear(Layer):
    """Affine map ``x @ weight.T + bias`` like ``torch.nn.Linear``.

    ``weight`` is (out_features, in_features), ``bias`` (out_features,), both from
    torch's default uniform init.  Input (N, in_features) is converted to the
    parameter dtype; output is (N, out_features).
    """

    def __init__(self, in_features, out_features, bias=True, *, rng, dtype=np.float32):
        super().__init__()
        self.in_features = _int_at_least("in_features", in_features, 1)
        self.out_features = _int_at_least("out_features", out_features, 1)
        if not isinstance(bias, bool):
            raise ValueError(f"bias must be true or false, got {bias!r}")
        self._add_param("weight", _uniform_init(rng, (self.out_features, self.in_features), self.in_features, dtype))
        if bias:
            self._add_param("bias", _uniform_init(rng, (self.out_features,), self.in_features, dtype))
        self._x = None

    def output_shape(self, shape):
        if len(shape) != 1:
            raise ValueError(f"linear needs flat examples (put 'flatten' before it), got shape {tuple(shape)}")
        return (self.out_features,)

    def forward(self, x):
        weight = self.params["weight"]
        x = np.asarray(x, dtype=weight.dtype)
        self._x = x
        out = x @ weight.T
        if "bias" in self.params:
            out += self.params["bias"]
        return out

    def backward(self, dout):
        self.grads["weight"][...] = dout.T @ self._x
        if "bias" in self.params:
            self.grads["bias"][...] = dout.sum(axis=0)
        return dout @ self.params["weight"]


class ReLU(Layer):
    """Elementwise ``max(x, 0)``; the gradient at 0 is 0, as in torch."""

    def __init__(self):
        super().__init__()
        self._positive = None

    def output_shape(self, shape):
        return tuple(shape)

    def forward(self, x):
        self._positive = x > 0
        return np.maximum(x, 0)

    def backward(self, dout):
        return dout * self._positive


class Flatten(Layer):
    """Reshape (N, C, H, W) (or any (N, ...)) to (N, C*H*W)."""

    def __init__(self):
        super().__init__()
        self._in_shape = None

    def output_shape(self, shape):
        return (int(np.prod(shape)),)

    def forward(self, x):
        self._in_shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, dout):
        return dout.reshape(self._in_shape)


class Dropout(Layer):
    """Inverted dropout: in training, zero each entry with probability ``p`` and scale
    the kept ones by 1/(1-p); identity in eval mode.  ``rng`` draws the masks."""

    def __init__(self, p, *, rng):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p < 1:
            raise ValueError(f"p must be a number in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = rng
        self._scale = None

    def output_shape(self, shape):
        return tuple(shape)

    def forward(self, x):
        if not self.training:
            self._scale = None
            return x
        keep = self.rng.random(x.shape) >= self.p
        self._scale = keep * np.asarray(1.0 / (1.0 - self.p), dtype=x.dtype)
        return x * self._scale

    def backward(self, dout):
        return dout if self._scale is None else dout * self._scale
