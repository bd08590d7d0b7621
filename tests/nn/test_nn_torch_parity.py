"""Forward and backward parity of every layer and the loss with torch, in float64 with the weights copied over."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from digits.nn import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, softmax, softmax_cross_entropy


def assert_matches_torch(layer, torch_layer, x, seed=0):
    """Copy ``layer``'s params into ``torch_layer``; compare outputs, input gradients and parameter gradients."""
    for key, value in layer.params.items():
        getattr(torch_layer, key).data = torch.from_numpy(value.copy())
    x_t = torch.from_numpy(x.copy()).requires_grad_(True)
    out_t = torch_layer(x_t)
    out = layer.forward(x)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)

    dout = np.random.default_rng(seed).standard_normal(out.shape)
    out_t.backward(torch.from_numpy(dout))
    dx = layer.backward(dout)
    np.testing.assert_allclose(dx, x_t.grad.numpy(), rtol=1e-10, atol=1e-12)
    for key, grad in layer.grads.items():
        np.testing.assert_allclose(grad, getattr(torch_layer, key).grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=key)


@pytest.mark.parametrize(
    "x_shape, out_channels, kernel_size, stride, padding, bias",
    [
        ((4, 3, 11, 9), 5, 3, 1, 0, True),
        ((1, 1, 28, 28), 24, 5, 1, 0, True),
        ((2, 4, 9, 10), 6, 3, 2, 1, True),
        ((3, 2, 7, 7), 3, 4, 3, 2, False),
    ],
)
def test_conv2d_matches_torch(x_shape, out_channels, kernel_size, stride, padding, bias):
    rng = np.random.default_rng(10)
    in_channels = x_shape[1]
    layer = Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias, rng=rng, dtype=np.float64)
    torch_layer = torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias,
                                  dtype=torch.float64)
    assert layer.params["weight"].shape == torch_layer.weight.shape
    assert_matches_torch(layer, torch_layer, rng.standard_normal(x_shape))


@pytest.mark.parametrize(
    "x_shape, kernel_size, stride",
    [((4, 3, 8, 8), 2, None), ((2, 2, 11, 9), 3, 2), ((3, 2, 7, 9), 2, None), ((1, 1, 6, 7), 3, 1)],
)
def test_maxpool2d_matches_torch(x_shape, kernel_size, stride):
    x = np.random.default_rng(11).standard_normal(x_shape)
    assert_matches_torch(MaxPool2d(kernel_size, stride), torch.nn.MaxPool2d(kernel_size, stride), x)


@pytest.mark.parametrize("kernel_size, stride", [(2, None), (3, 2), (3, 1)])
def test_maxpool2d_routes_ties_like_torch(kernel_size, stride):
    x = np.random.default_rng(12).integers(0, 2, size=(2, 3, 9, 9)).astype(np.float64)  # many tied maxima
    assert_matches_torch(MaxPool2d(kernel_size, stride), torch.nn.MaxPool2d(kernel_size, stride), x)


@pytest.mark.parametrize("n, in_features, out_features, bias", [(5, 7, 3, True), (1, 960, 240, True), (3, 4, 2, False)])
def test_linear_matches_torch(n, in_features, out_features, bias):
    rng = np.random.default_rng(13)
    layer = Linear(in_features, out_features, bias, rng=rng, dtype=np.float64)
    torch_layer = torch.nn.Linear(in_features, out_features, bias=bias, dtype=torch.float64)
    assert layer.params["weight"].shape == torch_layer.weight.shape
    assert_matches_torch(layer, torch_layer, rng.standard_normal((n, in_features)))


def test_relu_matches_torch_including_zeros():
    x = np.random.default_rng(14).standard_normal((3, 2, 5, 5))
    x[0, 0, :2] = 0.0
    assert_matches_torch(ReLU(), torch.nn.ReLU(), x)


def test_flatten_matches_torch():
    x = np.random.default_rng(15).standard_normal((3, 4, 2, 5))
    assert_matches_torch(Flatten(), torch.nn.Flatten(), x)


def test_dropout_is_identity_in_eval_mode():
    layer = Dropout(0.5, rng=np.random.default_rng(16))
    layer.eval()
    x = np.random.default_rng(17).standard_normal((4, 30))
    np.testing.assert_array_equal(layer.forward(x), x)
    dout = np.ones_like(x)
    np.testing.assert_array_equal(layer.backward(dout), dout)


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_drops_about_p_and_rescales_like_torch(p):
    layer = Dropout(p, rng=np.random.default_rng(18))
    x = np.random.default_rng(19).uniform(1.0, 2.0, size=(200, 500))  # no zeros of its own
    out = layer.forward(x)
    dropped = out == 0
    assert abs(dropped.mean() - p) < 0.01
    np.testing.assert_allclose(out[~dropped], x[~dropped] / (1 - p), rtol=1e-14)

    torch_out = F.dropout(torch.from_numpy(x), p, training=True).numpy()
    assert abs((torch_out == 0).mean() - dropped.mean()) < 0.01
    np.testing.assert_allclose(np.unique(torch_out[torch_out != 0] / x[torch_out != 0]), 1 / (1 - p))

    dout = np.random.default_rng(20).standard_normal(x.shape)
    dx = layer.backward(dout)
    np.testing.assert_array_equal(dx[dropped], 0.0)
    np.testing.assert_allclose(dx[~dropped], dout[~dropped] / (1 - p), rtol=1e-14)


def test_softmax_matches_torch_even_for_huge_logits():
    logits = np.random.default_rng(21).standard_normal((6, 10)) * 50
    logits[0, 3] = 1e4
    probs = softmax(logits)
    np.testing.assert_allclose(probs, torch.softmax(torch.from_numpy(logits), dim=1).numpy(), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-14)


def test_softmax_cross_entropy_matches_torch():
    rng = np.random.default_rng(22)
    logits = rng.standard_normal((7, 10)) * 5
    y = rng.integers(0, 10, size=7)
    logits_t = torch.from_numpy(logits.copy()).requires_grad_(True)
    loss_t = F.cross_entropy(logits_t, torch.from_numpy(y))
    loss_t.backward()
    loss, dlogits = softmax_cross_entropy(logits, y)
    assert isinstance(loss, float)
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    np.testing.assert_allclose(dlogits, logits_t.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("y", [np.array([0, 10]), np.array([-1, 2]), np.array([0.0, 1.0]), np.array([1, 2, 3])])
def test_softmax_cross_entropy_rejects_bad_labels(y):
    with pytest.raises(ValueError):
        softmax_cross_entropy(np.zeros((2, 10)), y)
