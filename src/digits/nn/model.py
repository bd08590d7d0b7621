"""A sequential network, built from a params.yaml layer spec and saved as one ``.npz`` file."""

import inspect

import numpy as np

from digits.artifacts import check_arrays, regenerate
from digits.errors import DigitsError, SettingError
from digits.io import header_array, load_archive, save_archive
from digits.nn.activations import LeakyReLU, ReLU, Sigmoid, Tanh
from digits.nn.conv import Conv2d
from digits.nn.layers import Dropout, Flatten, Linear
from digits.nn.norm import BatchNorm1d, BatchNorm2d
from digits.nn.fast.parallel import one_blas_thread
from digits.nn.fast.reorder import forward_order
from digits.nn.pooling import AvgPool2d, MaxPool2d
from digits.spec import check_arguments, parse_item

# spec name -> (layer class, constructor argument inferred from the input shape)
_LAYERS = {
    "conv2d": (Conv2d, "in_channels"),
    "maxpool2d": (MaxPool2d, None),
    "avgpool2d": (AvgPool2d, None),
    "batchnorm2d": (BatchNorm2d, "num_features"),
    "flatten": (Flatten, None),
    "linear": (Linear, "in_features"),
    "batchnorm1d": (BatchNorm1d, "num_features"),
    "dropout": (Dropout, None),
    "relu": (ReLU, None),
    "leakyrelu": (LeakyReLU, None),
    "sigmoid": (Sigmoid, None),
    "tanh": (Tanh, None),
}
_INJECTED = {"rng", "dtype"}
_HEADER_KEY = "__model__"
_FILE = "a numpy CNN model (a .npz of plain arrays written by train_cnn)"


class Sequential:
    """Layers applied in order; ``backward`` runs them in reverse (a ReLU before a MaxPool2d runs after
    it, with the same results: ``digits.nn.fast.reorder``)."""

    def __init__(self, layers):
        self.layers = list(layers)
        self._order = forward_order(self.layers)
        self.train()

    def forward(self, x):
        """Output of the last layer for batch ``x``, e.g. (N, 1, 28, 28) -> (N, 10) logits."""
        with one_blas_thread():  # the large products spread over the cores themselves (digits.nn.fast.parallel)
            for index in self._order:
                x = self.layers[index].forward(x)
        return x

    def backward(self, dout, input_grad=True):
        """Fill every layer's ``grads`` from the gradient of the last output; return the input gradient.

        With ``input_grad=False`` (training) the backward pass stops at the first layer
        with parameters, which skips its input gradient, and None is returned.
        """
        layers = [self.layers[index] for index in self._order]
        first = 0 if input_grad else next((i for i, layer in enumerate(layers) if layer.params), len(layers))
        with one_blas_thread():
            for layer in reversed(layers[first + (not input_grad):]):
                dout = layer.backward(dout)
            if input_grad:
                return dout
            if first < len(layers):
                layers[first].backward(dout, input_grad=False)
        return None

    def train(self):
        self.training = True
        for layer in self.layers:
            layer.train()

    def eval(self):
        self.training = False
        for layer in self.layers:
            layer.eval()

    def parameters(self):
        """(name, param, grad) triples, name like ``"0.weight"`` (layer index, key)."""
        return [(f"{index}.{key}", layer.params[key], layer.grads[key])
                for index, layer in enumerate(self.layers) for key in layer.params]

    def buffers(self):
        """(name, array) pairs of the non-trained state (batch-norm running statistics), named like parameters."""
        return [(f"{index}.{key}", value) for index, layer in enumerate(self.layers)
                for key, value in layer.buffers.items()]

    def state_dict(self):
        """{name: array} of every parameter and buffer, named as in ``parameters()`` and ``buffers()``; the live arrays."""
        state = {name: param for name, param, _ in self.parameters()}
        state.update(self.buffers())
        return state

    def load_state_dict(self, arrays):
        """Copy ``arrays`` ({name: array}, as ``state_dict()`` gives) into the parameters and buffers in place.

        Raises a DigitsError when the names differ or an array's shape or dtype does not match.
        """
        own = self.state_dict()
        if set(arrays) != set(own):
            raise DigitsError(f"parameters {sorted(arrays)} do not match the spec, which needs {sorted(own)}")
        for name, param in own.items():
            if arrays[name].shape != param.shape or arrays[name].dtype != param.dtype:
                raise DigitsError(f"parameter {name} is {arrays[name].dtype}{arrays[name].shape},"
                                  f" expected {param.dtype}{param.shape}")
            param[...] = arrays[name]


