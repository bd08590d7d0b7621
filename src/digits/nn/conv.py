"""2-D convolution (cross-correlation) like ``torch.nn.Conv2d``.

The layer owns the parameters, the shapes and the padding; the arithmetic is one of the
algorithms of ``digits.nn.fast.conv``. The plainest, im2col, is the one to read first: every
k x k window of the input becomes a column, and the output is one matrix product of the
(O, C*k*k) weight with those columns. FFT and Winograd give the same result with fewer
multiplications; ``method="auto"`` takes whichever needs the fewest for the input size
(``fast.conv.cheapest_method``). All three compute in (H, W, N, C) memory order, and the layer
hands its output back as an NCHW *view* of an (Ho, Wo, N, O) buffer (``fast.conv.nchw_hwnc``),
so the layers that follow stream through memory and the next convolution finds its input
already in the order it wants.
"""

import numpy as np

from digits.errors import SettingError
from digits.nn.fast.conv import algorithm, cheapest_method, nchw_hwnc
from digits.nn.init import init_weight_and_bias
from digits.nn.layers import Layer, check_bool, expect_image, int_at_least, window_count

METHODS = ("auto", "im2col", "fft", "winograd")


class Conv2d(Layer):
    """2-D convolution with a square kernel, stride and zero padding.

    ``weight`` is (out_channels, in_channels, kernel_size, kernel_size), ``bias``
    (out_channels,); ``init`` names an initialiser of ``digits.nn.init``.  Input
    (N, C, H, W) is converted to the parameter dtype; output is (N, out_channels, Ho, Wo),
    a view of a (Ho, Wo, N, out_channels) array.  ``method`` is "im2col", "fft" (stride
    1), "winograd" (stride 1, kernel 2 to 5) or "auto".
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, init="default",
                 method="auto", *, rng, dtype=np.float32):
        super().__init__()
        self.in_channels = int_at_least("in_channels", in_channels, 1)
        self.out_channels = int_at_least("out_channels", out_channels, 1)
        self.kernel_size = int_at_least("kernel_size", kernel_size, 1)
        self.stride = int_at_least("stride", stride, 1)
        self.padding = int_at_least("padding", padding, 0)
        if method not in METHODS:
            raise SettingError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if method in ("fft", "winograd") and self.stride != 1:
            raise SettingError(f"method {method} needs stride 1, got stride {self.stride}")
        if method == "winograd" and not 2 <= self.kernel_size <= 5:
            raise SettingError(f"method winograd needs a kernel_size of 2 to 5, got {self.kernel_size}")
        self.method = method
        k = self.kernel_size
        weight, bias = init_weight_and_bias(rng, (self.out_channels, self.in_channels, k, k), init,
                                            check_bool("bias", bias), dtype)
        self._add_param("weight", weight)
        if bias is not None:
            self._add_param("bias", bias)
        self._algorithms = {}  # (height, width) of the input -> the algorithm object, which holds the backward cache
        self._last = None

    def output_shape(self, shape):
        expect_image("conv2d", shape)
        c, h, w = shape
        if c != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels, got {c}")
        k, s, p = self.kernel_size, self.stride, self.padding
        return (self.out_channels, window_count(h, k, s, p), window_count(w, k, s, p))

    def method_for(self, height, width):
        """The algorithm an input of ``height`` x ``width`` (before padding) goes through."""
        if self.method != "auto":
            return self.method
        _, ho, wo = self.output_shape((self.in_channels, height, width))
        return cheapest_method(self.in_channels, self.out_channels, self.kernel_size, self.stride, ho, wo)

    def forward(self, x):
        weight = self.params["weight"]
        x = np.asarray(x, dtype=weight.dtype)
        key = (x.shape[2], x.shape[3])
        if key not in self._algorithms:
            method = self.method_for(*key)
            self._algorithms[key] = algorithm(method, self.kernel_size, self.stride, x.dtype)
        self._last = self._algorithms[key]
        xh = nchw_hwnc(x)
        if self.padding:
            p = self.padding
            xh = np.pad(xh, ((p, p), (p, p), (0, 0), (0, 0)))
        return nchw_hwnc(self._last.forward(xh, weight, self.params.get("bias")))

    def backward(self, dout, input_grad=True):
        w_grad, b_grad, dxh = self._last.backward(nchw_hwnc(dout), self.params["weight"], input_grad)
        self.grads["weight"][...] = w_grad
        if "bias" in self.params:
            self.grads["bias"][...] = b_grad
        if dxh is None:
            return None
        p = self.padding
        if p:
            dxh = dxh[p:dxh.shape[0] - p, p:dxh.shape[1] - p]
        return nchw_hwnc(dxh)
