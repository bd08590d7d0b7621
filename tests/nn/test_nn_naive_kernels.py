"""The vectorised conv and max-pool kernels agree with plain loop references on random shapes."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from digits.nn import Conv2d, MaxPool2d


def naive_conv(x, weight, bias, stride, padding, dout):
    """Loop reference: returns (out, dx, dweight, dbias) for the upstream gradient ``dout``."""
    n, c, h, w = x.shape
    o, _, k, _ = weight.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho = (h + 2 * padding - k) // stride + 1
    wo = (w + 2 * padding - k) // stride + 1
    out = np.zeros((n, o, ho, wo))
    dxp = np.zeros_like(xp)
    dweight = np.zeros_like(weight)
    for b in range(n):
        for f in range(o):
            for i in range(ho):
                for j in range(wo):
                    patch = xp[b, :, i * stride:i * stride + k, j * stride:j * stride + k]
                    out[b, f, i, j] = np.sum(patch * weight[f]) + bias[f]
                    dxp[b, :, i * stride:i * stride + k, j * stride:j * stride + k] += dout[b, f, i, j] * weight[f]
                    dweight[f] += dout[b, f, i, j] * patch
    dx = dxp[:, :, padding:padding + h, padding:padding + w]
    return out, dx, dweight, dout.sum(axis=(0, 2, 3))


def naive_maxpool(x, k, stride, dout):
    """Loop reference: returns (out, dx); the gradient goes to the first maximum in row-major order."""
    n, c, h, w = x.shape
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.zeros((n, c, ho, wo))
    dx = np.zeros_like(x)
    for b in range(n):
        for ch in range(c):
            for i in range(ho):
                for j in range(wo):
                    window = x[b, ch, i * stride:i * stride + k, j * stride:j * stride + k]
                    r, s = np.unravel_index(np.argmax(window), window.shape)
                    out[b, ch, i, j] = window[r, s]
                    dx[b, ch, i * stride + r, j * stride + s] += dout[b, ch, i, j]
    return out, dx


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 3), c=st.integers(1, 3), o=st.integers(1, 3), k=st.integers(1, 4),
    stride=st.integers(1, 3), padding=st.integers(0, 2), extra_h=st.integers(0, 5), extra_w=st.integers(0, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_conv2d_matches_loops(n, c, o, k, stride, padding, extra_h, extra_w, seed):
    rng = np.random.default_rng(seed)
    h, w = max(k - 2 * padding, 1) + extra_h, max(k - 2 * padding, 1) + extra_w
    layer = Conv2d(c, o, k, stride, padding, rng=rng, dtype=np.float64)
    x = rng.standard_normal((n, c, h, w))
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    expected = naive_conv(x, layer.params["weight"], layer.params["bias"], stride, padding, dout)
    for actual, wanted in zip((out, dx, layer.grads["weight"], layer.grads["bias"]), expected):
        np.testing.assert_allclose(actual, wanted, rtol=1e-10, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 3), c=st.integers(1, 3), k=st.integers(1, 4), stride=st.none() | st.integers(1, 3),
    extra_h=st.integers(0, 6), extra_w=st.integers(0, 6), levels=st.sampled_from([3, 1000]),
    seed=st.integers(0, 2**32 - 1),
)
def test_maxpool2d_matches_loops(n, c, k, stride, extra_h, extra_w, levels, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, levels, size=(n, c, k + extra_h, k + extra_w)).astype(np.float64)  # levels=3: many ties
    layer = MaxPool2d(k, stride)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    expected_out, expected_dx = naive_maxpool(x, k, k if stride is None else stride, dout)
    np.testing.assert_array_equal(out, expected_out)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-14)
