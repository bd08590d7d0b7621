"""Batch normalisation with running statistics, like ``torch.nn.BatchNorm1d`` / ``BatchNorm2d``.

In training mode each feature (channel) is normalised by the batch's mean and
biased variance, and the running estimates move towards the batch's mean and
unbiased variance by ``momentum``; in eval mode the running estimates are used.
``weight`` (gamma) starts at 1 and ``bias`` (beta) at 0; the running statistics
are ``buffers``, saved with the model but never touched by an optimizer.

The work runs on an (M, F) matrix of the batch's values, one row per example and
position, taken in the batch's memory order: a view, without copying, of a
convolution's (H, W, N, C) output or of any channels-last batch.  There the
per-feature sums are a product with a vector of ones (one BLAS pass, far faster
than numpy's sum down a column) and per-feature scales broadcast along rows.
"""

import numpy as np

from digits.errors import SettingError
from digits.nn.layers import Layer, expect_image, int_at_least, real_in


def column_sums(rows):
    """(M, F) -> (F,) sums of the columns, as one matrix-vector product."""
    return np.ones(len(rows), dtype=rows.dtype) @ rows


class _BatchNorm(Layer):
    layouts = ()  # axis orders that put the features last, the first to try first

    def __init__(self, num_features, eps=1e-5, momentum=0.1, *, dtype=np.float32):
        super().__init__()
        self.num_features = int_at_least("num_features", num_features, 1)
        self.eps = real_in("eps", eps, 0.0, np.inf)
        self.momentum = real_in("momentum", momentum, 0.0, 1.0, high_inclusive=True)
        self._add_param("weight", np.ones(self.num_features, dtype=dtype))
        self._add_param("bias", np.zeros(self.num_features, dtype=dtype))
        self.buffers["running_mean"] = np.zeros(self.num_features, dtype=dtype)
        self.buffers["running_var"] = np.ones(self.num_features, dtype=dtype)
        self._cache = None

    def _order(self, a):
        """The first of ``layouts`` that is ``a``'s memory order, else the last of them."""
        return next((order for order in self.layouts if a.transpose(order).flags.c_contiguous), self.layouts[-1])

    @staticmethod
    def _rows(a, order):
        """(N, F, ...) ``a`` -> the (M, F) matrix of its values read in axis ``order`` (features last):
        a view when that is ``a``'s memory order, else a copy."""
        return np.ascontiguousarray(a.transpose(order)).reshape(-1, a.shape[1])

    @staticmethod
    def _unrows(rows, shape, order):
        """Inverse of ``_rows``: the (M, F) ``rows`` as a ``shape`` batch (a view, ``order`` in memory)."""
        return rows.reshape([shape[axis] for axis in order]).transpose(np.argsort(order))

    def forward(self, x):
        weight = self.params["weight"]
        x = np.asarray(x, dtype=weight.dtype)
        order = self._order(x)
        rows = self._rows(x, order)
        count = len(rows)
        if self.training:
            if count < 2:
                raise ValueError(f"batch norm in training needs more than one value per feature, got input {x.shape}")
            mean = column_sums(rows) / x.dtype.type(count)
            centered = rows - mean
            out = np.square(centered)  # reused for the output below
            var = column_sums(out) / x.dtype.type(count)
            m = x.dtype.type(self.momentum)
            self.buffers["running_mean"] += m * (mean - self.buffers["running_mean"])
            self.buffers["running_var"] += m * (var * x.dtype.type(count / (count - 1)) - self.buffers["running_var"])
        else:
            var = self.buffers["running_var"]
            centered = rows - self.buffers["running_mean"]
            out = np.empty_like(centered)
        inv_std = 1 / np.sqrt(var + x.dtype.type(self.eps))
        # xhat = centered * inv_std is never stored: backward rebuilds what it needs from centered
        np.multiply(centered, weight * inv_std, out=out)
        out += self.params["bias"]
        self._cache = (centered, inv_std, order)
        return self._unrows(out, x.shape, order)

    def backward(self, dout, input_grad=True):
        centered, inv_std, order = self._cache
        drows = self._rows(np.asarray(dout, dtype=centered.dtype), order)  # rows in the same order as centered
        count = centered.dtype.type(len(centered))
        dx = np.multiply(drows, centered)  # a temporary here, the input gradient below
        self.grads["weight"][...] = column_sums(dx) * inv_std  # sum of dout * xhat
        self.grads["bias"][...] = column_sums(drows)
        if not input_grad:
            return None
        shape = dout.shape
        scale = self.params["weight"] * inv_std
        np.multiply(drows, scale, out=dx)
        if self.training:  # the batch statistics depend on x: remove the gradient's mean and its component along xhat
            along_xhat = centered * (scale * inv_std * self.grads["weight"] / count)
            along_xhat += scale * self.grads["bias"] / count
            dx -= along_xhat
        return self._unrows(dx, shape, order)


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, num_features) inputs."""

    layouts = ((0, 1),)

    def output_shape(self, shape):
        if len(shape) != 1:
            raise SettingError(f"batchnorm1d needs flat examples (put 'flatten' before it), got shape {tuple(shape)}")
        if shape[0] != self.num_features:
            raise SettingError(f"expected {self.num_features} features, got {shape[0]}")
        return tuple(shape)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, num_features, H, W) inputs, one mean and variance per channel."""

    layouts = ((2, 3, 0, 1), (0, 2, 3, 1))  # (H, W, N, C) as convolutions leave it, else (N, H, W, C)

    def output_shape(self, shape):
        expect_image("batchnorm2d", shape)
        if shape[0] != self.num_features:
            raise SettingError(f"expected {self.num_features} channels, got {shape[0]}")
        return tuple(shape)
