"""Scores and confusion data for one model's class probabilities."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support


def scores(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Accuracy and macro precision / recall / F1 of `proba.argmax(1)`; y_true (N,), proba (N, 10)."""
    y_pred = proba.argmax(axis=1)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=np.arange(proba.shape[1]), average="macro", zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 6),
        "precision_macro": round(float(precision), 6),
        "recall_macro": round(float(recall), 6),
        "f1_macro": round(float(f1), 6),
    }


def confusion_records(y_true: np.ndarray, y_pred: np.ndarray) -> list[dict[str, int]]:
    """One `{"actual", "predicted"}` record per image: the data DVC's `confusion` plot template reads."""
    return [{"actual": int(a), "predicted": int(p)} for a, p in zip(y_true, y_pred)]
