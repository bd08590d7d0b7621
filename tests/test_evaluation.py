"""Scores against scikit-learn, the ensemble, the evaluate stage's outputs, the report and submission files."""
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from sklearn.metrics import accuracy_score, log_loss, precision_recall_fscore_support

from digits import ensemble, report
from digits.data import read_labels
from digits.errors import DigitsError
from digits.io import save_npz, write_json
from digits.metrics import confusion_records, per_class, scores
from digits.stages import evaluate
from digits.stages.common import save_predictions
from digits.submission import submission_csv, write_submission

ROOT = Path(__file__).resolve().parents[1]


def one_hot(labels, k=10):
    return np.eye(k, dtype=np.float32)[labels]


def noisy_proba(y, accuracy, rng):
    """float32 (N, 10) probabilities whose argmax is right for about `accuracy` of the labels y."""
    logits = rng.normal(size=(len(y), 10))
    right = rng.random(len(y)) < accuracy
    logits[right, y[right]] += 6
    p = np.exp(logits)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def test_scores_equal_scikit_learns():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 500)
    proba = noisy_proba(y, 0.7, rng)
    pred = proba.argmax(1)
    s = scores(y, proba)
    assert set(s) == {"accuracy", "precision_macro", "recall_macro", "f1_macro", "log_loss"}
    precision, recall, f1, _ = precision_recall_fscore_support(y, pred, average="macro")
    assert s["accuracy"] == pytest.approx(accuracy_score(y, pred), abs=1e-6)
    assert (s["precision_macro"], s["recall_macro"], s["f1_macro"]) == pytest.approx((precision, recall, f1), abs=1e-6)
    exact = proba.astype(np.float64)
    assert s["log_loss"] == pytest.approx(log_loss(y, exact / exact.sum(axis=1, keepdims=True)), abs=1e-6)
    assert scores(np.arange(10), one_hot(np.arange(10)))["f1_macro"] == 1.0


def test_per_class_scores_equal_scikit_learns():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 10, 400)
    proba = noisy_proba(y, 0.6, rng)
    classes = per_class(y, proba)
    precision, recall, f1, _ = precision_recall_fscore_support(y, proba.argmax(1), labels=range(10), average=None)
    assert list(classes) == [str(d) for d in range(10)]
    for d in range(10):
        assert classes[str(d)] == pytest.approx({"precision": precision[d], "recall": recall[d], "f1": f1[d]}, abs=1e-6)


def test_a_digit_never_predicted_scores_zero_without_a_warning():
    y = np.array([0, 1, 2, 2])
    classes = per_class(y, one_hot(np.array([0, 1, 1, 1])))
    assert classes["2"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_confusion_records_pair_truth_and_prediction():
    assert confusion_records(np.array([1, 2]), np.array([1, 7])) == [
        {"actual": 1, "predicted": 1}, {"actual": 2, "predicted": 7}]


def mixture_scores(probas, y, w):
    """(accuracy, log-loss) of the weighted mean of probas."""
    mixed = ensemble.combine(probas, w).astype(np.float64)
    return np.mean(mixed.argmax(1) == y), log_loss(y, mixed / mixed.sum(axis=1, keepdims=True), labels=range(10))


def test_fitted_weights_are_the_most_accurate_then_the_surest_on_a_grid():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 10, 600)
    probas = [noisy_proba(y, a, rng) for a in (0.8, 0.7, 0.5)]
    w = ensemble.fit_weights(probas, y)
    assert w.sum() == pytest.approx(1) and (w >= 0).all() and w[0] > w[2]
    accuracy, loss = mixture_scores(probas, y, w)
    grid = [np.array(g) / 20 for g in itertools.product(range(21), repeat=3) if sum(g) == 20]
    others = [mixture_scores(probas, y, g) for g in grid]
    assert accuracy == max(a for a, _ in others)
    assert loss <= min(l for a, l in others if a == accuracy) + 1e-9
    assert accuracy > max(mixture_scores([p], y, [1])[0] for p in probas)  # better than any member alone


def test_accuracy_comes_before_confidence():
    y = np.repeat(np.arange(10), 10)
    cautious = 0.5 * one_hot(y) + 0.05  # always right, 0.55 on the truth
    confident = one_hot(np.where(np.arange(100) % 10 == 0, (y + 1) % 10, y))  # 0/1 votes, 10 % wrong
    w = ensemble.fit_weights([cautious, confident], y)
    assert mixture_scores([cautious, confident], y, w)[0] == 1.0
    assert mixture_scores([cautious, confident], y, w)[1] < mixture_scores([cautious], y, [1])[1]


