"""End to end under DVC, in a copy of the reproduced sample repo (conftest's `own_copy`): a killed dvc, and params
changed by another run, leave no wrong or half-written output behind."""
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from repo_copy import BIN, long_training, run

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")


def commit(clone: Path) -> None:
    """Commit the run (dvc.lock and every metrics file, the timings too), as a user does before experimenting."""
    subprocess.run(["git", "add", "dvc.lock", "metrics"], cwd=clone, check=True)
    subprocess.run(["git", "commit", "-qm", "run", "--allow-empty"], cwd=clone, check=True, capture_output=True)


def back_to_a_good_workspace(clone: Path, env: dict) -> None:
    """The README's way back: the committed params, lock and metrics, and the outputs the lock records."""
    subprocess.run(["git", "checkout", "--", "params.yaml", "dvc.lock", "metrics"], cwd=clone, check=True)
    run([str(BIN / "dvc"), "checkout", "--force"], clone, env)
    assert "Data and pipelines are up to date" in run([str(BIN / "dvc"), "status"], clone, env)


def stage_processes(clone: Path, stage: str) -> list[int]:
    """Pids of `python -m digits.stages.<stage>` running in `clone`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if f"digits.stages.{stage}" in (proc / "cmdline").read_text() and \
                    Path(os.readlink(proc / "cwd")) == clone:
                found.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return found


def test_a_killed_dvc_takes_its_stage_down_without_half_written_outputs(own_copy):
    clone, env = own_copy
    commit(clone)
    lock = (clone / "dvc.lock").read_text()
    with long_training(clone, env, "repro", "-f", "-s", "train_cnn") as dvc:
        assert stage_processes(clone, "train_cnn")
        os.kill(dvc.pid, signal.SIGTERM)  # dvc only, as `kill -TERM <pid of dvc>` does
        _, err = dvc.communicate(timeout=60)
        deadline = time.monotonic() + 30
        while stage_processes(clone, "train_cnn") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not stage_processes(clone, "train_cnn"), "train_cnn outlived dvc"
    assert dvc.returncode != 0
    assert "train_cnn: interrupted, and its parent process (dvc) is gone; no output was left half-written" in err
    assert not (clone / "models" / "cnn.npz").exists() and not list(clone.rglob("*.tmp"))
    assert (clone / "dvc.lock").read_text() == lock
    back_to_a_good_workspace(clone, env)


def trained_entry(clone):
    """train_cnn@cnn's record in dvc.lock: the params, deps and outputs DVC holds for the numpy CNN."""
    return yaml.safe_load((clone / "dvc.lock").read_text())["stages"]["train_cnn@cnn"]


def test_params_changed_by_another_run_during_training_are_never_recorded(own_copy):
    clone, env = own_copy
    commit(clone)
    lock = trained_entry(clone)
    model = (clone / "models" / "cnn.npz").read_bytes()
    with long_training(clone, env, "repro", "train_cnn") as dvc:
        params = yaml.safe_load((clone / "params.yaml").read_text())
        params["cnn"]["seed"] += 1  # as a second `dvc exp run -S cnn.seed=...` in this workspace does
        (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        _, err = dvc.communicate(timeout=180)
    assert dvc.returncode != 0
    assert "train_cnn: error: params.yaml: cnn changed while train_cnn ran" in err
    assert trained_entry(clone) == lock and not list(clone.rglob("*.tmp"))  # check's entry may move on
    assert "train_cnn" in run([str(BIN / "dvc"), "status"], clone, env)  # not "up to date"
    back_to_a_good_workspace(clone, env)
    assert (clone / "models" / "cnn.npz").read_bytes() == model
