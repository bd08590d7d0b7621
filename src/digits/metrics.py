"""Scores and confusion data for one model's class probabilities (ten digits)."""
from __future__ import annotations

import numpy as np

DIGITS = np.arange(10)


def _round(value) -> float:
    return round(float(value), 6)


def accuracy(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Share of the rows of proba (N, 10) whose most probable digit is y_true (N,)."""
    return float(np.mean(proba.argmax(axis=1) == y_true))


def mean_nll(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-probability of the true digits y_true (N,) under proba (N, 10), each probability
    clipped at 1e-12: the validation loss a training run logs per epoch."""
    chosen = proba[np.arange(len(y_true)), y_true]
    return float(-np.log(np.maximum(chosen, 1e-12)).mean())


def scores(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Accuracy, macro precision / recall / F1 of `proba.argmax(1)` and the log-loss of `proba`.

    y_true (N,) digits, proba (N, 10) rows summing to 1. Precision of a digit never predicted counts as 0;
    a zero probability for the true digit costs -log(2.2e-16) = 36 (scikit-learn clips at float64's epsilon).
    """
    from sklearn.metrics import log_loss, precision_recall_fscore_support  # here: a second to import, and the
    # training stages need only accuracy()

    y_pred = proba.argmax(axis=1)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=DIGITS, average="macro", zero_division=0)
    exact = proba.astype(np.float64)
    exact /= exact.sum(axis=1, keepdims=True)  # float32 rows miss 1 by ~1e-7, which scikit-learn warns about
    return {
        "accuracy": _round(accuracy(y_true, proba)),
        "precision_macro": _round(precision),
        "recall_macro": _round(recall),
        "f1_macro": _round(f1),
        "log_loss": _round(log_loss(y_true, exact, labels=DIGITS)),
    }


def per_class(y_true: np.ndarray, proba: np.ndarray) -> dict[str, dict[str, float]]:
    """{"0": {"precision", "recall", "f1"}, ..., "9": {...}} of `proba.argmax(1)` against y_true (N,)."""
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, proba.argmax(axis=1), labels=DIGITS, average=None, zero_division=0)
    return {str(d): {"precision": _round(p), "recall": _round(r), "f1": _round(f)}
            for d, p, r, f in zip(DIGITS, precision, recall, f1)}


def confusion_records(y_true: np.ndarray, y_pred: np.ndarray) -> list[dict[str, int]]:
    """One `{"actual", "predicted"}` record per image: the data DVC's `confusion` plot template reads."""
    return [{"actual": int(a), "predicted": int(p)} for a, p in zip(y_true, y_pred)]
