"""Softmax and the softmax cross-entropy loss with its gradient."""

import numpy as np


def softmax(logits):
    """Row-wise softmax of (N, K) logits, shifted by the row maximum for stability; (N, K)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def softmax_cross_entropy(logits, y):
    """Mean cross-entropy of (N, K) ``logits`` against (N,) integer labels, as ``torch.nn.functional.cross_entropy``.

    Returns the loss as a float and its gradient w.r.t. ``logits``, (N, K) in the logits' dtype.
    """
    n, k = logits.shape
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be {n} integers, got an array of shape {y.shape} and dtype {y.dtype}")
    if n and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"labels must lie in [0, {k}), found {y.min()}..{y.max()}")
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = float(np.mean(np.log(total[:, 0]) - shifted[rows, y]))
    dlogits = exp / total
    dlogits[rows, y] -= 1
    dlogits /= n
    return loss, dlogits
