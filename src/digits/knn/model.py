"""The k-NN ensemble member (digits.member): image transforms, then a KNNClassifier; its grid search and file."""

import numpy as np

from digits.artifacts import check_arrays, regenerate
from digits.errors import DigitsError
from digits.features import Transforms
from digits.io import header_array, load_archive, save_archive
from digits.knn.classifier import KNNClassifier
from digits.knn.grid import grid_search, label, overridden
from digits.member import Fitted
from digits.metrics import accuracy
from digits.params import KNN

_HEADER_KEY = "__knn__"
_SETTINGS = ("n_neighbors", "weights", "metric", "batch_size")


class KNNModel:
    """Image transforms followed by a fitted KNNClassifier: uint8 images (N, 28, 28) in, digit probabilities out
    (the protocol of digits.member)."""

    def __init__(self, transforms=None, classifier=None):
        self.transforms = transforms
        self.classifier = classifier

    def fit(self, settings: KNN, train, val, *, checkpoint=None, log=None) -> Fitted:
        """Search `settings.grid` on the validation split (see `grid_search`), then fit the best settings on
        `train`; the grid's rows stay in `grid_` (no checkpoint, no epochs: `checkpoint` and `log` are unused).
        Without a validation split (`val` None, split.refit) the settings are used as set (params.yaml
        refuses a grid then) and `grid_` is empty."""
        fixed, grid = settings.model_dump(exclude={"grid"}), settings.grid or {}
        if val is None:
            self.grid_ = []
            self.fit_with(*train, fixed)
            used = " ".join(f"{key}={fixed[key]}" for key in ("n_neighbors", "weights", "metric"))
            return Fitted({key: fixed[key] for key in ("n_neighbors", "weights", "metric")}, None,
                          f"used {used} as set under knn, on all {len(train[1]):,} labelled rows (split.refit)")
        if grid:
            print(f"train_knn: knn.grid searches {', '.join(grid)} on the validation split, so the values set under "
                  f"knn for them ({', '.join(f'{k}={v}' for k, v in overridden(fixed, grid).items())}) are not used; "
                  "to use them, turn the search off (-S knn.grid=null) or drop a key from it "
                  f"(-S '~knn.grid.{next(iter(grid))}')")
        self.grid_, best, chosen = grid_search(train, val, fixed, grid)
        val_proba = self.fit_with(*train, chosen).predict_proba(val[0])
        val_accuracy = round(accuracy(val[1], val_proba), 6)
        used = (f"{label(best)}, the best of {len(self.grid_)} settings on the validation split" if grid else
                " ".join(f"{key}={chosen[key]}" for key in ("n_neighbors", "weights", "metric"))
                + " as set under knn (knn.grid is null or empty: no search)")
        return Fitted({**best, "val_accuracy": val_accuracy}, val_proba,
                      f"used {used}; validation accuracy {val_accuracy:.4f}")

    def fit_with(self, images, labels, settings):
        """Fit on uint8 images (N, 28, 28) and labels (N,) with the `knn` settings (transforms, n_neighbors,
        weights, metric, batch_size), a mapping; returns self."""
        self.transforms = Transforms(settings["transforms"])
        classifier = KNNClassifier(*(settings[key] for key in _SETTINGS))
        self.classifier = classifier.fit(self.transforms.fit_transform(images), labels)
        return self

    def predict_proba(self, images):
        """Probabilities float64 (N, 10) over digits 0-9, zero for a digit absent from the training labels."""
        proba = np.zeros((len(images), 10))
        proba[:, self.classifier.classes_] = self.classifier.predict_proba(self.transforms.transform(images))
        return proba

    def save(self, path):
        """One `.npz` of plain arrays, written atomically: a JSON header (the transforms' spec, the classifier's
        settings), the transforms' fitted arrays, the training features and labels."""
        clf = self.classifier
        header = {"transforms": self.transforms.spec, **{key: getattr(clf, key) for key in _SETTINGS}}
        arrays = {f"transform.{key}": value for key, value in self.transforms.arrays().items()}
        arrays.update({_HEADER_KEY: header_array(header), "features": clf.X_fit_, "labels": clf.classes_[clf.y_codes_]})
        save_archive(path, arrays)

    @classmethod
    def load(cls, path):
        """The KNNModel that `save` wrote to `path`, ready to `predict_proba` uint8 images."""
        header, arrays = load_archive(path, "a k-NN model (a .npz of plain arrays written by train_knn)", _HEADER_KEY)
        try:
            settings = {key: header[key] for key in ("transforms", *_SETTINGS)}
            features, labels = arrays.pop("features"), arrays.pop("labels")
        except KeyError as err:
            raise DigitsError(f"{path}: not a k-NN model file (missing or bad {err}); {regenerate(path)}") from None
        check_arrays(path, {"features": features, "labels": labels, **arrays})
        if features.ndim != 2 or labels.shape != features.shape[:1] or labels.dtype.kind not in "iu":
            raise DigitsError(f"{path}: 'features' {features.dtype}{features.shape} and 'labels' {labels.dtype}"
                              f"{labels.shape}, expected (N, D) features and N integer labels; {regenerate(path)}")
        fitted = {key.removeprefix("transform."): value for key, value in arrays.items()}
        try:
            transforms = Transforms.from_arrays(settings["transforms"], fitted)
            classifier = KNNClassifier(*(settings[key] for key in _SETTINGS)).fit(features, labels)
        except DigitsError as err:
            raise DigitsError(f"{path}: {err}; {regenerate(path)}") from None
        return cls(transforms, classifier)
