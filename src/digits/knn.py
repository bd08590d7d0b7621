"""Brute-force k-nearest-neighbour classifier in numpy with a scikit-learn style interface."""

import numpy as np

from digits.errors import DigitsError

WEIGHTS = ("uniform", "distance")


class KNNClassifier:
    """k-NN on Euclidean distance; squared distances come from a float32 GEMM, `batch_size` query rows at a time."""

    def __init__(self, n_neighbors=5, weights="uniform", batch_size=1024):
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.batch_size = batch_size

    def fit(self, X, y):
        """Store training rows X (N, D) and labels y (N,); returns self."""
        X = _as_matrix(X, "X")
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise DigitsError(f"Expected y of shape ({len(X)},) to match X, but got shape {y.shape}")
        if self.weights not in WEIGHTS:
            raise DigitsError(f"Expected weights in {WEIGHTS}, but got {self.weights!r}")
        if not _is_int(self.batch_size) or self.batch_size < 1:
            raise DigitsError(f"Expected an integer batch_size >= 1, but got {self.batch_size!r}")
        _check_k(self.n_neighbors, len(X))
        self.classes_, self.y_codes_ = np.unique(y, return_inverse=True)
        self.X_fit_ = X
        self.sq_norms_ = np.einsum("ij,ij->i", X, X)
        return self

    def kneighbors(self, X, n_neighbors=None, return_distance=True):
        """Distances (M, k) float32 and training indices (M, k) of each query row's k nearest neighbours.

        Neighbours are the k smallest under the order (distance, training index): nearest first, and equal
        distances, including ties for the last place, go to the lower training index. Returns only the
        indices when return_distance is False.
        """
        X = self._check_query(X)
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        _check_k(k, len(self.X_fit_))
        distances = np.empty((len(X), k), np.float32)
        indices = np.empty((len(X), k), np.intp)
        for start in range(0, len(X), self.batch_size):
            rows = slice(start, start + self.batch_size)
            distances[rows], indices[rows] = _smallest(self._sq_distances(X[rows]), k)
        np.sqrt(distances, out=distances)
        return (distances, indices) if return_distance else indices

    def predict_proba(self, X):
        """Class probabilities (M, n_classes) in the order of classes_, from uniform or 1/distance votes.

        With distance weights, a query at distance 0 from some training rows takes its votes from those rows only.
        """
        distances, indices = self.kneighbors(X)
        if self.weights == "uniform":
            votes = np.ones(distances.shape)
        else:
            exact = distances == 0
            with np.errstate(divide="ignore"):
                votes = 1.0 / distances.astype(np.float64)
            has_exact = exact.any(axis=1)
            votes[has_exact] = exact[has_exact]
        proba = np.zeros((len(distances), len(self.classes_)))
        rows = np.arange(len(distances))
        codes = self.y_codes_[indices]
        for j in range(codes.shape[1]):
            proba[rows, codes[:, j]] += votes[:, j]
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Labels (M,) of the most probable class; ties go to the class that sorts first."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def _check_query(self, X):
        """Query rows as float32 (M, D), checked against the fitted width."""
        if not hasattr(self, "X_fit_"):
            raise DigitsError("This KNNClassifier is not fitted yet; call fit(X, y) first")
        X = _as_matrix(X, "X")
        if X.shape[1] != self.X_fit_.shape[1]:
            raise DigitsError(f"Expected X with {self.X_fit_.shape[1]} features as in fit, but got {X.shape[1]}")
        return X

    def _sq_distances(self, X):
        """Squared distances (m, N) from query rows X (m, D) to every training row, clipped at 0."""
        sq = X @ self.X_fit_.T
        sq *= -2
        sq += np.einsum("ij,ij->i", X, X)[:, None]
        sq += self.sq_norms_
        return np.maximum(sq, 0, out=sq)


def _smallest(values, k):
    """Values (m, k) and columns (m, k) of each row's k smallest entries, ordered by (value, column)."""
    cols = np.argpartition(values, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(values, cols, axis=1).max(axis=1)
    # argpartition picks arbitrarily among entries tied for the k-th place; redo those rows by column order.
    for i in np.flatnonzero(np.count_nonzero(values <= kth[:, None], axis=1) > k):
        candidates = np.flatnonzero(values[i] <= kth[i])
        cols[i] = candidates[np.argsort(values[i, candidates], kind="stable")[:k]]
    picked = np.take_along_axis(values, cols, axis=1)
    order = np.lexsort((cols, picked), axis=1)
    return np.take_along_axis(picked, order, axis=1), np.take_along_axis(cols, order, axis=1)


def _as_matrix(X, name):
    """X as a C-contiguous float32 array (M, D)."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise DigitsError(f"Expected {name} as a 2-D array (samples, features), but got shape {X.shape}")
    return X


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_k(k, n_samples):
    if not _is_int(k) or not 1 <= k <= n_samples:
        raise DigitsError(
            f"Expected an integer 1 <= n_neighbors <= n_samples, but n_samples = {n_samples}, n_neighbors = {k!r}"
        )
