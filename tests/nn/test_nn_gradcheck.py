"""Central finite-difference checks of every layer's input and parameter gradients, in float64."""

import numpy as np
import pytest

from digits.nn import (AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, LeakyReLU, Linear, MaxPool2d,
                       ReLU, Sequential, Sigmoid, Tanh, softmax_cross_entropy)

EPS = 1e-6


def numeric_grad(loss, array):
    """d loss / d array by central differences, perturbing ``array`` in place."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        original = array[index]
        array[index] = original + EPS
        plus = loss()
        array[index] = original - EPS
        minus = loss()
        array[index] = original
        grad[index] = (plus - minus) / (2 * EPS)
    return grad


def check_layer(layer, x, seed=0, before_forward=lambda: None):
    """Compare backward against finite differences of the random projection loss sum(out * R)."""
    before_forward()
    out = layer.forward(x)
    projection = np.random.default_rng(seed).standard_normal(out.shape)
    dx = layer.backward(projection)
    analytic = {key: grad.copy() for key, grad in layer.grads.items()}
    assert dx.shape == x.shape

    def loss():
        before_forward()
        return float(np.sum(layer.forward(x) * projection))

    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-5, atol=1e-7)
    assert set(analytic) == set(layer.params)
    for key, param in layer.params.items():
        np.testing.assert_allclose(analytic[key], numeric_grad(loss, param), rtol=1e-5, atol=1e-7, err_msg=key)


def distinct_values(rng, shape):
    """Values at least 0.01 apart, so a perturbation of EPS never changes an argmax."""
    return rng.permutation(np.prod(shape)).reshape(shape) * 0.01 - 0.3


@pytest.mark.parametrize(
    "x_shape, out_channels, kernel_size, stride, padding, bias",
    [
        ((2, 3, 7, 6), 4, 3, 1, 0, True),
        ((1, 2, 5, 5), 3, 3, 2, 1, True),
        ((2, 2, 6, 7), 2, 2, 2, 2, False),
        ((3, 1, 8, 8), 2, 5, 1, 2, True),
        ((1, 2, 8, 9), 3, 3, 2, 0, True),
        ((2, 3, 4, 4), 2, 1, 1, 0, True),
    ],
)
def test_conv2d_gradients(x_shape, out_channels, kernel_size, stride, padding, bias):
    rng = np.random.default_rng(1)
    layer = Conv2d(x_shape[1], out_channels, kernel_size, stride, padding, bias, method="im2col", rng=rng,
                   dtype=np.float64)
    check_layer(layer, rng.standard_normal(x_shape))


@pytest.mark.parametrize(
    "x_shape, out_channels, kernel_size, padding, bias",
    [((2, 3, 7, 6), 4, 3, 0, True), ((1, 2, 5, 5), 3, 3, 1, True), ((2, 2, 6, 7), 2, 2, 2, False),
     ((3, 1, 8, 8), 2, 5, 2, True), ((1, 2, 9, 8), 3, 4, 0, True), ((2, 2, 13, 11), 2, 5, 1, True)],
)
@pytest.mark.parametrize("method", ["fft", "winograd"])
def test_conv2d_stride_1_algorithm_gradients(x_shape, out_channels, kernel_size, padding, bias, method):
    rng = np.random.default_rng(1)
    layer = Conv2d(x_shape[1], out_channels, kernel_size, 1, padding, bias, method=method, rng=rng, dtype=np.float64)
    check_layer(layer, rng.standard_normal(x_shape))


@pytest.mark.parametrize(
    "x_shape, kernel_size, stride",
    [((2, 3, 6, 6), 2, None), ((1, 2, 7, 7), 3, 2), ((2, 1, 5, 7), 2, None), ((2, 2, 9, 8), 3, 2),
     ((1, 1, 6, 6), 3, 1)],
)
def test_maxpool2d_gradients(x_shape, kernel_size, stride):
    rng = np.random.default_rng(2)
    check_layer(MaxPool2d(kernel_size, stride), distinct_values(rng, x_shape))


@pytest.mark.parametrize(
    "x_shape, kernel_size, stride",
    [((2, 3, 6, 6), 2, None), ((1, 2, 7, 7), 3, 2), ((2, 1, 5, 7), 2, None), ((1, 1, 6, 6), 3, 1)],
)
def test_avgpool2d_gradients(x_shape, kernel_size, stride):
    check_layer(AvgPool2d(kernel_size, stride), np.random.default_rng(2).standard_normal(x_shape))


@pytest.mark.parametrize("n, in_features, out_features, bias", [(1, 5, 3, True), (4, 7, 2, True), (3, 4, 6, False)])
def test_linear_gradients(n, in_features, out_features, bias):
    rng = np.random.default_rng(3)
    layer = Linear(in_features, out_features, bias, rng=rng, dtype=np.float64)
    check_layer(layer, rng.standard_normal((n, in_features)))


@pytest.mark.parametrize("shape", [(1, 7), (3, 2, 5, 5)])
def test_relu_gradients(shape):
    x = np.random.default_rng(4).standard_normal(shape)
    x += np.where(x >= 0, 1e-2, -1e-2)  # keep clear of the kink at 0
    check_layer(ReLU(), x)


@pytest.mark.parametrize("layer", [LeakyReLU(), LeakyReLU(0.2), Sigmoid(), Tanh()], ids=lambda layer: repr(layer))
@pytest.mark.parametrize("shape", [(1, 7), (3, 2, 5, 5)])
def test_smooth_activation_gradients(layer, shape):
    x = np.random.default_rng(4).standard_normal(shape) * 3
    x += np.where(x >= 0, 1e-2, -1e-2)  # keep clear of the leaky kink at 0
    check_layer(layer, x)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("make, shape", [(BatchNorm1d, (5, 4)), (BatchNorm1d, (2, 3)), (BatchNorm2d, (3, 2, 4, 5)),
                                         (BatchNorm2d, (1, 3, 3, 2))])
def test_batchnorm_gradients(make, shape, training):
    rng = np.random.default_rng(9)
    layer = make(shape[1], dtype=np.float64)
    layer.params["weight"][...] = rng.uniform(0.5, 2.0, shape[1])
    layer.params["bias"][...] = rng.standard_normal(shape[1])
    layer.buffers["running_mean"][...] = rng.standard_normal(shape[1])
    layer.buffers["running_var"][...] = rng.uniform(0.5, 2.0, shape[1])
    if not training:
        layer.eval()
    check_layer(layer, rng.standard_normal(shape) * 2 + 1)


@pytest.mark.parametrize("shape", [(1, 2, 3, 3), (4, 3, 2, 5)])
def test_flatten_gradients(shape):
    check_layer(Flatten(), np.random.default_rng(5).standard_normal(shape))


@pytest.mark.parametrize("shape", [(1, 9), (3, 2, 4, 4)])
def test_dropout_gradients_with_a_fixed_mask(shape):
    layer = Dropout(0.4, rng=None)

    def reset_rng():
        layer.rng = np.random.default_rng(6)

    check_layer(layer, np.random.default_rng(7).standard_normal(shape), before_forward=reset_rng)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 1.0])
def test_loss_gradient(label_smoothing):
    rng = np.random.default_rng(11)
    logits = rng.standard_normal((4, 6)) * 3
    y = np.array([0, 5, 2, 2])
    _, dlogits = softmax_cross_entropy(logits, y, label_smoothing)
    numeric = numeric_grad(lambda: softmax_cross_entropy(logits, y, label_smoothing)[0], logits)
    np.testing.assert_allclose(dlogits, numeric, rtol=1e-6, atol=1e-9)


def test_small_network_gradients_through_the_loss():
    rng = np.random.default_rng(8)
    model = Sequential([
        Conv2d(2, 3, 3, padding=1, rng=rng, dtype=np.float64), BatchNorm2d(3, dtype=np.float64), ReLU(),
        MaxPool2d(2), Conv2d(3, 4, 2, padding=1, method="fft", rng=rng, dtype=np.float64), Tanh(),
        Conv2d(4, 3, 3, padding=1, method="winograd", rng=rng, dtype=np.float64), Flatten(),
        Linear(3 * 4 * 4, 5, rng=rng, dtype=np.float64), BatchNorm1d(5, dtype=np.float64), LeakyReLU(),
        Linear(5, 4, rng=rng, dtype=np.float64),
    ])
    x = rng.standard_normal((3, 2, 6, 6))
    y = np.array([0, 3, 1])

    def loss():
        return softmax_cross_entropy(model.forward(x), y, label_smoothing=0.1)[0]

    _, dlogits = softmax_cross_entropy(model.forward(x), y, label_smoothing=0.1)
    dx = model.backward(dlogits)
    analytic = [(param, grad.copy()) for _, param, grad in model.parameters()]
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-5, atol=1e-8)
    for param, grad in analytic:
        np.testing.assert_allclose(grad, numeric_grad(loss, param), rtol=1e-5, atol=1e-8)
