"""Forward and backward parity of every layer and the loss with torch, in float64 with the weights copied over."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from digits.nn import (AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, LeakyReLU, Linear, MaxPool2d,
                       ReLU, Sigmoid, Tanh, softmax, softmax_cross_entropy)


def assert_matches_torch(layer, torch_layer, x, seed=0):
    """Copy ``layer``'s params into ``torch_layer``; compare outputs, input gradients and parameter gradients."""
    for key, value in layer.params.items():
        getattr(torch_layer, key).data = torch.from_numpy(value.copy())
    torch_layer.zero_grad(set_to_none=True)
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


CONV_CASES = [  # x_shape, out_channels, kernel_size, stride, padding, bias
    ((4, 3, 11, 9), 5, 3, 1, 0, True),
    ((1, 1, 28, 28), 24, 5, 1, 0, True),
    ((2, 4, 9, 10), 6, 3, 2, 1, True),
    ((3, 2, 7, 7), 3, 4, 3, 2, False),
    ((2, 24, 12, 12), 60, 5, 1, 0, True),
    ((2, 3, 8, 9), 4, 3, 1, 1, False),
]


@pytest.mark.parametrize(
    "x_shape, out_channels, kernel_size, stride, padding, bias, method",
    [(*case, "im2col") for case in CONV_CASES] + [(*case, method) for case in CONV_CASES for method in
                                                   ("fft", "winograd") if case[3] == 1 and 2 <= case[2] <= 5],
)
def test_conv2d_matches_torch(x_shape, out_channels, kernel_size, stride, padding, bias, method):
    rng = np.random.default_rng(10)
    in_channels = x_shape[1]
    layer = Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias, method=method, rng=rng,
                   dtype=np.float64)
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


@pytest.mark.parametrize("method", ["im2col", "fft", "winograd"])
def test_float32_conv2d_stays_close_to_torch(method):
    """float32 transforms and GEMMs round differently from torch's kernels, but only in the last few bits."""
    rng = np.random.default_rng(23)
    layer = Conv2d(24, 60, 5, method=method, rng=rng)
    torch_layer = torch.nn.Conv2d(24, 60, 5)
    for key, value in layer.params.items():
        getattr(torch_layer, key).data = torch.from_numpy(value.copy())
    x = rng.random((8, 24, 12, 12), dtype=np.float32)
    x_t = torch.from_numpy(x.copy()).requires_grad_(True)
    out_t = torch_layer(x_t)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    out_t.backward(torch.from_numpy(dout))
    dx = layer.backward(dout)
    assert out.dtype == dx.dtype == layer.grads["weight"].dtype == np.float32
    for ours, theirs in [(out, out_t), (dx, x_t.grad), (layer.grads["weight"], torch_layer.weight.grad),
                         (layer.grads["bias"], torch_layer.bias.grad)]:
        theirs = theirs.detach().numpy()
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-5 * np.abs(theirs).max())


@pytest.mark.parametrize(
    "x_shape, kernel_size, stride", [((4, 3, 8, 8), 2, None), ((2, 2, 11, 9), 3, 2), ((1, 1, 6, 7), 3, 1)],
)
def test_avgpool2d_matches_torch(x_shape, kernel_size, stride):
    x = np.random.default_rng(11).standard_normal(x_shape)
    assert_matches_torch(AvgPool2d(kernel_size, stride), torch.nn.AvgPool2d(kernel_size, stride), x)


@pytest.mark.parametrize(
    "layer, torch_layer",
    [(LeakyReLU(), torch.nn.LeakyReLU()), (LeakyReLU(0.3), torch.nn.LeakyReLU(0.3)), (Sigmoid(), torch.nn.Sigmoid()),
     (Tanh(), torch.nn.Tanh())],
    ids=["leakyrelu", "leakyrelu-0.3", "sigmoid", "tanh"],
)
def test_activations_match_torch_including_zeros_and_huge_inputs(layer, torch_layer):
    x = np.random.default_rng(14).standard_normal((3, 2, 5, 5)) * 4
    x[0, 0, :2] = 0.0
    x[1, 1, 0, :3] = [-800.0, 800.0, -40.0]  # exp would overflow
    assert_matches_torch(layer, torch_layer, x)