def test_a_useless_member_gets_no_weight():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 10, 300)
    w = ensemble.fit_weights([one_hot(y), noisy_proba(y, 0.0, rng)], y)
    assert w.tolist() == [1.0, 0.0]


def test_combine_is_the_weighted_mean():
    a, b = one_hot(np.array([1, 2])), one_hot(np.array([1, 3]))
    assert ensemble.combine([a, b], [3, 1]) == pytest.approx(0.75 * a + 0.25 * b)
    assert ensemble.combine([a, b], [3, 1]).dtype == np.float32


def test_ensemble_file_round_trips_and_a_bad_one_is_named(tmp_path):
    path = tmp_path / "ensemble.json"
    ensemble.save(path, ["cnn", "knn"], [0.25, 0.75])
    assert ensemble.load(path, ("cnn", "knn", "resnet")) == (["cnn", "knn"], [0.25, 0.75])
    path.write_text('{"members": ["cnn", "svm"], "weights": [1, 1]}')
    with pytest.raises(DigitsError, match=r"ensemble.json: members is \['cnn', 'svm'\], expected a non-empty list"):
        ensemble.load(path, ("cnn", "knn", "resnet"))
    path.write_text("[1, 2")
    with pytest.raises(DigitsError, match="ensemble.json: not an ensemble file"):
        ensemble.load(path, ("cnn", "knn", "resnet"))
    with pytest.raises(DigitsError, match="nothing.json: no such file"):
        ensemble.load(tmp_path / "nothing.json", ("cnn",))


@pytest.fixture
def stage_dir(tmp_path, monkeypatch):
    """A folder with prepared splits, three models' predictions and training times, as evaluate finds them."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, (120, 28, 28), dtype=np.uint8)
    y = np.tile(np.arange(10, dtype=np.uint8), 12)
    save_npz("data/prepared/train.npz", x=x, y=y)
    save_npz("data/prepared/val.npz", x=x[:60], y=y[:60])
    save_npz("data/prepared/test.npz", x=x[60:], y=y[60:])
    for model, accuracy in (("cnn", 0.9), ("knn", 0.8), ("resnet", 0.7)):
        save_predictions(model, noisy_proba(y[:60], accuracy, rng), noisy_proba(y[60:], accuracy, rng))
        write_json(f"metrics/time/train_{model}.json", {"seconds": 12.5})
    return tmp_path


def write_params(ensemble_spec, refit=False):
    """The project's params.yaml with evaluate.ensemble and split.refit replaced, into the current folder."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["evaluate"]["ensemble"] = ensemble_spec
    params["split"]["refit"] = refit
    params["knn"]["grid"] = None
    params["cnn_members"] = {"cnn": {}}  # the one numpy CNN stage_dir holds predictions of
    params["submit"]["models"] = ["cnn", "knn", "resnet", "ensemble"]
    with open("params.yaml", "w") as f:
        yaml.safe_dump(params, f)


def flat_keys(tree, prefix=""):
    if not isinstance(tree, dict):
        return {prefix[:-1]}
    return set().union(*(flat_keys(v, f"{prefix}{k}.") for k, v in tree.items()))


