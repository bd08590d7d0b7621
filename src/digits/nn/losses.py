"""Softmax and the softmax cross-entropy loss (optionally label-smoothed) with its gradient."""

import numpy as np


def softmax(logits):
    """Row-wise softmax of (N, K) logits, shifted by the row maximum for stability; (N, K)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def softmax_cross_entropy(logits, y, label_smoothing=0.0):
    """Mean cross-entropy of (N, K) ``logits`` against (N,) integer labels, as ``torch.nn.functional.cross_entropy``.

    With ``label_smoothing`` = e the target is ``(1 - e) * one_hot + e / K``.  Returns
    the loss as a float and its gradient w.r.t. ``logits``, (N, K) in the logits' dtype.
    """
    n, k = logits.shape
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be {n} integers, got an array of shape {y.shape} and dtype {y.dtype}")
    if n and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"labels must lie in [0, {k}), found {y.min()}..{y.max()}")
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"label_smoothing must lie in [0, 1], got {label_smoothing!r}")
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    log_probs = shifted - np.log(total)
    rows = np.arange(n)
    nll = -log_probs[rows, y]
    if label_smoothing:
        nll = (1 - label_smoothing) * nll - label_smoothing * log_probs.mean(axis=1)
    loss = float(np.mean(nll, dtype=np.float64))
    dlogits = exp / total
    if label_smoothing:
        dlogits -= logits.dtype.type(label_smoothing / k)
    dlogits[rows, y] -= logits.dtype.type(1 - label_smoothing)
    dlogits /= n
    return loss, dlogits
