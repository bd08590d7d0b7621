"""build() from a params.yaml spec, and the .npz save/load round trip."""

import json

import numpy as np
import pytest

from digits.errors import DigitsError
from digits.nn import (AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, LeakyReLU, Linear, MaxPool2d, Sigmoid,
                       Tanh, build, load, predict_proba, save, softmax_cross_entropy)

DEFAULT_SPEC = [
    {"conv2d": {"out_channels": 24, "kernel_size": 5}}, "relu", {"maxpool2d": {"kernel_size": 2}},
    {"conv2d": {"out_channels": 60, "kernel_size": 5}}, "relu", {"maxpool2d": {"kernel_size": 2}},
    "flatten",
    {"linear": {"out_features": 240}}, {"dropout": {"p": 0.5}}, "relu",
    {"linear": {"out_features": 84}}, {"dropout": {"p": 0.5}}, "relu",
    {"linear": {"out_features": 10}},
]
SMALL_SPEC = [{"conv2d": {"out_channels": 3, "kernel_size": 3, "padding": 1}}, "relu",
              {"maxpool2d": {"kernel_size": 2}}, "flatten", {"dropout": {"p": 0.3}}, {"linear": {"out_features": 4}}]


def test_default_network_infers_sizes_and_gives_logits():
    model = build(DEFAULT_SPEC, seed=0)
    convs = [layer for layer in model.layers if isinstance(layer, Conv2d)]
    linears = [layer for layer in model.layers if isinstance(layer, Linear)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 24), (24, 60)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(960, 240), (240, 84), (84, 10)]
    assert [d.p for d in model.layers if isinstance(d, Dropout)] == [0.5, 0.5]
    assert [name for name, _, _ in model.parameters()][:3] == ["0.weight", "0.bias", "3.weight"]
    x = np.random.default_rng(0).random((5, 1, 28, 28), dtype=np.float32)
    logits = model.forward(x)
    assert logits.shape == (5, 10)
    assert logits.dtype == np.float32


def test_spec_arguments_reach_the_layers():
    spec = [{"conv2d": {"out_channels": 2, "kernel_size": 3, "stride": 2, "padding": 1, "bias": False}},
            {"maxpool2d": {"kernel_size": 3, "stride": 1}}, "flatten", {"linear": {"out_features": 3, "bias": False}}]
    model = build(spec, input_shape=(3, 9, 9), seed=1, dtype=np.float64)
    conv, pool, _, linear = model.layers
    assert (conv.in_channels, conv.stride, conv.padding, list(conv.params)) == (3, 2, 1, ["weight"])
    assert (pool.kernel_size, pool.stride) == (3, 1)
    assert linear.in_features == 2 * 3 * 3 and list(linear.params) == ["weight"]
    assert model.forward(np.zeros((2, 3, 9, 9))).shape == (2, 3)
    assert all(param.dtype == np.float64 for _, param, _ in model.parameters())


BN_SPEC = [{"conv2d": {"out_channels": 3, "kernel_size": 3, "padding": 1, "init": "kaiming_normal"}},
           "batchnorm2d", {"leakyrelu": {"negative_slope": 0.1}}, {"avgpool2d": {"kernel_size": 2}},
           {"conv2d": {"out_channels": 4, "kernel_size": 2, "method": "fft"}}, "tanh", "flatten",
           {"linear": {"out_features": 5, "init": "xavier_uniform"}}, {"batchnorm1d": {"momentum": 0.5}}, "sigmoid",
           {"linear": {"out_features": 3}}]


