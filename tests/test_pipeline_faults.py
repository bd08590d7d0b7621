"""End to end under DVC: two users' runs give byte-identical outputs; a killed dvc, and params changed by another
run, leave no wrong or half-written output behind."""
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from kaggle_standin import client_env
from repo_copy import copy_repo

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.skipif(shutil.which("git") is None or not (BIN / "dvc").exists() or
                                not Path("/proc/self/stat").exists(), reason="needs git, dvc and Linux's /proc")


def run(cmd, cwd, env, check=True):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert not check or result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def clones(tmp_path_factory):
    """The sample pipeline, small and fast, committed, then cloned to two paths and reproduced in each
    under its own HOME; returns [(clone, env)] for both."""
    origin = copy_repo(tmp_path_factory.mktemp("origin"))
    params = yaml.safe_load((origin / "params.yaml").read_text())
    params["cnn"]["epochs"] = 1
    params["knn"]["grid"] = {}
    params["resnet"].update(tta=False)
    params["resnet"]["profiles"]["cpu"].update(epochs=1, stem="stock")
    (origin / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "commit", "-qam", "small sample run"], cwd=origin, check=True)
    found = []
    for user, where in (("ann", "work/digits"), ("bob", "projects/deep/path/my-digits")):
        clone = tmp_path_factory.mktemp(user) / where
        subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True, capture_output=True)
        env = client_env(tmp_path_factory.mktemp(f"{user}-home"), credentials=None)  # sample, HOME of its own
        env.update(PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(clone / "src"))
        found.append((clone, env))
    one_thread = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    runs = [subprocess.Popen([str(BIN / "dvc"), "repro"], cwd=clone, env={**env, **one_thread}, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for clone, env in found]  # side by side, a core each
    for dvc in runs:
        out, _ = dvc.communicate(timeout=900)
        assert dvc.returncode == 0, out
    return found


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


def test_two_users_in_two_clone_paths_get_byte_identical_outputs(clones):
    (ann, ann_env), (bob, _) = clones
    ann_outputs, bob_outputs = outputs(ann), outputs(bob)
    assert {"data/raw/source.json", "models/resnet.pt", "reports/report.md", "metrics/environment.json",
            "submissions/ensemble.csv"} <= set(ann_outputs)
    assert ann_outputs == bob_outputs
    for clone, env in clones:
        for text in ((clone / "data/raw/source.json").read_text(), (clone / "reports/report.md").read_text()):
            assert env["HOME"] not in text and str(clone) not in text
    environment = (ann / "metrics" / "environment.json").read_text()
    assert '"git_commit"' in environment and "+dirty" not in environment  # dvc rewrote dvc.lock and the timings


def commit(clone: Path) -> None:
    """Commit the run, as a user does before experimenting."""
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "run", "--allow-empty"],
                   cwd=clone, check=True, capture_output=True)


def back_to_a_good_workspace(clone: Path, env: dict) -> None:
    """The README's way back: the committed params, lock and metrics, and the outputs the lock records."""
    subprocess.run(["git", "checkout", "--", "params.yaml", "dvc.lock", "metrics"], cwd=clone, check=True)
    run([str(BIN / "dvc"), "checkout", "--force"], clone, env)
    assert "Data and pipelines are up to date" in run([str(BIN / "dvc"), "status"], clone, env).stdout


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


def start_long_training(clone: Path, env: dict, *args: str) -> subprocess.Popen:
    """Start `dvc <args>` on train_cnn with many epochs; returns it once the first epoch is logged."""
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["cnn"]["epochs"] = 1000
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    first_epoch = clone / "dvclive" / "cnn" / "plots" / "metrics" / "train_loss.tsv"
    first_epoch.unlink(missing_ok=True)
    dvc = subprocess.Popen([str(BIN / "dvc"), *args], cwd=clone, env=env, start_new_session=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not first_epoch.exists() and dvc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert dvc.poll() is None and first_epoch.exists(), "train_cnn did not start training"
    return dvc


def test_a_killed_dvc_takes_its_stage_down_without_half_written_outputs(clones):
    clone, env = clones[0]
    commit(clone)
    lock = (clone / "dvc.lock").read_text()
    dvc = start_long_training(clone, env, "repro", "-f", "-s", "train_cnn")
    try:
        assert stage_processes(clone, "train_cnn")
        os.kill(dvc.pid, signal.SIGTERM)  # dvc only, as `kill -TERM <pid of dvc>` does
        _, err = dvc.communicate(timeout=60)
        deadline = time.monotonic() + 30
        while stage_processes(clone, "train_cnn") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not stage_processes(clone, "train_cnn"), "train_cnn outlived dvc"
    finally:
        if dvc.poll() is None:
            os.killpg(dvc.pid, signal.SIGKILL)
    assert dvc.returncode != 0
    assert "train_cnn: interrupted, and its parent process (dvc) is gone; no output was left half-written" in err
    assert not (clone / "models" / "cnn.npz").exists() and not list(clone.rglob("*.tmp"))
    assert (clone / "dvc.lock").read_text() == lock
    back_to_a_good_workspace(clone, env)


def trained_entry(clone):
    """train_cnn@cnn's record in dvc.lock: the params, deps and outputs DVC holds for the numpy CNN."""
    return yaml.safe_load((clone / "dvc.lock").read_text())["stages"]["train_cnn@cnn"]


def test_params_changed_by_another_run_during_training_are_never_recorded(clones):
    clone, env = clones[0]
    commit(clone)
    lock = trained_entry(clone)
    model = (clone / "models" / "cnn.npz").read_bytes()
    dvc = start_long_training(clone, env, "repro", "train_cnn")
    try:
        params = yaml.safe_load((clone / "params.yaml").read_text())
        params["cnn"]["seed"] += 1  # as a second `dvc exp run -S cnn.seed=...` in this workspace does
        (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        _, err = dvc.communicate(timeout=180)
    finally:
        if dvc.poll() is None:
            os.killpg(dvc.pid, signal.SIGKILL)
    assert dvc.returncode != 0
    assert "train_cnn: error: params.yaml: cnn changed while train_cnn ran" in err
    assert trained_entry(clone) == lock and not list(clone.rglob("*.tmp"))  # check's entry may move on
    assert "train_cnn" in run([str(BIN / "dvc"), "status"], clone, env).stdout  # not "up to date"
    back_to_a_good_workspace(clone, env)
    assert (clone / "models" / "cnn.npz").read_bytes() == model