def _make_layer(index, name, args, shape, rng, dtype):
    """Layer ``index`` made from its spec arguments for per-example input ``shape``, and its output shape."""
    cls, inferred = _LAYERS[name]
    signature = inspect.signature(cls).parameters
    allowed = [arg for arg in signature if arg not in _INJECTED and arg != inferred]
    required = [arg for arg in allowed if signature[arg].default is inspect.Parameter.empty]
    check_arguments(index, name, args, allowed, required, "layer")
    injected = {arg: value for arg, value in (("rng", rng), ("dtype", dtype)) if arg in signature}
    if inferred:
        injected[inferred] = shape[0]
    try:
        layer = cls(**args, **injected)
        return layer, layer.output_shape(shape)
    except SettingError as err:
        raise DigitsError(f"layer {index} ({name}): {err}") from None


def build(spec, input_shape=(1, 28, 28), *, seed, dtype=np.float32):
    """Build a Sequential from a params.yaml layer spec.

    Each item is a layer name (``"relu"``, ``"flatten"``) or a one-key mapping from
    a name to its arguments (``{"conv2d": {"out_channels": 24, "kernel_size": 5}}``);
    the arguments are those of the layer classes, less ``in_channels`` and
    ``in_features``, which are inferred from ``input_shape`` (C, H, W).  Arguments
    are always a mapping: ``{"maxpool2d": {"kernel_size": 2}}``, not ``{"maxpool2d": 2}``.  One
    ``np.random.default_rng(seed)`` draws the initial weights and the dropout masks; every
    parameter, gradient and buffer has ``dtype`` (float32 or float64).
    """
    if not isinstance(spec, list) or not spec:
        raise DigitsError(f"the layer spec must be a non-empty list, got {spec!r}")
    if not (isinstance(input_shape, (list, tuple)) and input_shape
            and all(isinstance(size, int) and not isinstance(size, bool) and size >= 1 for size in input_shape)):
        raise DigitsError(f"the input shape must be positive integers like (1, 28, 28), got {input_shape!r}")
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise DigitsError(f"the network's dtype must be float32 or float64, got {np.dtype(dtype).name}")
    rng = np.random.default_rng(seed)
    shape = tuple(input_shape)
    layers = []
    for index, item in enumerate(spec):
        name, args = parse_item(index, item, _LAYERS, "layer")
        layer, shape = _make_layer(index, name, args, shape, rng, dtype)
        layers.append(layer)
    return Sequential(layers)


def save(model, path, spec, input_shape):
    """Write ``model``'s parameters, its spec and input shape to one ``.npz`` file, atomically.

    Parameters and buffers are stored under their ``parameters()`` / ``buffers()`` names;
    the spec, input shape and dtype as a JSON header, so loading needs no pickle.
    """
    arrays = model.state_dict()
    dtype = next(iter(arrays.values())).dtype.name if arrays else np.dtype(np.float32).name
    header = {"spec": spec, "input_shape": list(input_shape), "dtype": dtype}
    save_archive(path, {**arrays, _HEADER_KEY: header_array(header)}, compress=False)


def load(path):
    """Rebuild the model saved by ``save`` at ``path``; its dropout masks are drawn with seed 0."""
    header, arrays = load_archive(path, _FILE, _HEADER_KEY)
    try:
        spec, input_shape, dtype = header["spec"], header["input_shape"], np.dtype(header["dtype"])
        if dtype.kind != "f":
            raise ValueError(f"dtype {dtype} is not a float type")
    except (KeyError, TypeError, ValueError) as err:
        raise DigitsError(f"{path}: not a numpy CNN model file (bad or missing {_HEADER_KEY!r}: {err}); "
                          f"{regenerate(path)}") from None
    check_arrays(path, arrays)
    try:
        model = build(spec, input_shape, seed=0, dtype=dtype)
        model.load_state_dict(arrays)
    except DigitsError as err:
        raise DigitsError(f"{path}: {err}; {regenerate(path)}") from None
    return model
