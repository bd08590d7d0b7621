"""The submit stage against the Kaggle stand-in: a whole `dvc repro` that uploads and records the score; refusals."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from kaggle_standin import KEY, client_env, standin  # noqa: F401 (fixture)
from needs import require
from repo_copy import copy_repo

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd,
                          capture_output=True, text=True, check=True).stdout.strip()


def set_params(folder: Path, **changes) -> None:
    """Change dotted keys of folder/params.yaml, e.g. set_params(p, **{"submit.upload": True})."""
    params = yaml.safe_load((folder / "params.yaml").read_text())
    for dotted, value in changes.items():
        *path, key = dotted.split(".")
        section = params
        for part in path:
            section = section[part]
        section[key] = value
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def files_holding(folder: Path, secret: str) -> list[str]:
    """The files under `folder` that contain `secret`, except kaggle.json and the tests (which hold the fake key)."""
    return [str(p) for p in folder.rglob("*") if p.is_file() and p.name != "kaggle.json"
            and "tests" not in p.relative_to(folder).parts and secret.encode() in p.read_bytes()]


def test_repro_downloads_trains_uploads_and_records_the_public_score(standin, tmp_path):
    require(shutil.which("git") is not None and (BIN / "dvc").exists(), "git or dvc beside this python")
    repo = copy_repo(tmp_path / "repo")
    commit = git(repo, "rev-parse", "--short", "HEAD")
    set_params(repo, **{"data.source": "kaggle", "cnn.epochs": 1, "cnn.schedule": "step",
                        "cnn_members.cnn2.epochs": 1, "resnet.profiles.cpu.epochs": 1,
                        "submit.upload": True, "submit.wait_seconds": 30})
    env = client_env(tmp_path, standin, credentials="file")
    env.update(PATH=f"{BIN}:{env['PATH']}", PYTHONPATH=str(repo / "src"))

    result = subprocess.run([str(BIN / "dvc"), "repro"], cwd=repo, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr

    csv = (repo / "submissions" / "ensemble.csv").read_bytes()
    assert list(standin.uploads.values()) == [csv]
    assert json.loads((repo / "metrics" / "kaggle.json").read_text()) == {"public_score": 0.98765}
    calls = standin.calls
    assert calls.index("GetSubmissionLimits") < calls.index("StartSubmissionUpload") < calls.index("CreateSubmission")
    assert calls.count("ListSubmissions") == 2  # one PENDING answer, then the score
    accuracy = json.loads((repo / "metrics" / "evaluate.json").read_text())["ensemble"]["val"]["accuracy"]
    description = standin.submissions[0]["description"]
    assert description.startswith(f"ensemble | commit {commit} | ")
    for change in ("cnn.epochs=1", "data.source=kaggle", "submit.upload=True", f"val accuracy {accuracy:.4f}"):
        assert change in description
    assert "knn.n_neighbors" not in description  # unchanged params are not listed
    source = json.loads((repo / "data" / "raw" / "source.json").read_text())
    assert source["source"] == "kaggle" and source["competition"] == "digit-recognizer"
    assert KEY not in result.stdout + result.stderr
    assert files_holding(repo, KEY) == [] and files_holding(tmp_path / "home", KEY) == []


@pytest.fixture
def predicted(tmp_path):
    """A folder where submit can run: predictions for 30 test rows, evaluate.json, a Kaggle source.json."""
    work = tmp_path / "work"
    (work / "predictions").mkdir(parents=True)
    (work / "data" / "raw").mkdir(parents=True)
    (work / "metrics").mkdir()
    shutil.copy(ROOT / "params.yaml", work / "params.yaml")
    rng = np.random.default_rng(0)
    models = yaml.safe_load((work / "params.yaml").read_text())["submit"]["models"]
    for model in models:
        val, test = (rng.dirichlet(np.ones(10), size=n).astype(np.float32) for n in (20, 30))  # class probabilities
        np.savez(work / "predictions" / f"{model}.npz", val=val, test=test)
    scores = {m: {"val": {"accuracy": 0.5}} for m in models}
    (work / "metrics" / "evaluate.json").write_text(json.dumps(scores))
    manifest = {"source": "kaggle", "competition": "digit-recognizer", "files": {"test.csv": {"rows": 30}}}
    (work / "data" / "raw" / "source.json").write_text(json.dumps(manifest))
    set_params(work, **{"submit.upload": True, "submit.wait_seconds": 1})
    return work


def run_submit(work: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "digits.stages.submit"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120)


def error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("made_today, message", [
    (5, "no submissions left today for 'digit-recognizer' (5 made today); the daily allowance resets at 00:00 UTC, "
        "rerun after that"),
    (0, "this Kaggle account has not joined 'digit-recognizer': accept its rules at "
        "https://www.kaggle.com/competitions/digit-recognizer/rules, then rerun"),
], ids=["none left today", "not joined"])
def test_no_submissions_left_stops_before_uploading(standin, predicted, tmp_path, made_today, message):
    standin.allowed_now, standin.made_today = 0, made_today
    assert error_line(run_submit(predicted, client_env(tmp_path, standin))) == f"submit: error: {message}"
    assert "StartSubmissionUpload" not in standin.calls and not standin.uploads
    assert not (predicted / "metrics" / "kaggle.json").exists()


def test_an_unscored_upload_times_out_after_the_bounded_wait(standin, predicted, tmp_path):
    standin.pending_polls = 1000
    line = error_line(run_submit(predicted, client_env(tmp_path, standin)))
    assert line.startswith("submit: error: submission 1000 was not scored within submit.wait_seconds=1.0")
    assert len(standin.uploads) == 1 and not (predicted / "metrics" / "kaggle.json").exists()


@pytest.mark.parametrize("manifest, fragment", [
    ({"source": "sample", "files": {"test.csv": {"rows": 30}}},
     "data/raw came from 'sample', expected the 'digit-recognizer' competition's data"),
    ({"source": "kaggle", "competition": "digit-recognizer", "files": {"test.csv": {"rows": 31}}},
     "submissions/ensemble.csv: found 30 rows, expected 31 (one per test image)"),
], ids=["sample data", "wrong row count"])
def test_an_upload_that_cannot_be_right_is_refused_before_contacting_kaggle(standin, predicted, tmp_path,
                                                                              manifest, fragment):
    (predicted / "data" / "raw" / "source.json").write_text(json.dumps(manifest))
    line = error_line(run_submit(predicted, client_env(tmp_path, standin)))
    assert fragment in line
    assert standin.calls == []


def test_without_upload_nothing_is_sent_and_the_score_file_is_empty(predicted, tmp_path):
    set_params(predicted, **{"submit.upload": False})
    env = client_env(tmp_path, credentials=None)
    result = run_submit(predicted, env)
    assert result.returncode == 0, result.stderr
    assert json.loads((predicted / "metrics" / "kaggle.json").read_text()) == {}
    assert len((predicted / "submissions" / "cnn.csv").read_text().splitlines()) == 31
    assert not Path(env["KAGGLE_CONFIG_DIR"]).exists()  # the kaggle client (which creates it) was never imported
