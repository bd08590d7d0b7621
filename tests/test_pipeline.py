"""End to end: `dvc repro` in a copy of the repo (conftest's `repo`) runs every stage on the bundled sample, gives
the same bytes in another user's clone, then is up to date."""
import hashlib
import json
import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from digits.data import load_split, read_labels
from digits.knn import KNNModel
from repo_copy import BIN, long_training, run, sample_env

MEMBERS = ("cnn", "cnn2", "cnn3", "cnn4", "knn", "resnet")  # the defaults' models and the fixture's cnn4, in order
MODELS = (*MEMBERS, "ensemble")

def test_every_stage_runs_and_writes_its_outputs(repo, reproduced):
    copy, _ = repo
    for stage, timing in (("download", "download"), ("split", "split"), ("train_cnn@cnn", "train_cnn"),
                          ("train_cnn@cnn2", "train_cnn2"), ("train_cnn@cnn3", "train_cnn3"),
                          ("train_cnn@cnn4", "train_cnn4"),
                          ("train_knn", "train_knn"),
                          ("train_resnet", "train_resnet"), ("evaluate", "evaluate"), ("submit", "submit")):
        assert f"Running stage '{stage}'" in reproduced
        assert json.loads((copy / "metrics" / "time" / f"{timing}.json").read_text())["seconds"] > 0
    source = json.loads((copy / "data" / "raw" / "source.json").read_text())
    n_test = source["files"]["test.csv"]["rows"]
    assert source["source"] == "sample"
    environment = json.loads((copy / "metrics" / "environment.json").read_text())
    assert environment["numpy"] == np.__version__ and len(environment["git_commit"]) >= 40
    solution = read_labels(copy / "data" / "raw" / "solution.csv", n_rows=n_test)  # the sample knows its labels
    results = json.loads((copy / "metrics" / "evaluate.json").read_text())
    assert set(results) == set(MODELS)
    for model in MODELS:
        labels = read_labels(copy / "submissions" / f"{model}.csv", n_rows=n_test)
        with np.load(copy / "predictions" / f"{model}.npz") as predictions:
            np.testing.assert_array_equal(labels, predictions["test"].argmax(axis=1))  # the submission is the model's
        assert results[model]["test"]["accuracy"] == pytest.approx((labels == solution).mean(), abs=1e-6)
    assert results["knn"]["val"]["accuracy"] > 0.9  # the sample is easy for k-NN; a broken pipeline scores ~0.1
    labelled = sum(len(load_split(copy / "data" / "prepared" / f"{split}.npz")[1]) for split in ("train", "val"))
    assert len(KNNModel.load(copy / "models" / "knn.npz").classifier.X_fit_) == labelled  # split.refit: every row
    assert "without" not in results["ensemble"]  # no leave-one-out on rows the members trained on
    report = (copy / "reports" / "report.md").read_text()
    assert report.splitlines()[2].startswith("- Data: `sample` (data.source: `auto`), ")
    assert "| ensemble |" in report
    for figure in ("cnn_curves.png", "resnet_curves.png", "confusion/cnn.png", "confusion/ensemble.png"):
        assert (copy / "reports" / "figures" / figure).read_bytes()[:4] == b"\x89PNG"
    curves = copy / "dvclive" / "cnn" / "plots" / "metrics"  # split.refit: validation rows are trained on, not scored
    assert (curves / "train_accuracy.tsv").is_file() and not (curves / "val_accuracy.tsv").exists()


