"""Scores, confusion data, the report table and submission files."""
import numpy as np
import pytest
from sklearn.metrics import f1_score

from digits import report
from digits.data import read_labels
from digits.errors import DigitsError
from digits.metrics import confusion_records, scores
from digits.submission import submission_csv, write_submission


def one_hot(labels, k=10):
    return np.eye(k, dtype=np.float32)[labels]


def test_scores_of_a_perfect_and_an_imperfect_model():
    y = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    assert scores(y, one_hot(y)) == {"accuracy": 1.0, "precision_macro": 1.0, "recall_macro": 1.0, "f1_macro": 1.0}
    pred = y.copy()
    pred[:2] = 9
    s = scores(y, one_hot(pred))
    assert s["accuracy"] == 0.8
    assert s["f1_macro"] == pytest.approx(f1_score(y, pred, average="macro"), abs=1e-6)


def test_confusion_records_pair_truth_and_prediction():
    assert confusion_records(np.array([1, 2]), np.array([1, 7])) == [
        {"actual": 1, "predicted": 1}, {"actual": 2, "predicted": 7}]


def test_report_has_a_row_per_model_and_test_accuracy_when_known():
    s = {"accuracy": 0.9, "precision_macro": 0.8, "recall_macro": 0.7, "f1_macro": 0.75}
    text = report.render({"cnn": {"val": s, "test": {"accuracy": 0.95}}, "ensemble": {"val": s, "test": {"accuracy": 0.5}}},
                         {"cnn": 12.34})
    assert "| cnn | 0.9000 | 0.8000 | 0.7000 | 0.7500 | 0.9500 | 12.3 |" in text
    assert "| ensemble | 0.9000 | 0.8000 | 0.7000 | 0.7500 | 0.5000 | — |" in text
    assert "figures/confusion/cnn.png" in text


def test_submission_round_trips_through_the_checker(tmp_path):
    labels = np.array([3, 1, 4, 1, 5, 9])
    path = tmp_path / "sub.csv"
    write_submission(path, labels)
    assert path.read_text().splitlines()[:2] == ["ImageId,Label", "1,3"]
    assert read_labels(path, n_rows=6).tolist() == labels.tolist()
    assert submission_csv(labels) == path.read_bytes()


def test_a_bad_submission_is_never_written(tmp_path):
    path = tmp_path / "sub.csv"
    with pytest.raises(DigitsError, match="found 10, expected a digit 0-9"):
        write_submission(path, np.array([1, 10]))
    assert list(tmp_path.iterdir()) == []
