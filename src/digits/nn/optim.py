"""Optimizers with torch's update rules: SGD (momentum, Nesterov, weight decay), Adam, AdamW.

An optimizer takes ``model.parameters()``: (name, param, grad) triples whose
arrays it keeps; ``step()`` updates every param in place from its current grad,
at the learning rate ``lr`` (which a schedule may change between steps).  State
(momentum buffers, moments) has the parameter's dtype; ``state_dict()`` gives it
as named arrays and ``load_state_dict`` puts it back, to continue training exactly.
"""

import math
import numbers

import numpy as np

from digits.errors import DigitsError


def check_range(name, value, low, high=None, kind="optimizer"):
    """``value`` as a float, or a DigitsError naming the ``kind`` of setting unless it is a number
    >= ``low`` (and < ``high`` when given)."""
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (is_number and value >= low and (high is None or value < high)):
        bound = f"in [{low}, {high})" if high is not None else f">= {low}"
        raise DigitsError(f"{kind} setting {name} must be {bound}, got {value!r}")
    return float(value)


class SGD:
    """Stochastic gradient descent as ``torch.optim.SGD`` (no dampening).

    With weight decay ``g = grad + weight_decay * param``; with momentum the buffer
    starts at ``g`` and then becomes ``momentum * buf + g``, and the step uses ``buf``
    (or, with ``nesterov``, ``g + momentum * buf``); ``param -= lr * step``.
    """

    def __init__(self, parameters, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        self.lr = check_range("lr", lr, 0.0)
        self.momentum = check_range("momentum", momentum, 0.0)
        self.weight_decay = check_range("weight_decay", weight_decay, 0.0)
        if not isinstance(nesterov, bool):
            raise DigitsError(f"optimizer setting nesterov must be true or false, got {nesterov!r}")
        if nesterov and not self.momentum:
            raise DigitsError("optimizer setting nesterov needs a momentum > 0, got momentum 0")
        self.nesterov = nesterov
        self._params = [(param, grad) for _, param, grad in parameters]
        self._buffers = [None] * len(self._params)

    def step(self):
        for index, (param, grad) in enumerate(self._params):
            g = grad + self.weight_decay * param if self.weight_decay else grad
            if self.momentum:
                buf = self._buffers[index]
                if buf is None:
                    buf = self._buffers[index] = g.copy()
                else:
                    buf *= self.momentum
                    buf += g
                g = g + self.momentum * buf if self.nesterov else buf
            param -= self.lr * g

    def state_dict(self):
        """The momentum buffers made so far, as {"momentum.<index>": array}."""
        return {f"momentum.{index}": buf.copy() for index, buf in enumerate(self._buffers) if buf is not None}

    def load_state_dict(self, state):
        """Restore buffers from ``state_dict()``; parameters without one start afresh."""
        _check_state(self, state, {f"momentum.{index}": param for index, (param, _) in enumerate(self._params)},
                     optional=True)
        self._buffers = [state[f"momentum.{index}"].copy() if f"momentum.{index}" in state else None
                         for index in range(len(self._params))]


class Adam:
    """Adam with bias correction as ``torch.optim.Adam``; ``weight_decay`` adds L2 to the gradient.

    ``m += (1 - b1) (g - m)``, ``v = b2 v + (1 - b2) g^2``, then
    ``param -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``.
    """

    decoupled = False

    def __init__(self, parameters, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.lr = check_range("lr", lr, 0.0)
        if not (isinstance(betas, (list, tuple)) and len(betas) == 2):
            raise DigitsError(f"optimizer setting betas must be two numbers, got {betas!r}")
        self.betas = (check_range("betas[0]", betas[0], 0.0, 1.0), check_range("betas[1]", betas[1], 0.0, 1.0))
        self.eps = check_range("eps", eps, 0.0)
        self.weight_decay = check_range("weight_decay", weight_decay, 0.0)
        self._params = [(param, grad) for _, param, grad in parameters]
        self._m = [np.zeros_like(param) for param, _ in self._params]
        self._v = [np.zeros_like(param) for param, _ in self._params]
        self._scratch = [np.empty_like(param) for param, _ in self._params]
        self._steps = 0

    def step(self):
        self._steps += 1
        beta1, beta2 = self.betas
        step_size = self.lr / (1 - beta1 ** self._steps)
        root_correction2 = math.sqrt(1 - beta2 ** self._steps)
        for (param, grad), m, v, tmp in zip(self._params, self._m, self._v, self._scratch):
            if self.weight_decay and self.decoupled:
                param *= 1 - self.lr * self.weight_decay
            g = grad + self.weight_decay * param if self.weight_decay and not self.decoupled else grad
            np.subtract(g, m, out=tmp)
            tmp *= 1 - beta1
            m += tmp
            v *= beta2
            np.multiply(g, g, out=tmp)
            tmp *= 1 - beta2
            v += tmp
            np.sqrt(v, out=tmp)
            tmp /= root_correction2
            tmp += self.eps
            np.divide(m, tmp, out=tmp)
            tmp *= step_size
            param -= tmp

    def state_dict(self):
        """The step count and both moments, as {"steps": 0-d array, "m.<index>": array, "v.<index>": array}."""
        state = {"steps": np.array(self._steps)}
        for index, (m, v) in enumerate(zip(self._m, self._v)):
            state[f"m.{index}"], state[f"v.{index}"] = m.copy(), v.copy()
        return state

    def load_state_dict(self, state):
        """Restore the step count and moments from ``state_dict()``."""
        shapes = {"steps": np.array(0)}
        for index, (param, _) in enumerate(self._params):
            shapes[f"m.{index}"] = shapes[f"v.{index}"] = param
        _check_state(self, state, shapes)
        self._steps = int(state["steps"])
        for index, (m, v) in enumerate(zip(self._m, self._v)):
            m[...], v[...] = state[f"m.{index}"], state[f"v.{index}"]


class AdamW(Adam):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW``: ``param *= 1 - lr * weight_decay``
    before the Adam step, which then sees the plain gradient."""

    decoupled = True

    def __init__(self, parameters, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(parameters, lr, betas, eps, weight_decay)


def _check_state(optimizer, state, expected, optional=False):
    """Refuse a state whose names, shapes or dtypes differ from ``expected`` {name: array like the state's}."""
    names = set(state)
    unknown, missing = sorted(names - set(expected)), sorted(set(expected) - names)
    if unknown or (missing and not optional):
        raise DigitsError(f"{type(optimizer).__name__} state does not fit these parameters "
                          f"(unknown: {unknown[:3]}, missing: {missing[:3]})")
    for name in sorted(names):
        found, wanted = np.asarray(state[name]), expected[name]
        if found.shape != wanted.shape or (name != "steps" and found.dtype != wanted.dtype):
            raise DigitsError(f"{type(optimizer).__name__} state {name} is {found.dtype}{found.shape}, "
                              f"expected {wanted.dtype}{wanted.shape}")