def output_hashes(copy):
    """sha256 of every output that must not change between identical runs (timings and logs excluded)."""
    files = [p for d in ("data", "models", "predictions", "submissions") for p in (copy / d).rglob("*") if p.is_file()]
    files += list((copy / "metrics").glob("*.json")) + list((copy / "metrics" / "scores").glob("*.json"))
    return {str(p.relative_to(copy)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def outputs(clone: Path) -> dict[str, str]:
    """sha256 of every output but timings: DVC's outs and metrics, and dvc.lock less the timing files' lines."""
    files = [p.relative_to(clone) for d in ("data", "models", "predictions", "submissions", "reports", "dvclive",
                                            "metrics") for p in (clone / d).rglob("*") if p.is_file()]
    hashes = {str(p): hashlib.sha256((clone / p).read_bytes()).hexdigest() for p in files
              if p.parts[:2] != ("metrics", "time")}
    lock = yaml.safe_load((clone / "dvc.lock").read_text())
    for stage in lock["stages"].values():
        for key in ("deps", "outs"):
            stage[key] = [entry for entry in stage.get(key, []) if not entry["path"].startswith("metrics/time/")]
    hashes["dvc.lock"] = hashlib.sha256(yaml.safe_dump(lock).encode()).hexdigest()
    return hashes


def test_another_user_in_another_clone_path_gets_byte_identical_outputs(repo, reproduced, tmp_path):
    ann, ann_env = repo
    bob = tmp_path / "projects" / "deep" / "path" / "my-digits"
    run(["git", "clone", "-q", str(ann), str(bob)], tmp_path, ann_env)  # the committed code and params, no outputs
    bob_env = sample_env(tmp_path / "bob", bob)
    run([str(BIN / "dvc"), "repro"], bob, bob_env)
    ann_outputs, bob_outputs = outputs(ann), outputs(bob)
    assert {"data/raw/source.json", "models/cnn.npz", "models/resnet.pt", "predictions/ensemble.npz",
            "reports/report.md", "metrics/environment.json", "metrics/evaluate.json",
            "submissions/ensemble.csv"} <= set(ann_outputs)
    assert ann_outputs == bob_outputs
    for clone, env in ((ann, ann_env), (bob, bob_env)):
        for text in ((clone / "data/raw/source.json").read_text(), (clone / "reports/report.md").read_text()):
            assert env["HOME"] not in text and str(clone) not in text
    environment = (ann / "metrics" / "environment.json").read_text()
    assert '"git_commit"' in environment and "+dirty" not in environment  # dvc rewrote dvc.lock and the timings


def test_a_second_repro_finds_everything_up_to_date(repo, reproduced):
    copy, env = repo
    assert "Data and pipelines are up to date" in run([str(BIN / "dvc"), "status"], copy, env)
    again = run([str(BIN / "dvc"), "repro"], copy, env)
    assert "Running stage" not in again


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_training_leaves_nothing_half_written_and_reruns_cleanly(own_copy, signum):
    copy, env = own_copy
    params_file = copy / "params.yaml"
    original = params_file.read_text()
    with long_training(copy, env, "repro", "train_cnn@cnn") as dvc:
        os.killpg(dvc.pid, signum)
        _, err = dvc.communicate(timeout=60)
    assert dvc.returncode != 0
    assert "train_cnn: interrupted" in err
    outputs = ("models", "predictions", "checkpoints", "dvclive", "reports", "metrics", "submissions")
    leftovers = [str(p) for d in outputs for p in (copy / d).rglob("*.tmp")]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    assert "train_cnn" in run([str(BIN / "dvc"), "status"], copy, env)  # dvc.lock did not record the killed run
    params_file.write_text(original)
    run([str(BIN / "dvc"), "repro"], copy, env)
    assert "Data and pipelines are up to date" in run([str(BIN / "dvc"), "status"], copy, env)


def test_dvc_metrics_show_a_few_figures_per_model(repo, reproduced):
    copy, env = repo
    shown = json.loads(run([str(BIN / "dvc"), "metrics", "show", "--json"], copy, env))
    files = shown[""]["data"]
    assert set(files) == {*(f"metrics/scores/{m}.json" for m in MODELS),
                          *(f"metrics/time/train_{m}.json" for m in MEMBERS), "metrics/kaggle.json"}
    assert set(files["metrics/scores/ensemble.json"]["data"]) == {"seen_val_accuracy", "seen_val_log_loss",
                                                                   "test_accuracy"}
    table = run([str(BIN / "dvc"), "metrics", "show"], copy, env).splitlines()
    assert len(table) == 1 + len(files) and max(map(len, table)) <= 100  # a header and a line per file: one screen


def test_digits_results_prints_one_line_per_model(repo, reproduced):
    copy, env = repo
    lines = run([str(BIN / "digits"), "results"], copy / "src", env).splitlines()
    assert lines[0].split()[:3] == ["model", "val", "accuracy"]
    assert [line.split()[0] for line in lines[1:]] == list(MODELS)


def test_a_teammate_gets_the_trained_results_through_a_remote_without_training(own_copy, tmp_path):
    copy, env = own_copy
    dvc = str(BIN / "dvc")
    run([dvc, "remote", "add", "-d", "team", str(tmp_path / "remote")], copy, env)
    run([dvc, "push"], copy, env)
    run(["git", "add", "dvc.lock", "metrics", ".dvc/config"], copy, env)
    run(["git", "commit", "-qm", "trained on the sample"], copy, env)
    assert "dvc.lock" in run(["git", "show", "--stat", "HEAD"], copy, env)
    run(["git", "clone", "-q", str(copy), str(tmp_path / "teammate")], tmp_path, env)
    teammate = tmp_path / "teammate"
    run([dvc, "pull"], teammate, env)
    assert "Data and pipelines are up to date" in run([dvc, "status"], teammate, env)
    for path in ("models/cnn.npz", "predictions/ensemble.npz", "reports/report.md", "metrics/scores/cnn.json"):
        assert (teammate / path).read_bytes() == (copy / path).read_bytes()


def test_a_mistake_in_params_is_refused_before_any_output_is_removed(own_copy):
    copy, env = own_copy
    before = output_hashes(copy)
    result = subprocess.run([str(BIN / "dvc"), "exp", "run", "-S", "+cnn.epoch=3"], cwd=copy, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert "check: error: params.yaml: cnn.epoch: unknown key; allowed here: seed, dtype, epochs" in result.stderr
    assert "Running stage 'train_cnn'" not in result.stdout
    assert output_hashes(copy) == before  # models, predictions and metrics all still there
    run(["git", "checkout", "params.yaml"], copy, env)  # the way back the error message names
    assert "Data and pipelines are up to date" in run([str(BIN / "dvc"), "status"], copy, env)


def test_a_bad_source_stops_the_pipeline_with_one_line_and_writes_nothing(own_copy, tmp_path):
    copy, env = own_copy
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train.csv").write_text("label,pixel0\n1,2\n")
    (bad / "test.csv").write_text("pixel0\n1\n")
    result = subprocess.run([str(BIN / "dvc"), "exp", "run", "-S", f"data.source={bad}"], cwd=copy, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert f"download: error: {bad}:train.csv: the header has 2 columns, expected 785" in result.stderr
    raw = copy / "data" / "raw"
    assert not raw.exists() or not any(raw.iterdir())  # validation happens before anything is written
