"""Brute-force k-nearest neighbours in numpy, as a scikit-learn estimator on feature rows.

The search is written here: distances by one float32 GEMM per batch of queries, candidates
found without sorting whole rows, refined in float64 (see `_Index`).
"""

from typing import get_args

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from digits.errors import DigitsError
from digits.params import KNN
from digits.progress import progress

_U = 2.0 ** -24  # unit roundoff of float32


class KNNClassifier(ClassifierMixin, BaseEstimator):
    """k-NN on Euclidean or cosine (1 - cos) distance, `batch_size` query rows at a time.

    Inputs are converted to float32. Memory: the training rows, their layout for the GEMM (at most
    one more copy; two for cosine) and batch_size x training rows x 4 bytes for the keys of a
    batch. See `_Index` for how the neighbours are found.
    """

    def __init__(self, n_neighbors=5, weights="uniform", metric="euclidean", batch_size=1024):
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.metric = metric
        self.batch_size = batch_size

    def fit(self, X, y):
        """Store training rows X (N, D) and labels y (N,); returns self."""
        X = _as_matrix(X, "X")
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise DigitsError(f"Expected y of shape ({len(X)},) to match X, but got shape {y.shape}")
        _check_choice(self.weights, "weights")
        _check_choice(self.metric, "metric")
        if not is_int(self.batch_size) or self.batch_size < 1:
            raise DigitsError(f"Expected an integer batch_size >= 1, but got {self.batch_size!r}")
        _check_k(self.n_neighbors, len(X))
        self.classes_, self.y_codes_ = np.unique(y, return_inverse=True)
        self.X_fit_ = X
        self.index_ = _Index(_scaled(X, self.metric), self.metric)
        return self

    def kneighbors(self, X, n_neighbors=None, return_distance=True):
        """Distances (M, k) float32 and training indices (M, k) of each query row's k nearest neighbours.

        Neighbours are the k smallest under the order (distance, training index): nearest first, and
        equal distances, including ties for the last place, go to the lower training index. Distances
        are exact up to float64 rounding of the float32 inputs, so the result does not depend on
        batch_size or on how the BLAS blocks its products. Cosine distance is 1 when either row is
        zero, as in scikit-learn. Returns only the indices when return_distance is False.
        """
        X = self._check_query(X)
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        _check_k(k, len(self.X_fit_))
        distances = np.empty((len(X), k), np.float32)
        indices = np.empty((len(X), k), np.intp)
        for start in progress(range(0, len(X), self.batch_size), "k-NN search", unit="batch"):
            rows = slice(start, start + self.batch_size)
            distances[rows], indices[rows] = self.index_.nearest(X[rows], k)
        return (distances, indices) if return_distance else indices

    def predict_proba(self, X):
        """Class probabilities (M, n_classes) in the order of classes_, from uniform or 1/distance votes.

        With distance weights, a query at distance 0 from some training rows takes its votes from those rows only.
        """
        return self.proba_from_neighbors(*self.kneighbors(X))

    def proba_from_neighbors(self, distances, indices, weights=None):
        """Class probabilities (M, n_classes) from neighbours (M, k) that `kneighbors` returned.

        `weights` overrides the estimator's, so that one search with the largest k serves a grid of k
        (pass the first k columns) and weights.
        """
        weights = self.weights if weights is None else weights
        _check_choice(weights, "weights")
        if weights == "uniform":
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
        """Query rows as float32 (M, D), checked against the fitted width and scaled like the training rows."""
        try:
            check_is_fitted(self)
        except NotFittedError as err:
            raise DigitsError(str(err)) from None
        X = _as_matrix(X, "X")
        if X.shape[1] != self.X_fit_.shape[1]:
            raise DigitsError(f"Expected X with {self.X_fit_.shape[1]} features as in fit, but got {X.shape[1]}")
        return _scaled(X, self.metric)


