"""End to end: `dvc repro` in a copy of the repo runs every stage on the bundled sample, then is up to date."""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from digits.data import read_labels
from kaggle_standin import client_env
from repo_copy import copy_repo

BIN = Path(sys.executable).parent


def run(cmd, cwd, env):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A copy of the working tree (tracked and untracked, not ignored) as a fresh git repo, with tiny epochs."""
    if shutil.which("git") is None or not (BIN / "dvc").exists():
        pytest.skip("needs git and dvc installed beside this python")
    copy = copy_repo(tmp_path_factory.mktemp("repo"))
    params = yaml.safe_load((copy / "params.yaml").read_text())
    params["cnn"]["epochs"] = 2
    params["resnet"]["profiles"]["cpu"]["epochs"] = 1
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = client_env(tmp_path_factory.mktemp("kaggle"), credentials=None)  # no Kaggle: data.source auto -> sample
    env.update(PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(copy / "src"))
    return copy, env


@pytest.fixture(scope="module")
def reproduced(repo):
    copy, env = repo
    return run([str(BIN / "dvc"), "repro"], copy, env)


def test_every_stage_runs_and_writes_its_outputs(repo, reproduced):
    copy, _ = repo
    for stage in ("download", "split", "train_cnn", "train_knn", "train_resnet", "evaluate", "submit"):
        assert f"Running stage '{stage}'" in reproduced
        assert json.loads((copy / "metrics" / "time" / f"{stage}.json").read_text())["seconds"] > 0
    source = json.loads((copy / "data" / "raw" / "source.json").read_text())
    n_test = source["files"]["test.csv"]["rows"]
    assert source["source"] == "sample"
    environment = json.loads((copy / "metrics" / "environment.json").read_text())
    assert environment["numpy"] == np.__version__ and len(environment["git_commit"]) >= 40
    for model in ("cnn", "knn", "resnet", "ensemble"):
        labels = read_labels(copy / "submissions" / f"{model}.csv", n_rows=n_test)
        assert labels.max() <= 9
    results = json.loads((copy / "metrics" / "evaluate.json").read_text())
    assert set(results) == {"cnn", "knn", "resnet", "ensemble"}
    assert results["knn"]["val"]["accuracy"] > 0.9  # the sample is easy for k-NN; a broken pipeline scores ~0.1
    assert 0 <= results["ensemble"]["test"]["accuracy"] <= 1
    report = (copy / "reports" / "report.md").read_text()
    assert "| ensemble |" in report
    for figure in ("cnn_curves.png", "resnet_curves.png", "confusion/cnn.png", "confusion/ensemble.png"):
        assert (copy / "reports" / "figures" / figure).read_bytes()[:4] == b"\x89PNG"
    assert (copy / "dvclive" / "cnn" / "plots" / "metrics" / "val_accuracy.tsv").is_file()


def output_hashes(copy):
    """sha256 of every output that must not change between identical runs (timings and logs excluded)."""
    files = [p for d in ("data", "models", "predictions", "submissions") for p in (copy / d).rglob("*") if p.is_file()]
    files += list((copy / "metrics").glob("*.json"))
    return {str(p.relative_to(copy)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_a_forced_rerun_gives_byte_identical_outputs(repo, reproduced):
    copy, env = repo
    before = output_hashes(copy)
    assert {"models/cnn.npz", "models/resnet.pt", "predictions/ensemble.npz", "metrics/evaluate.json"} <= set(before)
    run([str(BIN / "dvc"), "repro", "--force"], copy, env)
    assert output_hashes(copy) == before


def test_a_second_repro_finds_everything_up_to_date(repo, reproduced):
    copy, env = repo
    assert "Data and pipelines are up to date" in run([str(BIN / "dvc"), "status"], copy, env)
    again = run([str(BIN / "dvc"), "repro"], copy, env)
    assert "Running stage" not in again


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_training_leaves_nothing_half_written_and_reruns_cleanly(repo, reproduced, signum):
    copy, env = repo
    params_file = copy / "params.yaml"
    original = params_file.read_text()
    params = yaml.safe_load(original)
    params["cnn"]["epochs"] = 1000
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.rmtree(copy / "dvclive" / "cnn", ignore_errors=True)
    first_epoch = copy / "dvclive" / "cnn" / "plots" / "metrics" / "train_loss.tsv"
    dvc = subprocess.Popen([str(BIN / "dvc"), "repro", "train_cnn"], cwd=copy, env=env, start_new_session=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not first_epoch.exists() and dvc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert dvc.poll() is None, "the stage ended before it could be interrupted"
        os.killpg(dvc.pid, signum)
        _, err = dvc.communicate(timeout=60)
    finally:
        if dvc.poll() is None:
            os.killpg(dvc.pid, signal.SIGKILL)
    assert dvc.returncode != 0
    assert "train_cnn: interrupted" in err
    written = [p.name for d in ("models", "predictions") for p in (copy / d).iterdir()]
    assert "cnn.npz" not in written and not [n for n in written if n.endswith(".tmp")]
    params_file.write_text(original)
    run([str(BIN / "dvc"), "repro"], copy, env)
    assert "Data and pipelines are up to date" in run([str(BIN / "dvc"), "status"], copy, env)


def test_dvc_metrics_show_lists_each_model(repo, reproduced):
    copy, env = repo
    shown = run([str(BIN / "dvc"), "metrics", "show", "--json"], copy, env)
    assert all(f'"{m}"' in shown for m in ("cnn", "knn", "resnet", "ensemble"))


def test_a_bad_source_stops_the_pipeline_with_one_line_and_writes_nothing(repo, reproduced, tmp_path):
    copy, env = repo
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
