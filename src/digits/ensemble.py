"""The ensemble: a weighted mean of its members' class probabilities, with weights given or fitted.

`models/ensemble.json` records the members and weights evaluate used, so `digits predict
--model ensemble` combines the same models the same way.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from digits.errors import DigitsError
from digits.io import write_json
from digits.params import check_weights


def fit_weights(probas: list[np.ndarray], y: np.ndarray, steps: int = 20) -> np.ndarray:
    """Weights (M,) >= 0 summing to 1 for the members' probabilities `probas` ((N, K) each), fitted to labels y (N,).

    Every weighting on a grid of 1/`steps` is tried: the one whose weighted mean is most
    accurate wins, and among equally accurate ones the lowest log-loss. Accuracy first,
    because log-loss alone favours a confident member over a more accurate, more cautious
    one (a 1-NN's 0/1 votes over a CNN's softer probabilities).
    """
    stacked = np.stack(probas).astype(np.float64)  # (M, N, K)
    rows = np.arange(len(y))
    best, best_key = None, None
    for counts in itertools.product(range(steps + 1), repeat=len(probas)):
        if sum(counts) != steps:
            continue
        w = np.array(counts) / steps
        mixed = np.tensordot(w, stacked, axes=1)
        key = (-np.mean(mixed.argmax(axis=1) == y), -np.mean(np.log(np.maximum(mixed[rows, y], 1e-15))))
        if best_key is None or key < best_key:
            best, best_key = w, key
    return best


def combine(probas: list[np.ndarray], weights) -> np.ndarray:
    """float32 (N, K): the mean of `probas` ((N, K) each) weighted by `weights` (M,), rows summing to 1."""
    w = np.asarray(weights, dtype=np.float64)
    mixed = np.tensordot(w / w.sum(), np.stack(probas).astype(np.float64), axes=1)
    return mixed.astype(np.float32)


def leave_one_out(probas: dict[str, np.ndarray], y: np.ndarray,
                  weights: list[float] | None = None) -> dict[str, np.ndarray]:
    """For each member of `probas` (name -> (N, K)), which of the N rows (bool) the ensemble without it gets right.

    With `weights` (one per member, in order) the others keep theirs; without, weights are fitted
    again on the rest as `fit_weights` does, so each row set is what the ensemble would get right had
    that member never been trained. A member earns its place when the ensemble scores more with it.
    """
    names = list(probas)
    without = {}
    for i, name in enumerate(names):
        rest = [m for m in names if m != name]
        if not rest:
            continue
        if weights is None:
            rest_weights = fit_weights([probas[m] for m in rest], y)
        else:
            rest_weights = [w for j, w in enumerate(weights) if j != i]
            if sum(rest_weights) == 0:
                rest_weights = [1.0] * len(rest)  # the member carried all the weight: the others, equally
        without[name] = combine([probas[m] for m in rest], rest_weights).argmax(axis=1) == y
    return without


def gain_interval(right_with: np.ndarray, right_without: np.ndarray, draws: int = 2000,
                  seed: int = 0) -> tuple[float, float]:
    """95 % paired bootstrap interval (low, high) of the accuracy gain mean(right_with) - mean(right_without),
    from two (N,) bool arrays over the same rows: the rows are drawn again with replacement `draws` times.

    An interval that holds 0 says the rows cannot tell whether the gain is real.
    """
    changed = right_with.astype(np.int8) - right_without.astype(np.int8)  # +1 fixed, -1 broken, 0 the same
    rng = np.random.default_rng(seed)
    gains = [changed[rng.integers(0, len(changed), len(changed))].mean() for _ in range(draws)]
    low, high = np.quantile(gains, [0.025, 0.975])
    return float(low), float(high)


def check_members(members, models: list[str] | None, where: str) -> None:
    """Raise unless `members` is a non-empty list of distinct names (from `models`, unless None)."""
    if not isinstance(members, list) or not members or len(set(members)) != len(members) \
            or not all(isinstance(m, str) for m in members) or (models is not None and not set(members) <= set(models)):
        names = "names" if models is None else f"names from {models}"
        raise DigitsError(f"{where}: members is {members!r}, expected a non-empty list of distinct {names}")


def save(path: str | Path, members: list[str], weights) -> None:
    """Write the members and their weights to `path` (JSON)."""
    write_json(path, {"members": list(members), "weights": [float(v) for v in weights]})


def load(path: str | Path, models: list[str] | None = None) -> tuple[list[str], list[float]]:
    """The (members, weights) written by `save`, checked against the known `models` (if given)."""
    try:
        spec = json.loads(Path(path).read_text(encoding="utf-8"))
        members, weights = spec["members"], spec["weights"]
    except FileNotFoundError:
        raise DigitsError(f"{path}: no such file; the evaluate stage writes it (dvc repro)") from None
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise DigitsError(f"{path}: not an ensemble file ({type(e).__name__}: {e}), "
                          'expected JSON {"members": [...], "weights": [...]}') from None
    check_members(members, models, str(path))
    check_weights(weights, len(members), str(path))
    return members, weights
