import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from digits import knn
from digits.errors import DigitsError
from digits.knn import KNNClassifier


@pytest.fixture(scope="module")
def random_data():
    rng = np.random.default_rng(0)
    X_train = rng.random((300, 16))
    y_train = rng.choice([3, 5, 8, 9], size=300)
    X_test = rng.random((70, 16))
    return X_train, y_train, X_test


def reference(X_train, y_train, k, weights, metric="euclidean"):
    return KNeighborsClassifier(n_neighbors=k, weights=weights, metric=metric, algorithm="brute").fit(X_train, y_train)


def exact_neighbors(X_train, X_test, k):
    """Indices (M, k) of the k nearest by float64 distance between the float32 rows, ties to the lower index."""
    X_train, X_test = (np.asarray(a, np.float32).astype(np.float64) for a in (X_train, X_test))
    distances = ((X_test[:, None, :] - X_train[None, :, :]) ** 2).sum(axis=2)
    return np.argsort(distances, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("k", [1, 3, 8])
def test_matches_sklearn_on_random_data(random_data, k, weights, metric):
    X_train, y_train, X_test = random_data
    ours = KNNClassifier(n_neighbors=k, weights=weights, metric=metric, batch_size=16).fit(X_train, y_train)
    theirs = reference(X_train, y_train, k, weights, metric)
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


def test_cosine_kneighbors_match_sklearn_with_zero_rows(random_data):
    X_train, y_train, X_test = random_data
    X_train, X_test = X_train - 0.5, X_test - 0.5
    X_train[[4, 9]] = 0
    X_test[0] = 0
    distances, indices = KNNClassifier(n_neighbors=5, metric="cosine").fit(X_train, y_train).kneighbors(X_test)
    expected_distances, expected_indices = reference(X_train, y_train, 5, "uniform", "cosine").kneighbors(X_test)
    np.testing.assert_allclose(distances, expected_distances, atol=1e-6)
    np.testing.assert_array_equal(indices[1:], expected_indices[1:])
    np.testing.assert_array_equal(indices[0], [0, 1, 2, 3, 4])  # a zero query is at distance 1 from every row


def test_chunked_equals_unchunked(random_data):
    X_train, y_train, X_test = random_data
    chunked = KNNClassifier(n_neighbors=4, weights="distance", batch_size=9).fit(X_train, y_train)
    whole = KNNClassifier(n_neighbors=4, weights="distance", batch_size=10_000).fit(X_train, y_train)
    (d_chunked, i_chunked), (d_whole, i_whole) = chunked.kneighbors(X_test), whole.kneighbors(X_test)
    # Distances are recomputed pair by pair after the GEMM, so the batch size changes no bit of them.
    np.testing.assert_array_equal(i_chunked, i_whole)
    np.testing.assert_array_equal(d_chunked, d_whole)
    np.testing.assert_array_equal(chunked.predict_proba(X_test), whole.predict_proba(X_test))


@pytest.mark.parametrize("k", [1, 4, 40])
def test_exact_where_float32_gemm_cannot_tell_neighbours_apart(k):
    # Rows far from the origin that differ by multiples of 2^-10: the GEMM's keys carry rounding errors
    # far larger than the gaps between neighbours, yet the neighbours must be the exact ones.
    rng = np.random.default_rng(1)
    X_train = (1000 + rng.integers(0, 4, size=(400, 20)) / 1024).astype(np.float32)
    X_test = (1000 + rng.integers(0, 4, size=(30, 20)) / 1024).astype(np.float32)
    model = KNNClassifier(n_neighbors=k, batch_size=7).fit(X_train, np.arange(400) % 3)
    distances, indices = model.kneighbors(X_test)
    np.testing.assert_array_equal(indices, exact_neighbors(X_train, X_test, k))
    exact = np.sqrt(((X_test[:, None].astype(np.float64) - X_train[indices]) ** 2).sum(axis=2))
    np.testing.assert_allclose(distances, exact, rtol=1e-6)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_rows_with_rare_columns_get_their_own_product(metric):
    # Columns 0-9 are non-zero in every row, columns 10-19 only in rows 3, 17, 40, 41 and 77 (like the
    # pixels near the border): those rows are multiplied over all 20 columns, the others over 0-9 only.
    rng = np.random.default_rng(2)
    X_train = np.zeros((100, 22), np.float32)  # columns 20 and 21 are never used
    X_train[:, :10] = rng.random((100, 10)) + 0.1
    rare_rows = [3, 17, 40, 41, 77]
    X_train[np.ix_(rare_rows, range(10, 20))] = rng.random((5, 10)) * 3
    X_test = np.concatenate([rng.random((30, 22)), X_train[rare_rows] + 0.01]).astype(np.float32)
    model = KNNClassifier(n_neighbors=4, metric=metric).fit(X_train, np.arange(100) % 3)
    index = model.index_
    np.testing.assert_array_equal(index.used, np.arange(20))
    np.testing.assert_array_equal(index.common, np.arange(10))
    np.testing.assert_array_equal(index.order[:5], rare_rows)
    distances, indices = model.kneighbors(X_test)
    expected = reference(X_train, np.arange(100) % 3, 4, "uniform", metric).kneighbors(X_test)
    np.testing.assert_array_equal(indices, expected[1])
    np.testing.assert_allclose(distances, expected[0], rtol=1e-5, atol=1e-6)
    assert (indices[30:, 0] == rare_rows).all()


@pytest.mark.parametrize("k", [1, 5, 16, 17, 120])
def test_few_groups_padding_rows_and_more_neighbours_than_groups(random_data, monkeypatch, k):
    # 300 rows in 16 groups of 19, with 4 padding rows; k > 16 makes every row its own group.
    monkeypatch.setattr(knn.classifier._Index, "GROUPS", 16)
    X_train, y_train, X_test = random_data
    model = KNNClassifier(n_neighbors=1).fit(X_train, y_train)
    assert model.index_.groups == 16 and model.index_.n_first + len(model.index_.rest_rows) == 304
    np.testing.assert_array_equal(model.kneighbors(X_test, n_neighbors=k, return_distance=False),
                                  exact_neighbors(X_train, X_test, k))


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
        ({"metric": "manhattan"}, np.zeros((5, 2)), np.zeros(5), r"metric in \('euclidean', 'cosine'\).*'manhattan'"),
        ({}, np.array([[0.0], [np.nan]]), np.zeros(2), r"finite values in X, but got nan at row 1, column 0"),
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


@pytest.fixture(scope="module")
def digit_images():
    """300 uint8 digits (300, 28, 28) and labels: scikit-learn's 8x8 digits, each pixel made 3x3, with a border."""
    digits = load_digits()
    big = np.kron(digits.images[:300], np.ones((3, 3))) * (255 / 16)
    return np.pad(big, ((0, 0), (2, 2), (2, 2))).round().astype(np.uint8), digits.target[:300]


SETTINGS = {"transforms": ["deskew", {"pca": {"n_components": 12}}], "n_neighbors": 3, "weights": "distance",
            "metric": "euclidean", "batch_size": 64}


def test_model_file_round_trip(tmp_path, digit_images):
    images, labels = digit_images
    keep = labels != 7  # a digit the model never saw gets probability 0
    model = knn.KNNModel().fit_with(images[:200][keep[:200]], labels[:200][keep[:200]], SETTINGS)
    model.save(tmp_path / "knn.npz")
    with np.load(tmp_path / "knn.npz", allow_pickle=False) as f:
        assert {"features", "labels"} <= set(f.files)
    loaded = knn.KNNModel.load(tmp_path / "knn.npz")
    proba = loaded.predict_proba(images[200:])
    assert proba.shape == (100, 10)
    np.testing.assert_array_equal(proba, model.predict_proba(images[200:]))
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert not proba[:, 7].any()
    features = model.transforms.transform(images[200:])
    np.testing.assert_array_equal(proba[:, model.classifier.classes_], model.classifier.predict_proba(features))
    assert (proba.argmax(axis=1) == labels[200:])[labels[200:] != 7].mean() > 0.9


def test_model_file_errors(tmp_path):
    with pytest.raises(DigitsError, match=r"missing.npz: no such file"):
        knn.KNNModel.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DigitsError, match=r"junk.npz: not a k-NN model \(a .npz of plain arrays"):
        knn.KNNModel.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(DigitsError, match=r"other.npz: not a k-NN model file"):
        knn.KNNModel.load(tmp_path / "other.npz")