def test_evaluate_writes_stable_metric_keys_ensemble_figures_and_report(stage_dir):
    write_params({"members": ["cnn", "knn", "resnet"], "weights": "fit"})
    evaluate.main()
    results = json.loads((stage_dir / "metrics/evaluate.json").read_text())
    models = ("cnn", "knn", "resnet", "ensemble")
    scored = {f"{m}.val.{s}" for m in models
              for s in ("accuracy", "precision_macro", "recall_macro", "f1_macro", "log_loss")}
    assert flat_keys(results) == scored | {f"{m}.test.accuracy" for m in models} | {
        "ensemble.weights.cnn", "ensemble.weights.knn", "ensemble.weights.resnet",
        "ensemble.without.cnn", "ensemble.without.knn", "ensemble.without.resnet",
        *(f"ensemble.gain_interval.{m}.{end}" for m in ("cnn", "knn", "resnet") for end in ("low", "high"))}
    classes = json.loads((stage_dir / "metrics/per_class.json").read_text())
    assert flat_keys(classes) == {f"{m}.{d}.{s}" for m in models for d in range(10) for s in ("precision", "recall", "f1")}

    spec = json.loads((stage_dir / "models/ensemble.json").read_text())
    assert spec["members"] == ["cnn", "knn", "resnet"] and spec["weights"] == list(results["ensemble"]["weights"].values())
    mixed = np.load(stage_dir / "predictions/ensemble.npz")
    val = [np.load(stage_dir / f"predictions/{m}.npz")["val"] for m in spec["members"]]
    assert mixed["val"] == pytest.approx(ensemble.combine(val, spec["weights"]), abs=1e-6)
    assert results["ensemble"]["val"]["accuracy"] >= max(results[m]["val"]["accuracy"] for m in spec["members"])

    records = json.loads((stage_dir / "reports/confusion/knn.json").read_text())
    assert len(records) == 60 and set(records[0]) == {"actual", "predicted"}
    for figure in ["samples", "f1_per_class", *(f"confusion/{m}" for m in models), *(f"errors/{m}" for m in models)]:
        with Image.open(stage_dir / "reports/figures" / f"{figure}.png") as img:
            assert img.format == "PNG" and img.size[0] > 300 and img.size[1] > 150, figure
    text = (stage_dir / "reports/report.md").read_text()
    assert f"| knn | {results['knn']['val']['accuracy']:.4f} |" in text
    assert "weights fitted on the validation split: the most accurate" in text
    assert "figures/errors/ensemble.png" in text and "figures/samples.png" in text
    without = results["ensemble"]["without"]  # e.g. without cnn: knn and resnet, weights fitted again
    others = [np.load(stage_dir / f"predictions/{m}.npz")["val"] for m in ("knn", "resnet")]
    y_val = np.load(stage_dir / "data/prepared/val.npz")["y"]
    mixed_others = ensemble.combine(others, ensemble.fit_weights(others, y_val))
    assert without["cnn"] == pytest.approx(np.mean(mixed_others.argmax(axis=1) == y_val), abs=1e-6)
    gain = results["ensemble"]["val"]["accuracy"] - without["cnn"]
    interval = results["ensemble"]["gain_interval"]["cnn"]
    assert interval["low"] <= gain + 1e-6 and gain - 1e-6 <= interval["high"]
    assert (f"| cnn | {results['ensemble']['weights']['cnn']:g} | {without['cnn']:.4f} | {gain:+.4f} | "
            f"{interval['low']:+.4f} to {interval['high']:+.4f} |") in text


def test_evaluate_uses_the_weights_it_is_given(stage_dir):
    write_params({"members": ["knn", "cnn"], "weights": [1, 3]})
    evaluate.main()
    assert json.loads((stage_dir / "models/ensemble.json").read_text()) == {"members": ["knn", "cnn"],
                                                                          "weights": [0.25, 0.75]}
    assert "(weights as set in params.yaml)" in (stage_dir / "reports/report.md").read_text()


@pytest.mark.parametrize("spec, message", [
    (["cnn", "knn"], "evaluate.ensemble"),  # the schema in digits.params names the key
    ({"members": ["cnn", "svm"], "weights": "fit"}, "evaluate.ensemble.members"),
    ({"members": ["cnn", "cnn"], "weights": "fit"}, "members: found ['cnn', 'cnn'], expected distinct names of cnn, knn"),
    ({"members": ["cnn", "knn"], "weights": [0, 0]}, "weights is [0, 0], expected 2 numbers >= 0"),
])
def test_a_bad_ensemble_in_params_stops_evaluate_in_one_line(stage_dir, capsys, spec, message):
    write_params(spec)
    with pytest.raises(SystemExit) as exit_:
        evaluate.main()
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("evaluate: error: params.yaml: evaluate.ensemble") and message in err, err
    assert err.count("\n") == 1 and not (stage_dir / "metrics/evaluate.json").exists()


def test_predictions_of_the_wrong_length_are_named(stage_dir, capsys):
    write_params({"members": ["cnn"], "weights": "fit"})
    save_predictions("knn", one_hot(np.zeros(59, int)), one_hot(np.zeros(60, int)))
    with pytest.raises(SystemExit):
        evaluate.main()
    assert "predictions/knn.npz: 'val' has 59 rows, expected 60 (the val split)" in capsys.readouterr().err


def test_report_has_a_row_per_model_and_test_accuracy_when_known():
    s = {"accuracy": 0.9, "precision_macro": 0.8, "recall_macro": 0.7, "f1_macro": 0.75, "log_loss": 0.3}
    results = {"cnn": {"val": s, "test": {"accuracy": 0.95}},
               "ensemble": {"val": s, "test": {"accuracy": 0.5}, "weights": {"cnn": 1.0}}}
    classes = {m: {str(d): {"f1": 0.5 + d / 100} for d in range(10)} for m in results}
    text = report.render(results, classes, ["cnn"], weights_fitted=False)
    assert "| cnn | 0.9000 | 0.8000 | 0.7000 | 0.7500 | 0.3000 | 0.9500 |\n" in text
    assert "| ensemble | 0.9000 | 0.8000 | 0.7000 | 0.7500 | 0.3000 | 0.5000 |\n" in text
    assert "| 3 | 0.5300 | 0.5300 |" in text
    assert "figures/confusion/cnn.png" in text and "figures/cnn_curves.png" in text


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


