"""Figures as PNG files, readable without DVC."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from digits.io import atomic_path  # noqa: E402


def _save(fig: plt.Figure, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def confusion_figure(y_true: np.ndarray, y_pred: np.ndarray, title: str, path: str | Path) -> None:
    """Confusion matrix (rows: true digit, columns: predicted) with counts in the cells."""
    from sklearn.metrics import ConfusionMatrixDisplay  # here: a second to import, which the training stages skip

    fig, ax = plt.subplots(figsize=(6, 5.5))
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, labels=np.arange(10), ax=ax, colorbar=False, cmap="Blues")
    ax.set_title(title)
    _save(fig, path)


def curves_figure(history: list[dict[str, float]], title: str, path: str | Path) -> None:
    """Per-epoch curves: losses (left), accuracies (middle), learning rate (right, when logged).

    `history` holds one dict per epoch, e.g. {"train_loss", "train_accuracy", "val_accuracy", "lr"};
    each key ending in "loss" or "accuracy" becomes a line.
    """
    epochs = np.arange(1, len(history) + 1)
    keys = list(history[0]) if history else []
    panels = [("loss", "cross-entropy", [k for k in keys if k.endswith("loss")]),
              ("accuracy", "accuracy", [k for k in keys if k.endswith("accuracy")]),
              ("learning rate", "learning rate", [k for k in keys if k == "lr"])]
    panels = [p for p in panels if p[2]]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.8), squeeze=False)
    for ax, (name, ylabel, lines) in zip(axes[0], panels):
        for key in lines:
            ax.plot(epochs, [h[key] for h in history], marker="o", label=key.replace("_", " "))
        ax.set(xlabel="epoch", ylabel=ylabel, title=f"{title}: {name}")
        ax.grid(alpha=0.3)
        ax.set_xlim(0.5, len(history) + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    fig.tight_layout()
    _save(fig, path)


def _mosaic(images: np.ndarray, titles: list[str], heading: str, cmap: str, colour: str, cols: int) -> plt.Figure:
    """One figure showing images uint8 (n, H, W), `cols` to a row, each framed under its (up to two-line) title.

    The images are tiled into a single picture (one imshow), which is many times faster
    than one axes per image and looks the same.
    """
    n, h, w = images.shape
    cols = max(1, min(cols, n))
    rows = max(1, -(-n // cols))
    cell_h, cell_w, header = h + 14, w + 6, 12  # pixels: room for the title above each image, gaps between
    canvas = np.full((rows * cell_h, cols * cell_w), np.nan)  # NaN: the gaps, drawn white
    inch = 1.25 / cell_w  # inches per pixel: 1.25 in per cell across
    fig = plt.figure(figsize=(cols * cell_w * inch, rows * cell_h * inch))
    ax = fig.add_axes((0, 0, 1, 1))
    for k, (image, title) in enumerate(zip(images, titles)):
        top, left = (k // cols) * cell_h + header, (k % cols) * cell_w + 3
        canvas[top:top + h, left:left + w] = image
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), w, h, fill=False, edgecolor="0.6", linewidth=0.8))
        ax.text(left + w / 2, top - 1.5, title, ha="center", va="bottom", fontsize=9, color=colour)
    ax.imshow(canvas, cmap=plt.get_cmap(cmap).with_extremes(bad="white"), vmin=0, vmax=255, interpolation="nearest")
    ax.axis("off")
    fig.suptitle(heading, y=1.0, va="bottom", fontsize=10)
    return fig


def sample_grid(x: np.ndarray, y: np.ndarray, path: str | Path, n: int = 32, cols: int = 8) -> None:
    """The first `n` images x uint8 (N, 28, 28) with their labels y (N,), as the models see them."""
    n = min(n, len(x))
    fig = _mosaic(x[:n], [str(label) for label in y[:n]], f"The first {n} training images and their labels",
                  "gray", "black", cols)
    _save(fig, path)


def errors_gallery(x: np.ndarray, y: np.ndarray, proba: np.ndarray, title: str, path: str | Path,
                   limit: int = 40, cols: int = 10) -> None:
    """The images a model got wrong, most confident first: x uint8 (N, 28, 28), labels y (N,), proba (N, 10).

    Each is titled "true → predicted" with the predicted class probability; at most `limit` are shown.
    """
    y_pred = proba.argmax(axis=1)
    wrong = np.flatnonzero(y_pred != y)
    confidence = proba[wrong, y_pred[wrong]]
    shown = wrong[np.argsort(-confidence, kind="stable")][:limit]
    what = f"the {len(shown)} most confident" if len(shown) < len(wrong) else "all"
    fig = _mosaic(x[shown], [f"{y[i]} → {y_pred[i]}\n{proba[i, y_pred[i]]:.2f}" for i in shown],
                  f"{title}: {len(wrong)} of {len(y)} validation images wrong ({what} shown)\n"
                  "true → predicted, probability of the prediction", "gray_r", "firebrick", cols)
    _save(fig, path)


def f1_bars(f1: dict[str, np.ndarray], path: str | Path) -> None:
    """Grouped bars of per-digit F1 (validation split), one colour per model: f1 {model: (10,)}."""
    models = list(f1)
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(11, 4))
    for i, model in enumerate(models):
        ax.bar(np.arange(10) + (i - (len(models) - 1) / 2) * width, f1[model], width, label=model)
    low = min(float(np.min(v)) for v in f1.values())
    ax.set_ylim(max(0.0, np.floor((low - (1 - low) / 2) * 100) / 100), 1.0)  # zoom in: the differences are small
    ax.set_xticks(np.arange(10))
    ax.set(xlabel="digit", ylabel="F1 (validation split)", title="F1 per digit and model")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _save(fig, path)