@pytest.mark.parametrize(
    "make, torch_make, shape",
    [(BatchNorm1d, torch.nn.BatchNorm1d, (6, 5)), (BatchNorm2d, torch.nn.BatchNorm2d, (4, 3, 5, 6)),
     (BatchNorm2d, torch.nn.BatchNorm2d, (2, 2, 1, 3))],
)
def test_batchnorm_matches_torch_in_training_and_eval_with_running_statistics(make, torch_make, shape):
    rng = np.random.default_rng(24)
    layer = make(shape[1], momentum=0.2, dtype=np.float64)
    torch_layer = torch_make(shape[1], momentum=0.2, dtype=torch.float64)
    layer.params["weight"][...] = rng.uniform(0.5, 2.0, shape[1])
    layer.params["bias"][...] = rng.standard_normal(shape[1])
    for step in range(3):  # the running statistics move the same way step after step
        assert_matches_torch(layer, torch_layer, rng.standard_normal(shape) * 3 + 2, seed=step)
        np.testing.assert_allclose(layer.buffers["running_mean"], torch_layer.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(layer.buffers["running_var"], torch_layer.running_var.numpy(), rtol=1e-12)
    layer.eval()
    torch_layer.eval()
    assert_matches_torch(layer, torch_layer, rng.standard_normal(shape), seed=5)
    np.testing.assert_allclose(layer.buffers["running_mean"], torch_layer.running_mean.numpy(), rtol=1e-12)


@pytest.mark.parametrize("memory_order", [(2, 3, 0, 1), (0, 2, 3, 1), (0, 1, 2, 3)])  # HWNC (conv outputs), NHWC, NCHW
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm2d_matches_torch_for_inputs_in_any_memory_order(memory_order, training):
    """BatchNorm2d reads the batch as rows in its memory order; the gradient comes C-contiguous,
    so in another order than the input, and must be read in the input's."""
    rng = np.random.default_rng(25)
    shape = (4, 3, 5, 6)
    stored = rng.standard_normal([shape[axis] for axis in memory_order]) * 3 + 2
    x = stored.transpose(np.argsort(memory_order))  # an NCHW view of memory in ``memory_order``
    layer, torch_layer = BatchNorm2d(3, dtype=np.float64), torch.nn.BatchNorm2d(3, dtype=torch.float64)
    layer.params["weight"][...] = rng.uniform(0.5, 2.0, 3)
    if not training:
        layer.buffers["running_mean"][...] = rng.standard_normal(3)
        layer.buffers["running_var"][...] = rng.uniform(1, 2, 3)
        torch_layer.running_mean.copy_(torch.from_numpy(layer.buffers["running_mean"]))
        torch_layer.running_var.copy_(torch.from_numpy(layer.buffers["running_var"]))
        layer.eval()
        torch_layer.eval()
    assert_matches_torch(layer, torch_layer, x)


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

    torch.manual_seed(0)
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


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 0.5])
def test_softmax_cross_entropy_matches_torch(label_smoothing):
    rng = np.random.default_rng(22)
    logits = rng.standard_normal((7, 10)) * 5
    y = rng.integers(0, 10, size=7)
    logits_t = torch.from_numpy(logits.copy()).requires_grad_(True)
    loss_t = F.cross_entropy(logits_t, torch.from_numpy(y), label_smoothing=label_smoothing)
    loss_t.backward()
    loss, dlogits = softmax_cross_entropy(logits, y, label_smoothing)
    assert isinstance(loss, float)
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    np.testing.assert_allclose(dlogits, logits_t.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("y", [np.array([0, 10]), np.array([-1, 2]), np.array([0.0, 1.0]), np.array([1, 2, 3])])
def test_softmax_cross_entropy_rejects_bad_labels(y):
    with pytest.raises(ValueError):
        softmax_cross_entropy(np.zeros((2, 10)), y)


@pytest.mark.parametrize("layer, torch_layer", [(MaxPool2d(2), torch.nn.MaxPool2d(2)),
                                                (MaxPool2d(3, 2), torch.nn.MaxPool2d(3, 2)), (ReLU(), torch.nn.ReLU())])
def test_backward_after_an_eval_mode_forward_matches_torch(layer, torch_layer):
    """In eval mode pooling keeps only the maxima; a backward pass then finds the routing itself."""
    layer.eval()
    x = np.random.default_rng(25).integers(0, 3, size=(2, 3, 9, 9)).astype(np.float64) - 1  # ties and zeros
    assert_matches_torch(layer, torch_layer, x)