def test_leave_one_out_scores_the_ensemble_without_each_member():
    y = np.arange(10).repeat(3)
    right, wrong = one_hot(y), one_hot((y + 1) % 10)
    half = np.where(np.arange(30)[:, None] < 15, right, wrong)  # right on the first half only
    probas = {"good": right, "half": half, "bad": wrong}
    accuracy = lambda rows: {name: right_rows.mean() for name, right_rows in rows.items()}
    refitted = ensemble.leave_one_out(probas, y)
    assert accuracy(refitted) == {"good": 0.5, "half": 1.0, "bad": 1.0}  # only "good" is missed when it is left out
    assert refitted["good"].tolist() == [True] * 15 + [False] * 15  # the rows half gets right
    kept = ensemble.leave_one_out(probas, y, weights=[0.2, 0.3, 0.5])
    assert accuracy(kept) == {"good": 0.0, "half": 0.0, "bad": 0.5}  # without good, bad (0.5) outvotes half (0.3)
    # everywhere; without bad, half (0.3) outvotes good (0.2) where half is wrong
    assert ensemble.leave_one_out({"only": right}, y) == {}


def test_the_gain_interval_holds_zero_only_when_the_rows_cannot_tell():
    same = np.arange(1000) % 7 > 0
    assert ensemble.gain_interval(same, same) == (0.0, 0.0)
    fixes = same.copy()
    fixes[np.flatnonzero(~same)[:30]] = True  # 30 rows of 1,000 fixed, none broken: a gain of 0.03
    low, high = ensemble.gain_interval(fixes, same)
    assert 0.01 < low < 0.03 < high < 0.05
    mixed = fixes.copy()
    mixed[np.flatnonzero(same)[:28]] = False  # and 28 others broken: a gain of 0.002, well inside the noise
    low, high = ensemble.gain_interval(mixed, same)
    assert low < 0 < 0.002 < high
    assert ensemble.gain_interval(mixed, same) == (low, high)  # seeded: the report is the same run after run


def test_evaluate_records_a_few_scores_per_model_and_the_report_says_where_they_came_from(stage_dir):
    write_params({"members": ["cnn", "knn", "resnet"], "weights": "fit"})
    write_json("data/raw/source.json", {"source": "sample", "files": {"train.csv": {"rows": 120},
                                                                      "test.csv": {"rows": 60}}})
    evaluate.main()
    results = json.loads((stage_dir / "metrics/evaluate.json").read_text())
    for model in ("cnn", "knn", "resnet", "ensemble"):
        assert json.loads((stage_dir / f"metrics/scores/{model}.json").read_text()) == {
            "val_accuracy": results[model]["val"]["accuracy"], "val_log_loss": results[model]["val"]["log_loss"],
            "test_accuracy": results[model]["test"]["accuracy"]}
    head = (stage_dir / "reports/report.md").read_text().splitlines()[2:5]
    assert head[0].startswith("- Data: `sample` (data.source: `auto`), 120 labelled and 60 test images: the small "
                              "bundled sample")
    assert head[1].startswith("- Code: commit ") and head[2].startswith("- Params: ")


def test_with_refit_the_scores_say_the_validation_rows_were_seen_and_nothing_is_left_out(stage_dir, capsys):
    write_params({"members": ["cnn", "knn", "resnet"], "weights": [2, 1, 1]}, refit=True)
    evaluate.main()
    results = json.loads((stage_dir / "metrics/evaluate.json").read_text())
    for model in ("cnn", "knn", "resnet", "ensemble"):  # not comparable with a held-out val_accuracy
        assert json.loads((stage_dir / f"metrics/scores/{model}.json").read_text()) == {
            "seen_val_accuracy": results[model]["val"]["accuracy"],
            "seen_val_log_loss": results[model]["val"]["log_loss"], "test_accuracy": results[model]["test"]["accuracy"]}
    assert "without" not in results["ensemble"] and results["ensemble"]["weights"] == {"cnn": 0.5, "knn": 0.25,
                                                                                        "resnet": 0.25}
    text = (stage_dir / "reports/report.md").read_text()
    assert "**split.refit: every model trained on the validation rows too**" in text
    assert "-S split.refit=false -S evaluate.ensemble.weights=fit" in text and "Leave one out" not in text
    assert "on the validation split, seen in training (split.refit)" in capsys.readouterr().out
