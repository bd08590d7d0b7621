"""`digits results`: each model's recorded scores on one line, from DVC's flat metric columns."""
from digits.results import rows, table

RECORD = {"Experiment": None, "rev": "workspace", "submit.model": "ensemble",
          "metrics/scores/cnn.json:val_accuracy": 0.99, "metrics/scores/cnn.json:val_log_loss": 0.05,
          "metrics/scores/ensemble.json:val_accuracy": 0.995, "metrics/scores/ensemble.json:val_log_loss": 0.04,
          "metrics/scores/cnn_wide.json:val_accuracy": 0.98, "metrics/scores/cnn_wide.json:val_log_loss": 0.06,
          "metrics/time/train_cnn.json:seconds": 217.4, "metrics/kaggle.json:public_score": 0.99572}


def test_one_row_per_scored_model_with_its_time_and_the_uploaded_ones_public_score():
    found = rows(RECORD)
    assert [r["model"] for r in found] == ["cnn", "cnn_wide", "ensemble"]
    assert found[0] == {"model": "cnn", "val_accuracy": 0.99, "val_log_loss": 0.05, "seconds": 217.4}
    assert found[2]["public_score"] == 0.99572 and "public_score" not in found[0]


def test_the_table_has_one_line_per_model_and_experiment():
    named = {**RECORD, "Experiment": "cnn-3-epochs", "rev": "1a2b3c4", "submit.model": "cnn"}
    lines = table([RECORD, named], with_experiment=True).splitlines()
    assert lines[0].split()[:4] == ["experiment", "model", "val", "accuracy"]
    assert [line.split()[:2] for line in lines[1:]] == [
        ["workspace", "cnn"], ["workspace", "cnn_wide"], ["workspace", "ensemble"],
        ["cnn-3-epochs", "cnn"], ["cnn-3-epochs", "cnn_wide"], ["cnn-3-epochs", "ensemble"]]
    assert lines[1].split()[-2:] == ["—", "217"] and lines[4].split()[-2:] == ["0.9957", "217"]


def test_a_refit_run_shows_its_seen_scores_and_not_the_held_out_columns_it_lacks():
    refit = {"Experiment": None, "rev": "workspace", "submit.model": "ensemble",
             "metrics/scores/cnn.json:seen_val_accuracy": 1.0, "metrics/scores/cnn.json:val_accuracy": "None",
             "metrics/scores/cnn.json:test_accuracy": 0.9955, "metrics/time/train_cnn.json:seconds": 250.0}
    assert rows(refit) == [{"model": "cnn", "seen_val_accuracy": 1.0, "test_accuracy": 0.9955, "seconds": 250.0}]
    head, line = table([refit], with_experiment=False).splitlines()
    assert head.split() == ["model", "val", "accuracy", "(seen,", "refit)", "test", "accuracy", "training", "(s)"]
    assert line.split() == ["cnn", "1.0000", "0.9955", "250"]
