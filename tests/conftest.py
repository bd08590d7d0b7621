"""Fixtures shared by the stage tests, and the reproduced sample pipeline shared by the end-to-end tests."""

import os
import shutil
import subprocess

import numpy as np
import pytest
import yaml
from hypothesis import settings

from digits.io import save_npz
from needs import require
from repo_copy import BIN, copy_repo, run, sample_env


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """The current folder, holding a prepared split (train 64, val 24, test 12) of random 'digits'
    whose label is the brightest image row / 3."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 64), ("val", 24), ("test", 12)):
        x = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, size=n).astype(np.uint8)
        x[np.arange(n), 3 * y, :] = 255
        arrays = {"x": x, "y": y} if split != "test" else {"x": x}
        save_npz(tmp_path / "data" / "prepared" / f"{split}.npz", **arrays)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# Under CI, hypothesis draws the same examples every run, so a failure there reproduces on a rerun.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def repo(tmp_path_factory):
    """A copy of the working tree (tracked and untracked, not ignored) as a fresh git repo, with tiny epochs and a
    third numpy CNN member, cnn3, added as the README says: an entry in cnn_members, its files among evaluate's
    and submit's deps, and its name among the ensemble's members and the submissions.  Returns (folder, env):
    env has a HOME of its own without Kaggle credentials, so data.source auto runs the bundled sample."""
    require(shutil.which("git") is not None and (BIN / "dvc").exists(), "git or dvc beside this python")
    copy = copy_repo(tmp_path_factory.mktemp("repo"))
    params = yaml.safe_load((copy / "params.yaml").read_text())
    params["cnn"]["epochs"] = 2
    params["resnet"]["profiles"]["cpu"]["epochs"] = 1
    params["cnn_members"]["cnn2"]["epochs"] = 2
    params["cnn_members"]["cnn4"] = {"seed": 2}
    params["evaluate"]["ensemble"]["members"].insert(3, "cnn4")
    params["evaluate"]["ensemble"]["weights"].insert(3, 0.1)
    params["submit"]["models"].insert(3, "cnn4")
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    pipeline = yaml.safe_load((copy / "dvc.yaml").read_text())
    pipeline["stages"]["evaluate"]["deps"] += ["predictions/cnn4.npz", "metrics/time/train_cnn4.json"]
    pipeline["stages"]["submit"]["deps"] += ["predictions/cnn4.npz"]
    (copy / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    shutil.rmtree(copy / "metrics" / "time")  # committed timings of an earlier run: each stage must write its own
    subprocess.run(["git", "commit", "-qam", "tiny epochs"], cwd=copy, check=True)
    return copy, sample_env(tmp_path_factory.mktemp("home"), copy)


@pytest.fixture(scope="session")
def reproduced(repo):
    """`dvc repro`'s output in the repo, which the tests sharing it only read (the others take an own_copy)."""
    copy, env = repo
    return run([str(BIN / "dvc"), "repro"], copy, env)


@pytest.fixture
def own_copy(repo, reproduced, tmp_path):
    """A copy of the reproduced repo (git, DVC cache and outputs) for a test that changes params or outputs."""
    copy, env = repo
    return shutil.copytree(copy, tmp_path / "repo", symlinks=True), env