def test_grid_search_scores_every_combination_and_picks_the_best(digit_images):
    images, labels = digit_images
    train, val = (images[:200], labels[:200]), (images[200:], labels[200:])
    grid = {"n_neighbors": [1, 4], "pca.n_components": [6, 12], "weights": ["uniform", "distance"]}
    rows, best, chosen = knn.grid_search(train, val, SETTINGS, grid)
    assert [(r["n_neighbors"], r["pca.n_components"], r["weights"]) for r in rows] == [
        (k, n, w) for k in (1, 4) for n in (6, 12) for w in ("uniform", "distance")]
    for row in rows:  # each row's score is the score of that model fitted on its own
        settings = {**SETTINGS, "n_neighbors": row["n_neighbors"], "weights": row["weights"],
                    "transforms": ["deskew", {"pca": {"n_components": row["pca.n_components"]}}]}
        predicted = knn.KNNModel().fit_with(*train, settings).predict_proba(val[0]).argmax(axis=1)
        assert row["val_accuracy"] == pytest.approx((predicted == val[1]).mean(), abs=1e-6)
    accuracies = [row["val_accuracy"] for row in rows]
    assert best is rows[accuracies.index(max(accuracies))]
    assert chosen == {**SETTINGS, "n_neighbors": best["n_neighbors"], "weights": best["weights"],
                      "transforms": ["deskew", {"pca": {"n_components": best["pca.n_components"]}}]}


def test_empty_grid_scores_the_settings_themselves(digit_images):
    images, labels = digit_images
    rows, best, chosen = knn.grid_search((images[:200], labels[:200]), (images[200:], labels[200:]), SETTINGS, {})
    assert len(rows) == 1 and best is rows[0] and chosen == SETTINGS
    predicted = knn.KNNModel().fit_with(images[:200], labels[:200], SETTINGS).predict_proba(images[200:]).argmax(axis=1)
    assert rows[0]["val_accuracy"] == pytest.approx((predicted == labels[200:]).mean(), abs=1e-6)


@pytest.mark.parametrize(
    ("settings", "grid", "match"),
    [
        (SETTINGS, {"leaf_size": [10]}, r"knn.grid: unknown key 'leaf_size'"),
        (SETTINGS, {"n_neighbors": []}, r"knn.grid.n_neighbors: expected a non-empty list of values, got \[\]"),
        (SETTINGS, {"n_neighbors": [1, 2.5]}, r"knn.grid.n_neighbors: expected integers >= 1, got 2.5"),
        (SETTINGS, {"pca.n_components": ["ten"]}, r"knn.grid.pca.n_components: expected integers >= 1, got 'ten'"),
        ({**SETTINGS, "transforms": ["deskew"]}, {"pca.n_components": [5]}, r"knn.transforms has no pca step"),
    ],
)
def test_grid_errors(digit_images, settings, grid, match):
    images, labels = digit_images
    with pytest.raises(DigitsError, match=match):
        knn.grid_search((images[:50], labels[:50]), (images[50:60], labels[50:60]), settings, grid)
