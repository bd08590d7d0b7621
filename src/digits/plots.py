"""Figures as PNG files, readable without DVC."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402

from digits.io import atomic_path  # noqa: E402


def _save(fig: plt.Figure, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def confusion_figure(y_true: np.ndarray, y_pred: np.ndarray, title: str, path: str | Path) -> None:
    """Confusion matrix (rows: true digit, columns: predicted) with counts in the cells."""
    fig, ax = plt.subplots(figsize=(6, 5.5))
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, labels=np.arange(10), ax=ax, colorbar=False, cmap="Blues")
    ax.set_title(title)
    _save(fig, path)


def curves_figure(history: list[dict[str, float]], title: str, path: str | Path) -> None:
    """Per-epoch training loss (left) and train / validation accuracy (right)."""
    epochs = np.arange(1, len(history) + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [h["train_loss"] for h in history], marker="o")
    left.set(xlabel="epoch", ylabel="cross-entropy", title=f"{title}: training loss")
    for key in ("train_accuracy", "val_accuracy"):
        right.plot(epochs, [h[key] for h in history], marker="o", label=key.replace("_", " "))
    right.set(xlabel="epoch", ylabel="accuracy", title=f"{title}: accuracy")
    right.legend()
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _save(fig, path)
