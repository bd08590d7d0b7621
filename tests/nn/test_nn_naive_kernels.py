"""The vectorised kernels (convolution by im2col and by FFT, pooling, affine warps) agree with plain loop
references on random shapes."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from digits.nn import AvgPool2d, Conv2d, MaxPool2d, warp_affine


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


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 3), c=st.integers(1, 3), o=st.integers(1, 3), k=st.integers(1, 5),
    stride=st.integers(1, 3), padding=st.integers(0, 2), extra_h=st.integers(0, 9), extra_w=st.integers(0, 9),
    method=st.sampled_from(["im2col", "fft", "winograd"]), seed=st.integers(0, 2**32 - 1),
)
def test_conv2d_matches_loops(n, c, o, k, stride, padding, extra_h, extra_w, method, seed):
    stride = 1 if method != "im2col" else stride
    k = max(k, 2) if method == "winograd" else k
    rng = np.random.default_rng(seed)
    h, w = max(k - 2 * padding, 1) + extra_h, max(k - 2 * padding, 1) + extra_w
    layer = Conv2d(c, o, k, stride, padding, method=method, rng=rng, dtype=np.float64)
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
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-12, atol=1e-14)  # overlaps sum in another order


def naive_avgpool(x, k, stride, dout):
    n, c, h, w = x.shape
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.zeros((n, c, ho, wo))
    dx = np.zeros_like(x)
    for i in range(ho):
        for j in range(wo):
            out[:, :, i, j] = x[:, :, i * stride:i * stride + k, j * stride:j * stride + k].mean(axis=(2, 3))
            dx[:, :, i * stride:i * stride + k, j * stride:j * stride + k] += dout[:, :, i, j, None, None] / k ** 2
    return out, dx


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(1, 3), c=st.integers(1, 3), k=st.integers(1, 4), stride=st.none() | st.integers(1, 3),
    extra_h=st.integers(0, 6), extra_w=st.integers(0, 6), seed=st.integers(0, 2**32 - 1),
)
def test_avgpool2d_matches_loops(n, c, k, stride, extra_h, extra_w, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, k + extra_h, k + extra_w))
    layer = AvgPool2d(k, stride)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    expected_out, expected_dx = naive_avgpool(x, k, k if stride is None else stride, dout)
    np.testing.assert_allclose(out, expected_out, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(layer.backward(dout), expected_dx, rtol=1e-12, atol=1e-14)


def naive_warp(x, matrices):
    """Per-pixel loop: bilinear interpolation between the four neighbours, zero outside the image."""
    n, c, h, w = x.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    out = np.zeros_like(x)

    def pixel(b, row, col):
        return x[b, :, row, col] if 0 <= row < h and 0 <= col < w else np.zeros(c)

    for b in range(n):
        for i in range(h):
            for j in range(w):
                sx, sy = matrices[b, :, :2] @ [j - cx, i - cy] + matrices[b, :, 2] + [cx, cy]
                x0, y0 = int(np.floor(sx)), int(np.floor(sy))
                fx, fy = sx - x0, sy - y0
                out[b, :, i, j] = ((1 - fy) * ((1 - fx) * pixel(b, y0, x0) + fx * pixel(b, y0, x0 + 1))
                                   + fy * ((1 - fx) * pixel(b, y0 + 1, x0) + fx * pixel(b, y0 + 1, x0 + 1)))
    return out


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 2), h=st.integers(1, 7), w=st.integers(1, 7),
       seed=st.integers(0, 2**32 - 1))
def test_warp_affine_matches_loops(n, c, h, w, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    matrices = rng.normal(0, 1, size=(n, 2, 3)) * [1, 1, 3]  # shears, flips and shifts past the border too
    np.testing.assert_allclose(warp_affine(x, matrices), naive_warp(x, matrices), rtol=1e-12, atol=1e-12)
