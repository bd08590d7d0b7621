"""The k-NN grid search: every combination of some `knn` settings, scored on the validation split."""

import itertools

from digits.errors import DigitsError
from digits.features import Transforms
from digits.knn.classifier import KNNClassifier, is_int


def label(row):
    """A grid row's settings as one string, e.g. "n_neighbors=5 weights=distance"."""
    return " ".join(f"{key}={value}" for key, value in row.items() if key != "val_accuracy") or "params"


GRID_KEYS = ("metric", "pca.n_components", "n_neighbors", "weights")


def grid_search(train, val, settings, grid):
    """Validation accuracy of every combination of the values in `grid`, each replacing its `knn` setting.

    train, val: (uint8 images (N, 28, 28), labels (N,)). grid: {key: [values]} with keys from
    GRID_KEYS (empty: only `settings` itself). One transform fit serves every PCA size (the first n
    components of the largest fit are the fit with n) and one search with the largest k serves every
    k and weights. Returns the rows [{key: value, ..., "val_accuracy": a}] in the order of
    itertools.product over the grid, the best row (ties: the first) and `settings` updated with it.
    """
    check_grid(settings, grid)
    choices = {key: grid.get(key, [_setting(settings, key)]) for key in GRID_KEYS}
    sizes = choices["pca.n_components"]
    transforms = Transforms(_with(settings, "pca.n_components", max(sizes))["transforms"])
    train_x, val_x = transforms.fit_transform(train[0]), transforms.transform(val[0])
    accuracy = {}
    for metric, size in itertools.product(choices["metric"], sizes):
        cols = slice(None) if size is None else slice(size)
        clf = KNNClassifier(max(choices["n_neighbors"]), metric=metric, batch_size=settings["batch_size"])
        distances, indices = clf.fit(train_x[:, cols], train[1]).kneighbors(val_x[:, cols])
        for k, weights in itertools.product(choices["n_neighbors"], choices["weights"]):
            predicted = clf.classes_[clf.proba_from_neighbors(distances[:, :k], indices[:, :k], weights).argmax(axis=1)]
            accuracy[metric, size, k, weights] = float((predicted == val[1]).mean())
    rows = []
    for combination in itertools.product(*(grid[key] for key in grid)):
        chosen = dict(zip(grid, combination))
        key = tuple(chosen.get(name, _setting(settings, name)) for name in GRID_KEYS)
        rows.append({**chosen, "val_accuracy": round(accuracy[key], 6)})
    best = rows[max(range(len(rows)), key=lambda i: (rows[i]["val_accuracy"], -i))]
    chosen = settings
    for key in grid:
        chosen = _with(chosen, key, best[key])
    return rows, best, chosen


def check_grid(settings, grid):
    """Raise a one-line DigitsError unless `grid` has known keys, each with a non-empty list of valid values."""
    unknown = [key for key in grid if key not in GRID_KEYS]
    if unknown:
        raise DigitsError(f"knn.grid: unknown key {unknown[0]!r}, expected keys among {', '.join(GRID_KEYS)}")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise DigitsError(f"knn.grid.{key}: expected a non-empty list of values, got {values!r}")
        if key in ("n_neighbors", "pca.n_components"):
            bad = [value for value in values if not (is_int(value) and value >= 1)]
            if bad:
                raise DigitsError(f"knn.grid.{key}: expected integers >= 1, got {bad[0]!r}")
    if "pca.n_components" in grid and _setting(settings, "pca.n_components") is None:
        raise DigitsError("knn.grid: pca.n_components is searched, but knn.transforms has no pca step")


def overridden(settings, grid):
    """{key: value} of the settings under `knn` that `grid` searches instead of using them."""
    return {key: _setting(settings, key) for key in grid}


def _setting(settings, key):
    """A grid key's value in `settings`; "pca.n_components" is None when there is no pca step."""
    if key != "pca.n_components":
        return settings[key]
    steps = [item["pca"] for item in settings["transforms"] if isinstance(item, dict) and "pca" in item]
    return steps[0].get("n_components") if steps else None


def _with(settings, key, value):
    """A copy of `settings` with grid key `key` set to `value`."""
    if key != "pca.n_components":
        return {**settings, key: value}
    if value is None:
        return settings
    spec = [{"pca": {**item["pca"], "n_components": value}} if isinstance(item, dict) and "pca" in item else item
            for item in settings["transforms"]]
    return {**settings, "transforms": spec}
