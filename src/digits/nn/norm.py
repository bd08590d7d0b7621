"""Batch normalisation with running statistics, like ``torch.nn.BatchNorm1d`` / ``BatchNorm2d``.

In training mode each feature (channel) is normalised by the batch's mean and
biased variance, and the running estimates move towards the batch's mean and
unbiased variance by ``momentum``; in eval mode the running estimates are used.
``weight`` (gamma) starts at 1 and ``bias`` (beta) at 0; the running statistics
are ``buffers``, saved with the model but never touched by an optimizer.
"""

import numpy as np

from digits.nn.layers import Layer, expect_image, int_at_least, real_in


class _BatchNorm(Layer):
    axes = ()  # the axes averaged over: all but the feature axis 1

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

    def _per_feature(self, values, ndim):
        """(F,) -> broadcastable against an ``ndim`` batch with features on axis 1."""
        return values.reshape((1, -1) + (1,) * (ndim - 2))

    def forward(self, x):
        weight = self.params["weight"]
        x = np.asarray(x, dtype=weight.dtype)
        count = x.size // x.shape[1]
        if self.training:
            if count < 2:
                raise ValueError(f"batch norm in training needs more than one value per feature, got input {x.shape}")
            mean = x.mean(axis=self.axes)
            centered = x - self._per_feature(mean, x.ndim)
            var = (centered * centered).mean(axis=self.axes)  # as x.var does it, without its second mean
            m = x.dtype.type(self.momentum)
            self.buffers["running_mean"] += m * (mean - self.buffers["running_mean"])
            self.buffers["running_var"] += m * (var * x.dtype.type(count / (count - 1)) - self.buffers["running_var"])
        else:
            var = self.buffers["running_var"]
            centered = x - self._per_feature(self.buffers["running_mean"], x.ndim)
        inv_std = 1 / np.sqrt(var + x.dtype.type(self.eps))
        xhat = centered * self._per_feature(inv_std, x.ndim)
        self._cache = (xhat, inv_std, count)
        return xhat * self._per_feature(weight, x.ndim) + self._per_feature(self.params["bias"], x.ndim)

    def backward(self, dout, input_grad=True):
        xhat, inv_std, count = self._cache
        np.sum(dout, axis=self.axes, out=self.grads["bias"])
        np.sum(dout * xhat, axis=self.axes, out=self.grads["weight"])
        if not input_grad:
            return None
        scale = self._per_feature(self.params["weight"] * inv_std, dout.ndim)
        if not self.training:  # the statistics were constants
            return dout * scale
        # the batch statistics depend on x: remove the gradient's mean and its component along xhat
        mean_grad = self._per_feature(self.grads["bias"] / count, dout.ndim)
        along_xhat = self._per_feature(self.grads["weight"] / count, dout.ndim)
        return scale * (dout - mean_grad - xhat * along_xhat)


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, num_features) inputs."""

    axes = (0,)

    def output_shape(self, shape):
        if len(shape) != 1:
            raise ValueError(f"batchnorm1d needs flat examples (put 'flatten' before it), got shape {tuple(shape)}")
        if shape[0] != self.num_features:
            raise ValueError(f"expected {self.num_features} features, got {shape[0]}")
        return tuple(shape)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, num_features, H, W) inputs, one mean and variance per channel."""

    axes = (0, 2, 3)

    def output_shape(self, shape):
        expect_image("batchnorm2d", shape)
        if shape[0] != self.num_features:
            raise ValueError(f"expected {self.num_features} channels, got {shape[0]}")
        return tuple(shape)