def test_every_layer_kind_builds_from_the_spec_with_inferred_sizes():
    model = build(BN_SPEC, input_shape=(2, 6, 6), seed=0)
    kinds = [type(layer) for layer in model.layers]
    assert kinds[:5] == [Conv2d, BatchNorm2d, LeakyReLU, AvgPool2d, Conv2d] and Tanh in kinds and Sigmoid in kinds
    assert model.layers[1].num_features == 3 and model.layers[8].num_features == 5
    assert model.layers[2].negative_slope == 0.1 and model.layers[8].momentum == 0.5
    assert model.layers[4].method == "fft" and model.layers[7].in_features == 4 * 2 * 2
    assert np.all(model.layers[0].params["bias"] == 0)
    assert [name for name, _ in model.buffers()] == ["1.running_mean", "1.running_var", "8.running_mean",
                                                     "8.running_var"]
    assert model.forward(np.zeros((4, 2, 6, 6), dtype=np.float32)).shape == (4, 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_dtype_throughout_forward_backward_and_state(dtype):
    model = build(BN_SPEC, input_shape=(2, 6, 6), seed=0, dtype=dtype)
    out = np.random.default_rng(1).random((4, 2, 6, 6)).astype(dtype)
    for layer in model.layers:
        out = layer.forward(out)
        assert out.dtype == dtype, type(layer).__name__
    dout = softmax_cross_entropy(out, np.array([0, 1, 2, 0]), 0.1)[1]
    for layer in reversed(model.layers):
        dout = layer.backward(dout)
        assert dout.dtype == dtype, type(layer).__name__
    for name, param, grad in model.parameters():
        assert param.dtype == grad.dtype == dtype, name
    assert all(buffer.dtype == dtype for _, buffer in model.buffers())


def test_backward_without_input_gradient_fills_the_same_parameter_gradients():
    model = build(BN_SPEC, input_shape=(2, 6, 6), seed=0, dtype=np.float64)
    x = np.random.default_rng(2).random((4, 2, 6, 6))
    dlogits = softmax_cross_entropy(model.forward(x), np.array([0, 1, 2, 0]))[1]
    assert model.backward(dlogits).shape == x.shape
    full = [grad.copy() for _, _, grad in model.parameters()]
    for _, _, grad in model.parameters():
        grad[...] = np.nan
    assert model.backward(dlogits, input_grad=False) is None
    for expected, (name, _, grad) in zip(full, model.parameters()):
        np.testing.assert_array_equal(grad, expected, err_msg=name)


def test_save_load_keeps_batchnorm_statistics(tmp_path):
    model = build(BN_SPEC, input_shape=(2, 6, 6), seed=0)
    rng = np.random.default_rng(3)
    for _ in range(3):
        model.forward(rng.random((8, 2, 6, 6), dtype=np.float32))  # training mode: statistics move
    save(model, tmp_path / "bn.npz", BN_SPEC, (2, 6, 6))
    loaded = load(tmp_path / "bn.npz")
    for (name, a), (_, b) in zip(model.buffers(), loaded.buffers()):
        assert not np.all(a == (0 if "mean" in name else 1))
        np.testing.assert_array_equal(a, b)
    x = rng.random((5, 2, 6, 6), dtype=np.float32)
    np.testing.assert_array_equal(predict_proba(model, x), predict_proba(loaded, x))


def test_same_seed_same_weights_and_different_seed_different_weights():
    first, second, other = build(DEFAULT_SPEC, seed=3), build(DEFAULT_SPEC, seed=3), build(DEFAULT_SPEC, seed=4)
    for (_, a, _), (_, b, _), (_, c, _) in zip(first.parameters(), second.parameters(), other.parameters()):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


def test_init_is_torch_default_uniform_bound():
    model = build(DEFAULT_SPEC, seed=0)
    weight = model.layers[3].params["weight"]  # fan_in = 24 * 5 * 5
    bound = 1 / np.sqrt(600)
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0.95 * bound


@pytest.mark.parametrize(
    "spec, fragments",
    [
        ([{"conv3d": {"out_channels": 2}}], ["layer 0", "conv3d", "conv2d", "maxpool2d", "relu"]),
        (["relu", "softmax"], ["layer 1", "softmax", "linear"]),
        (["relu", {"maxpool2d": 2}], ["layer 1", "maxpool2d", "mapping"]),
        ([{"conv2d": {"out_channels": 2, "kernel": 3}}], ["layer 0", "conv2d", "kernel", "kernel_size"]),
        ([{"conv2d": {"out_channels": 2}}], ["layer 0", "conv2d", "missing", "kernel_size"]),
        ([{"conv2d": {"out_channels": 2, "kernel_size": 3, "in_channels": 1}}], ["layer 0", "in_channels"]),
        ([{"conv2d": {"out_channels": 0, "kernel_size": 3}}], ["layer 0", "conv2d", "out_channels"]),
        ([{"conv2d": {"out_channels": 2, "kernel_size": 29}}], ["layer 0", "conv2d", "kernel 29"]),
        (["flatten", {"maxpool2d": {"kernel_size": 2}}], ["layer 1", "maxpool2d", "(C, H, W)"]),
        ([{"linear": {"out_features": 10}}], ["layer 0", "linear", "flatten"]),
        (["flatten", {"dropout": {"p": 1.0}}], ["layer 1", "dropout", "p must"]),
        (["flatten", {"dropout": {"p": "half"}}], ["layer 1", "dropout"]),
        (["relu", {"relu": {"inplace": True}}], ["layer 1", "relu", "inplace", "none"]),
        (["relu", {"relu": {}, "flatten": {}}], ["layer 1", "one-key"]),
        ([{"conv2d": {"out_channels": 2, "kernel_size": 3, "method": "direct"}}], ["layer 0", "method", "winograd"]),
        ([{"conv2d": {"out_channels": 2, "kernel_size": 7, "method": "winograd"}}], ["layer 0", "2 to 5"]),
        ([{"conv2d": {"out_channels": 2, "kernel_size": 3, "stride": 2, "method": "fft"}}], ["layer 0", "stride 1"]),
        ([{"conv2d": {"out_channels": 2, "kernel_size": 3, "init": "he"}}], ["layer 0", "init", "kaiming_normal"]),
        (["flatten", "batchnorm2d"], ["layer 1", "batchnorm2d", "(C, H, W)"]),
        (["batchnorm1d"], ["layer 0", "batchnorm1d", "flatten"]),
        (["flatten", {"batchnorm1d": {"num_features": 4}}], ["layer 1", "num_features"]),
        (["flatten", {"leakyrelu": {"negative_slope": -1}}], ["layer 1", "negative_slope"]),
        ([], ["non-empty"]),
        ("relu", ["non-empty list"]),
    ],
)
def test_bad_specs_raise_digits_error_naming_the_problem(spec, fragments):
    with pytest.raises(DigitsError) as excinfo:
        build(spec, seed=0)
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("input_shape", [(1, 0, 28), (1, 28.0, 28), "1x28x28", ()])
def test_bad_input_shape_raises_digits_error(input_shape):
    with pytest.raises(DigitsError, match="input shape"):
        build(SMALL_SPEC, input_shape=input_shape, seed=0)


@pytest.mark.parametrize("dtype", [np.float16, np.int32])
def test_only_float32_and_float64_networks(dtype):
    with pytest.raises(DigitsError, match="float32 or float64"):
        build(SMALL_SPEC, seed=0, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_round_trip_gives_identical_predictions(tmp_path, dtype):
    model = build(SMALL_SPEC, input_shape=(2, 6, 6), seed=5, dtype=dtype)
    path = tmp_path / "cnn.npz"
    save(model, path, SMALL_SPEC, (2, 6, 6))
    assert [p.name for p in tmp_path.iterdir()] == ["cnn.npz"]  # no temp file left behind
    loaded = load(path)
    for (name, a, _), (loaded_name, b, _) in zip(model.parameters(), loaded.parameters()):
        assert name == loaded_name
        assert a.dtype == b.dtype == dtype
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(6).random((7, 2, 6, 6)).astype(dtype)
    np.testing.assert_array_equal(predict_proba(model, x), predict_proba(loaded, x))


def test_save_keeps_the_given_name_and_replaces_an_existing_file(tmp_path):
    path = tmp_path / "model.bin"
    path.write_text("old contents")
    save(build(SMALL_SPEC, input_shape=(1, 4, 4), seed=0), path, SMALL_SPEC, (1, 4, 4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin"]
    assert isinstance(load(path).layers[2], MaxPool2d)


def test_model_file_holds_no_pickled_objects(tmp_path):
    path = tmp_path / "cnn.npz"
    save(build(SMALL_SPEC, input_shape=(1, 4, 4), seed=0), path, SMALL_SPEC, (1, 4, 4))
    with np.load(path, allow_pickle=False) as data:
        header = json.loads(str(data["__model__"]))
        assert all(data[key].dtype != object for key in data.files)
    assert header == {"spec": SMALL_SPEC, "input_shape": [1, 4, 4], "dtype": "float32"}


def write_npz(path, **arrays):
    with open(path, "wb") as file:
        np.savez(file, **arrays)


BN_SMALL_SPEC = SMALL_SPEC[:1] + ["batchnorm2d"] + SMALL_SPEC[1:]


def good_arrays(tmp_path, spec=SMALL_SPEC):
    path = tmp_path / "good.npz"
    save(build(spec, input_shape=(1, 4, 4), seed=0), path, spec, (1, 4, 4))
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def test_load_refuses_a_pickled_object_array(tmp_path):
    arrays = good_arrays(tmp_path)
    arrays["0.weight"] = np.array([{"evil": 1}, None], dtype=object)
    path = tmp_path / "pickled.npz"
    write_npz(path, **arrays)
    with pytest.raises(DigitsError, match="pickled.npz"):
        load(path)


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda a: a.pop("__model__"), "__model__"),
        (lambda a: a.update(__model__=np.array("not json")), "__model__"),
        (lambda a: a.update(__model__=np.array(json.dumps({"spec": ["relu"]}))), "__model__"),
        (lambda a: a.update(__model__=np.array(json.dumps({"spec": ["bogus"], "input_shape": [1, 4, 4],
                                                            "dtype": "float32"}))), "bogus"),
        (lambda a: a.pop("0.bias"), "do not match"),
        (lambda a: a.update({"9.weight": np.zeros(3)}), "do not match"),
        (lambda a: a.update({"0.weight": np.zeros((3, 1, 2, 2), dtype=np.float32)}), "0.weight"),
        (lambda a: a.update({"0.weight": a["0.weight"].astype(np.float64)}), "0.weight"),
        (lambda a: a.pop("1.running_var"), "do not match"),
        (lambda a: a.update({"1.running_mean": np.zeros(2, dtype=np.float32)}), "1.running_mean"),
    ],
)
def test_load_refuses_malformed_files_naming_them(tmp_path, change, fragment):
    arrays = good_arrays(tmp_path, BN_SMALL_SPEC)
    change(arrays)
    path = tmp_path / "broken.npz"
    write_npz(path, **arrays)
    with pytest.raises(DigitsError, match=fragment) as excinfo:
        load(path)
    assert "broken.npz" in str(excinfo.value)


@pytest.mark.parametrize("contents", [b"", b"not a zip file", None])
def test_load_refuses_files_that_are_not_npz_archives(tmp_path, contents):
    path = tmp_path / "model.npz"
    if contents is None:
        np.save(tmp_path / "model.npy", np.zeros(3))
        path = tmp_path / "model.npy"
    else:
        path.write_bytes(contents)
    with pytest.raises(DigitsError, match="model.np"):
        load(path)


def test_load_of_a_missing_file_raises_digits_error(tmp_path):
    with pytest.raises(DigitsError, match="absent.npz"):
        load(tmp_path / "absent.npz")
