"""Minibatch training for one epoch, and batched prediction."""

import numpy as np

from digits.errors import DigitsError
from digits.memory import keep_freed_memory
from digits.nn.fast.parallel import one_blas_thread
from digits.nn.losses import softmax, softmax_cross_entropy


def train_epoch(model, optimizer, x, y, batch_size, rng, *, schedule=None, augment=None, label_smoothing=0.0):
    """One pass over (N, C, H, W) float ``x`` and (N,) integer labels ``y`` in minibatches shuffled by ``rng``.

    Puts ``model`` in training mode.  Each batch goes through ``augment(batch, rng)``
    when given; ``schedule.step()`` follows every optimizer step.  Returns the mean
    loss over examples (batches weighted by size) and the accuracy of the
    training-mode predictions.
    """
    n = len(x)
    if n == 0 or len(y) != n:
        raise DigitsError(f"training needs as many labels as images (at least one), got {n} images and {len(y)} labels")
    keep_freed_memory()  # each step's arrays reuse the last step's pages (digits.memory)
    model.train()
    order = rng.permutation(n)
    total_loss = 0.0
    correct = 0
    with one_blas_thread():  # augmentation and optimizer too: digits.nn.fast.parallel says why
        for start in range(0, n, batch_size):
            batch = order[start:start + batch_size]
            images = x[batch] if augment is None else augment(x[batch], rng)
            logits = model.forward(images)
            loss, dlogits = softmax_cross_entropy(logits, y[batch], label_smoothing)
            model.backward(dlogits, input_grad=False)
            optimizer.step()
            if schedule is not None:
                schedule.step()
            total_loss += loss * len(batch)
            correct += int(np.count_nonzero(logits.argmax(axis=1) == y[batch]))
    return total_loss / n, correct / n


def predict_proba(model, x, batch_size=256):
    """Class probabilities (N, K) float32 for (N, C, H, W) ``x``, computed in eval mode.

    Batches of a few hundred keep each layer's arrays in the processor's cache; the
    model's previous mode is restored afterwards.
    """
    keep_freed_memory()
    was_training = model.training
    model.eval()
    try:
        with one_blas_thread():
            probs = [softmax(model.forward(x[start:start + batch_size])) for start in range(0, len(x), batch_size)]
    finally:
        if was_training:
            model.train()
    return np.concatenate(probs).astype(np.float32, copy=False)
