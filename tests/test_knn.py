import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from digits.errors import DigitsError
from digits.knn import KNNClassifier


@pytest.fixture(scope="module")
def random_data():
    rng = np.random.default_rng(0)
    X_train = rng.random((300, 16))
    y_train = rng.choice([3, 5, 8, 9], size=300)
    X_test = rng.random((70, 16))
    return X_train, y_train, X_test


def reference(X_train, y_train, k, weights):
    return KNeighborsClassifier(n_neighbors=k, weights=weights, algorithm="brute").fit(X_train, y_train)


@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("k", [1, 3, 8])
def test_matches_sklearn_on_random_data(random_data, k, weights):
    X_train, y_train, X_test = random_data
    ours = KNNClassifier(n_neighbors=k, weights=weights, batch_size=16).fit(X_train, y_train)
    theirs = reference(X_train, y_train, k, weights)
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    np.testing.assert_array_equal(ours.predict(X_test), theirs.predict(X_test))
    np.testing.assert_allclose(ours.predict_proba(X_test), theirs.predict_proba(X_test), atol=1e-5)


@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("k", [1, 5])
def test_matches_sklearn_on_load_digits(k, weights):
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16, y, test_size=0.3, random_state=0)
    ours = KNNClassifier(n_neighbors=k, weights=weights, batch_size=100).fit(X_train, y_train)
    theirs = reference(X_train, y_train, k, weights)
    # Pixel values are multiples of 1/16, so distances tie exactly; where the k-th and (k+1)-th tie,
    # scikit-learn's choice is arbitrary and ours is the lower training index, so compare the other rows.
    distances = theirs.kneighbors(X_test, n_neighbors=k + 1)[0]
    clear = distances[:, k - 1] < distances[:, k]
    assert clear.mean() > 0.9
    predicted = ours.predict(X_test)
    np.testing.assert_array_equal(predicted[clear], theirs.predict(X_test)[clear])
    np.testing.assert_allclose(ours.predict_proba(X_test)[clear], theirs.predict_proba(X_test)[clear], atol=1e-5)
    assert (predicted == y_test).mean() > 0.95


def test_kneighbors_matches_sklearn(random_data):
    X_train, y_train, X_test = random_data
    distances, indices = KNNClassifier(n_neighbors=6, batch_size=32).fit(X_train, y_train).kneighbors(X_test)
    expected_distances, expected_indices = reference(X_train, y_train, 6, "uniform").kneighbors(X_test)
    assert distances.shape == indices.shape == (70, 6)
    assert np.all(np.diff(distances, axis=1) >= 0)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-5, atol=1e-5)


def test_kneighbors_options(random_data):
    X_train, y_train, X_test = random_data
    model = KNNClassifier(n_neighbors=2).fit(X_train, y_train)
    indices = model.kneighbors(X_test, n_neighbors=9, return_distance=False)
    assert indices.shape == (70, 9)
    np.testing.assert_array_equal(indices[:, :2], model.kneighbors(X_test)[1])


def test_chunked_equals_unchunked(random_data):
    X_train, y_train, X_test = random_data
    chunked = KNNClassifier(n_neighbors=4, weights="distance", batch_size=9).fit(X_train, y_train)
    whole = KNNClassifier(n_neighbors=4, weights="distance", batch_size=10_000).fit(X_train, y_train)
    (d_chunked, i_chunked), (d_whole, i_whole) = chunked.kneighbors(X_test), whole.kneighbors(X_test)
    np.testing.assert_array_equal(i_chunked, i_whole)
    # BLAS may block a GEMM differently for different row counts, so distances agree to float32 rounding.
    np.testing.assert_allclose(d_chunked, d_whole, rtol=1e-5)
    np.testing.assert_allclose(chunked.predict_proba(X_test), whole.predict_proba(X_test), rtol=1e-5)
    np.testing.assert_array_equal(chunked.predict(X_test), whole.predict(X_test))


def test_ties_go_to_the_lower_training_index():
    X_train = np.zeros((50, 3))
    X_train[10:] = 1.0
    distances, indices = KNNClassifier(n_neighbors=5).fit(X_train, np.arange(50) % 2).kneighbors(np.full((2, 3), 0.5))
    np.testing.assert_array_equal(indices, [[0, 1, 2, 3, 4]] * 2)
    np.testing.assert_allclose(distances, np.sqrt(0.75), rtol=1e-6)


def test_exact_matches_take_all_the_distance_weight():
    X_train = np.array([[0.0], [0.0], [1.0], [1.0], [1.0]])
    y_train = np.array([7, 2, 4, 4, 4])
    X_test = np.array([[0.0], [0.9]])
    model = KNNClassifier(n_neighbors=5, weights="distance").fit(X_train, y_train)
    proba = model.predict_proba(X_test)
    np.testing.assert_allclose(proba[0], [0.5, 0.0, 0.5])
    np.testing.assert_allclose(proba, reference(X_train, y_train, 5, "distance").predict_proba(X_test), atol=1e-6)
    np.testing.assert_array_equal(model.predict(X_test), [2, 4])


@pytest.mark.parametrize(
    ("kwargs", "X", "y", "match"),
    [
        ({"n_neighbors": 7}, np.zeros((5, 2)), np.zeros(5), r"n_samples = 5, n_neighbors = 7"),
        ({"n_neighbors": 0}, np.zeros((5, 2)), np.zeros(5), r"n_neighbors = 0"),
        ({"n_neighbors": 2.0}, np.zeros((5, 2)), np.zeros(5), r"n_neighbors = 2\.0"),
        ({"weights": "gaussian"}, np.zeros((5, 2)), np.zeros(5), r"weights.*'gaussian'"),
        ({"batch_size": 0}, np.zeros((5, 2)), np.zeros(5), r"batch_size"),
        ({}, np.zeros(5), np.zeros(5), r"2-D array.*\(5,\)"),
        ({}, np.zeros((5, 2)), np.zeros(4), r"y of shape \(5,\).*\(4,\)"),
    ],
)
def test_fit_rejects_bad_arguments(kwargs, X, y, match):
    with pytest.raises(DigitsError, match=match):
        KNNClassifier(**kwargs).fit(X, y)


def test_query_errors():
    with pytest.raises(DigitsError, match=r"not fitted.*fit"):
        KNNClassifier().predict(np.zeros((1, 2)))
    model = KNNClassifier(n_neighbors=2).fit(np.zeros((5, 2)), np.zeros(5))
    with pytest.raises(DigitsError, match=r"2 features.*got 3"):
        model.predict(np.zeros((1, 3)))
    with pytest.raises(DigitsError, match=r"n_samples = 5, n_neighbors = 6"):
        model.kneighbors(np.zeros((1, 2)), n_neighbors=6)