class _Index:
    """The training rows arranged for finding the k nearest of a batch of query rows.

    1. Keys: a float32 GEMM of [-2x, 1] against [y, |y|^2] (euclidean) or [y, 0] (cosine, on unit
       rows) gives |y|^2 - 2x.y, ordered like the distance to x. Columns that are zero in every
       training row add nothing to x.y and are left out. When some columns are non-zero in few
       training rows (the pixels near the border), those rows go first and get a GEMM over every used
       column, and the other rows a GEMM over the common columns only; `_split` picks the split that
       multiplies the fewest numbers.
    2. Candidates without sorting rows: training row j belongs to group j mod G, G about GROUPS (N when
       smaller; every row its own group when k > G), so that the minimum over each group is one pass
       over the keys in long contiguous runs. The k smallest group minima are keys of k distinct rows,
       so the k-th smallest key is at most the k-th smallest group minimum t. A float32 key is within
       `err` of its exact value (err bounds the rounding of a dot product of the used columns), so
       each of the true k nearest has a key <= t + 2 err; only the groups whose minimum passes that
       limit are read, and only their keys that pass it become candidates.
    3. Refinement: the candidates' distances are recomputed in float64 from the float32 rows, pair by
       pair, and the k smallest by (distance, training index) are kept.
    """

    GROUPS = 2048
    REFINE_PAIRS = 4096  # candidate pairs refined at once (4096 x D x 8 bytes)

    def __init__(self, X, metric):
        n = len(X)
        self.X, self.metric = X, metric
        counts = np.count_nonzero(X, axis=0)
        self.used, self.common, first = _split(X, counts)
        self.order = np.concatenate([first, np.setdiff1d(np.arange(n), first)])  # position -> training index
        self.n_first = len(first)
        sq_norms = np.einsum("ij,ij->i", X, X, dtype=np.float64)
        offsets = sq_norms if metric == "euclidean" else np.zeros(n)
        self.groups = -(-n // -(-n // self.GROUPS))  # at most GROUPS, with fewer than n / GROUPS padding rows
        # Rows [y, offset]: the first rows over the used columns, the rest over the common ones, then
        # padding rows (to a whole number of groups) with an infinite key, never candidates.
        self.first_rows = np.column_stack([X[first][:, self.used], offsets[first]]).astype(np.float32)
        rest = self.order[self.n_first:]
        self.rest_rows = np.zeros((-(-n // self.groups) * self.groups - self.n_first, len(self.common) + 1),
                                  np.float32)
        self.rest_rows[:len(rest), :-1] = X[rest][:, self.common]
        self.rest_rows[:len(rest), -1] = offsets[rest]
        self.rest_rows[len(rest):, -1] = np.inf
        max_norm, max_offset = np.sqrt(sq_norms.max(initial=0.0)), offsets.max(initial=0.0)
        terms = len(self.used) + 3
        gamma = terms * _U / (1 - terms * _U)
        # err(x) = err_scale |x| + err_base bounds |computed key - exact key| for query row x.
        self.err_scale = gamma * 2 * max_norm
        self.err_base = gamma * max_offset + _U * max_offset

    def nearest(self, X, k):
        """Distances (m, k) float32 and indices (m, k) of the k nearest training rows of query rows X (m, D)."""
        m = len(X)
        keys = np.empty((m, self.n_first + len(self.rest_rows)), np.float32)
        for columns, rows, out in ((self.used, self.first_rows, keys[:, :self.n_first]),
                                   (self.common, self.rest_rows, keys[:, self.n_first:])):
            query = np.empty((m, len(columns) + 1), np.float32)
            np.multiply(X[:, columns], -2, out=query[:, :-1])
            query[:, -1] = 1
            np.matmul(query, rows.T, out=out)
        groups = self.groups if k <= self.groups else keys.shape[1]
        group_min = keys.reshape(m, -1, groups).min(axis=1)
        kth = np.partition(group_min, k - 1, axis=1)[:, k - 1].astype(np.float64)
        limit = kth + 2 * (self.err_scale * np.sqrt(np.einsum("ij,ij->i", X, X, dtype=np.float64)) + self.err_base)
        rows, hit_groups = np.nonzero(group_min <= limit[:, None])
        positions = hit_groups[:, None] + groups * np.arange(keys.shape[1] // groups)
        pair, slot = np.nonzero(keys[rows[:, None], positions] <= limit[rows, None])
        cand_rows, cand_cols = rows[pair], self.order[positions[pair, slot]]
        dist = np.empty(len(cand_rows))
        for start in range(0, len(cand_rows), self.REFINE_PAIRS):
            part = slice(start, start + self.REFINE_PAIRS)
            x, y = X[cand_rows[part]].astype(np.float64), self.X[cand_cols[part]]
            if self.metric == "euclidean":
                x -= y
                dist[part] = np.sqrt(np.einsum("ij,ij->i", x, x))
            else:
                dist[part] = np.clip(1 - np.einsum("ij,ij->i", x, y.astype(np.float64)), 0, 2)
        order = np.lexsort((cand_cols, dist, cand_rows))
        first = np.concatenate(([0], np.cumsum(np.bincount(cand_rows, minlength=m))[:-1]))
        take = order[first[:, None] + np.arange(k)]
        return dist[take].astype(np.float32), cand_cols[take]


def _split(X, counts, block=4096):
    """Used columns, common columns and first rows of the split of training rows X (N, D) that
    multiplies the fewest numbers per query: first rows x used columns + other rows x common columns.

    counts (D,) are the non-zero counts of X's columns. A column is common when its count exceeds a
    threshold t, and a row goes first when it is non-zero in a column that is not common; t runs over
    0 (no split) and the counts themselves.
    """
    used = counts > 0
    # Per row, the smallest count among its non-zero columns (inf for a zero row).
    rarest = np.concatenate([np.where(X[i:i + block] != 0, counts, np.inf).min(axis=1, initial=np.inf)
                             for i in range(0, len(X), block)])
    thresholds = np.concatenate([[0], np.unique(counts[used])])
    n_first = np.searchsorted(np.sort(rarest), thresholds, side="right")
    n_common = np.count_nonzero(used) - np.searchsorted(np.sort(counts[used]), thresholds, side="right")
    t = thresholds[np.argmin(n_first * (np.count_nonzero(used) + 1) + (len(X) - n_first) * (n_common + 1))]
    return np.flatnonzero(used), np.flatnonzero(counts > t), np.flatnonzero(rarest <= t)


def _as_matrix(X, name):
    """X as a C-contiguous float32 array (M, D) of finite values."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise DigitsError(f"Expected {name} as a 2-D array (samples, features), but got shape {X.shape}")
    if not np.isfinite(X).all():
        row, col = np.argwhere(~np.isfinite(X))[0]
        raise DigitsError(f"Expected finite values in {name}, but got {X[row, col]} at row {row}, column {col}")
    return X


def _scaled(X, metric):
    """Rows scaled to unit length for the cosine metric (zero rows stay zero); X itself for euclidean."""
    if metric == "euclidean":
        return X
    norms = np.sqrt(np.einsum("ij,ij->i", X, X, dtype=np.float64))
    return (X / np.where(norms == 0, 1.0, norms)[:, None]).astype(np.float32)


def _check_choice(value, name):
    """Refuse a `weights` or `metric` outside the values params.yaml's schema allows."""
    allowed = get_args(KNN.model_fields[name].annotation)
    if value not in allowed:
        raise DigitsError(f"Expected {name} in {allowed}, but got {value!r}")


def is_int(value):
    """Whether `value` is an integer (numpy's too), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_k(k, n_samples):
    if not is_int(k) or not 1 <= k <= n_samples:
        raise DigitsError(
            f"Expected an integer 1 <= n_neighbors <= n_samples, but n_samples = {n_samples}, n_neighbors = {k!r}"
        )
