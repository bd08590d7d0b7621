"""Optimizers and a learning-rate schedule with torch's update rules.

An optimizer takes ``model.parameters()``: (name, param, grad) triples whose
arrays it keeps; ``step()`` updates every param in place from its current grad.
"""

import math
import numbers

import numpy as np

from digits.errors import DigitsError


def _check_range(name, value, low, high=None):
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (is_number and value >= low and (high is None or value < high)):
        bound = f"in [{low}, {high})" if high is not None else f">= {low}"
        raise DigitsError(f"optimizer setting {name} must be {bound}, got {value!r}")


class SGD:
    """Stochastic gradient descent as ``torch.optim.SGD`` (no dampening, no Nesterov).

    With weight decay ``g = grad + weight_decay * param``; with momentum the buffer
    starts at ``g`` and then becomes ``momentum * buf + g``; ``param -= lr * buf``.
    """

    def __init__(self, parameters, lr, momentum=0.0, weight_decay=0.0):
        _check_range("lr", lr, 0.0)
        _check_range("momentum", momentum, 0.0)
        _check_range("weight_decay", weight_decay, 0.0)
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
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
                g = buf
            param -= self.lr * g


class Adam:
    """Adam with bias correction as ``torch.optim.Adam`` (L2 weight decay added to the gradient)."""

    def __init__(self, parameters, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        _check_range("lr", lr, 0.0)
        _check_range("betas[0]", betas[0], 0.0, 1.0)
        _check_range("betas[1]", betas[1], 0.0, 1.0)
        _check_range("eps", eps, 0.0)
        _check_range("weight_decay", weight_decay, 0.0)
        self.lr = lr
        self.betas = tuple(betas)
        self.eps = eps
        self.weight_decay = weight_decay
        self._params = [(param, grad) for _, param, grad in parameters]
        self._m = [np.zeros_like(param) for param, _ in self._params]
        self._v = [np.zeros_like(param) for param, _ in self._params]
        self._steps = 0

    def step(self):
        self._steps += 1
        beta1, beta2 = self.betas
        step_size = self.lr / (1 - beta1 ** self._steps)
        root_correction2 = math.sqrt(1 - beta2 ** self._steps)
        for (param, grad), m, v in zip(self._params, self._m, self._v):
            g = grad + self.weight_decay * param if self.weight_decay else grad
            m += (1 - beta1) * (g - m)
            v *= beta2
            v += (1 - beta2) * g * g
            param -= step_size * m / (np.sqrt(v) / root_correction2 + self.eps)


class StepLR:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs, as ``torch.optim.lr_scheduler.StepLR``.

    Call ``step()`` once per epoch; afterwards ``optimizer.lr == base_lr * gamma ** (epoch // step_size)``.
    """

    def __init__(self, optimizer, step_size, gamma):
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise DigitsError(f"scheduler step_size must be an integer >= 1, got {step_size!r}")
        _check_range("gamma", gamma, 0.0)
        self.optimizer = optimizer
        self.step_size = step_size
        self.gamma = gamma
        self.base_lr = optimizer.lr
        self.epoch = 0

    def step(self):
        self.epoch += 1
        self.optimizer.lr = self.base_lr * self.gamma ** (self.epoch // self.step_size)
