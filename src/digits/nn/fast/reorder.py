"""A ReLU followed by a MaxPool2d runs as the pooling, then the ReLU.

The maximum of rectified values is the rectified maximum, and the gradient reaches the same
input, so outputs and gradients are unchanged while the ReLU touches a quarter of the values
(for 2x2 pooling).
"""

from digits.nn.activations import ReLU
from digits.nn.pooling import MaxPool2d


def forward_order(layers):
    """The indices of ``layers`` in the order a forward pass runs them (backward: the reverse)."""
    order = list(range(len(layers)))
    for i in range(len(layers) - 1):
        if type(layers[i]) is ReLU and type(layers[i + 1]) is MaxPool2d:
            order[i], order[i + 1] = i + 1, i
    return order
