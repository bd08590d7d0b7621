"""Max and average pooling over square windows, without padding, like torch's MaxPool2d and AvgPool2d.

Both work on the k*k strided views ``x[:, :, i::s, j::s]`` (one per offset (i, j)
inside the window), so the work is k*k whole-array operations and no Python loop
runs over pixels.  Outputs and input gradients keep the input's memory order, and
the work is cut by output rows between the cores.  When the windows tile the input
(stride = kernel, sizes divisible), the backward pass writes each input gradient
once instead of accumulating into zeros.
"""

import numpy as np

from digits.nn.layers import Layer, expect_image, int_at_least, window_count
from digits.nn.fast.parallel import run_split


class _Pool2d(Layer):
    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = int_at_least("kernel_size", kernel_size, 1)
        self.stride = self.kernel_size if stride is None else int_at_least("stride", stride, 1)
        self._cache = None

    def output_shape(self, shape):
        expect_image(type(self).__name__.lower(), shape)
        c, h, w = shape
        k, s = self.kernel_size, self.stride
        return (c, window_count(h, k, s), window_count(w, k, s))

    def _views(self, a, out_shape, lo, hi):
        """For output rows lo..hi, the strided view of ``a`` (input-sized) under each kernel offset,
        in row-major order of the offsets."""
        k, s = self.kernel_size, self.stride
        wo = out_shape[3]
        return [a[:, :, i + s * lo:i + s * (hi - 1) + 1:s, j:j + s * (wo - 1) + 1:s]
                for i in range(k) for j in range(k)]

    def _output_like(self, x, dtype=None):
        """An empty output-shaped array in the memory order of ``x``."""
        k, s = self.kernel_size, self.stride
        ho, wo = (x.shape[2] - k) // s + 1, (x.shape[3] - k) // s + 1
        return np.empty_like(x[:, :, :s * (ho - 1) + 1:s, :s * (wo - 1) + 1:s], dtype=dtype)

    def _input_grad(self, x, dout, part):
        """dx for input ``x``, in ``x``'s memory order, from ``part(offset, lo, hi, out=None)``: the
        gradient reaching kernel offset ``offset`` of the windows of output rows lo..hi."""
        k, s = self.kernel_size, self.stride
        ho, wo = dout.shape[2:]
        if s == k and x.shape[2] == k * ho and x.shape[3] == k * wo:  # each input in exactly one window
            dx = np.empty_like(x, dtype=dout.dtype)

            def rows(lo, hi):
                for offset, view in enumerate(self._views(dx, dout.shape, lo, hi)):
                    part(offset, lo, hi, out=view)

            run_split(rows, ho, 2 * x.size)
            return dx
        dx = np.zeros_like(x, dtype=dout.dtype)  # overlapping or partial windows: accumulate, on one thread
        for offset, view in enumerate(self._views(dx, dout.shape, 0, ho)):
            view += part(offset, 0, ho)
        return dx


class MaxPool2d(_Pool2d):
    """Max pooling: input (N, C, H, W), output (N, C, Ho, Wo); ``stride`` defaults to ``kernel_size``.

    The gradient goes to the first maximum of each window in row-major order, as in torch.
    """

    def forward(self, x):
        out, argmax = self._pool(x, track=self.training)
        self._cache = (x, argmax)
        return out

    def _pool(self, x, track):
        """(maxima, offset of each window's first maximum as uint8, or None unless ``track``)."""
        out = self._output_like(x)
        argmax = self._output_like(x, np.uint8) if track else None

        def rows(lo, hi):
            best = out[:, :, lo:hi]
            views = self._views(x, out.shape, lo, hi)
            best[...] = views[0]
            if track:
                where = argmax[:, :, lo:hi]
                where[...] = 0
            for offset, view in enumerate(views[1:], start=1):
                if track:  # offsets only grow, so "take offset where larger" is a maximum with larger * offset
                    np.maximum(where, (view > best).view(np.uint8) * np.uint8(offset), out=where)
                np.maximum(best, view, out=best)

        run_split(rows, out.shape[2], 4 * out.size * self.kernel_size ** 2)
        return out, argmax

    def backward(self, dout):
        x, argmax = self._cache
        if argmax is None:  # forward ran in eval mode, which only takes the maxima
            argmax = self._pool(x, track=True)[1]

        def part(offset, lo, hi, out=None):
            """dout where the window's maximum is at ``offset``, else 0; into ``out`` if given."""
            if out is None:
                return np.multiply(dout[:, :, lo:hi], argmax[:, :, lo:hi] == offset)
            np.equal(argmax[:, :, lo:hi], offset, out=out)  # the mask as 0.0/1.0 in place: ~0.7x the time of
            out *= dout[:, :, lo:hi]                          # a product with a boolean mask, which casts it
            return out

        return self._input_grad(x, dout, part)


class AvgPool2d(_Pool2d):
    """Average pooling: the mean of each k*k window; input (N, C, H, W), output (N, C, Ho, Wo)."""

    def forward(self, x):
        out = self._output_like(x)
        scale = x.dtype.type(1.0 / self.kernel_size ** 2)

        def rows(lo, hi):
            total = out[:, :, lo:hi]
            views = self._views(x, out.shape, lo, hi)
            total[...] = views[0]
            for view in views[1:]:
                total += view
            total *= scale

        run_split(rows, out.shape[2], 2 * out.size * self.kernel_size ** 2)
        self._cache = x
        return out

    def backward(self, dout):
        scale = dout.dtype.type(1.0 / self.kernel_size ** 2)
        return self._input_grad(self._cache, dout, lambda offset, lo, hi, out=None: np.multiply(
            dout[:, :, lo:hi], scale, out=out))
