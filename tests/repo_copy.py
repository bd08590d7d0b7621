"""A copy of this project's working tree as a fresh git repo, for tests that run DVC end to end."""
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import yaml

from kaggle_standin import client_env

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # dvc, digits and python of the environment running the tests


def run(cmd: list, cwd: Path, env: dict) -> str:
    """Run `cmd` in `cwd` and return its stdout; fail the test with its output unless it exits 0."""
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def copy_repo(dest: Path) -> Path:
    """Copy the working tree (tracked and untracked, not ignored) to `dest` and commit it there.

    The copy has its own git user, since `dvc exp run` commits and CI may have none configured.
    """
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, listed):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    for args in (["init", "-q"], ["config", "user.name", "digits tests"],
                 ["config", "user.email", "tests@digits.invalid"], ["add", "-A"], ["commit", "-qm", "copy"]):
        subprocess.run(["git", *args], cwd=dest, capture_output=True, text=True, check=True)
    return dest


def sample_env(home: Path, clone: Path) -> dict:
    """The environment of a user whose HOME is `home` (no Kaggle credentials) running the pipeline in `clone`."""
    home.mkdir(parents=True, exist_ok=True)
    env = client_env(home, credentials=None)
    env.update(PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(clone / "src"))
    return env


@contextmanager
def long_training(clone: Path, env: dict, *args: str):
    """`dvc <args>` on train_cnn with cnn.epochs at 1000, in a process group of its own, given once its first epoch
    is logged; the group is killed on the way out if dvc still runs."""
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["cnn"]["epochs"] = 1000
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    first_epoch = clone / "dvclive" / "cnn" / "plots" / "metrics" / "train_loss.tsv"
    first_epoch.unlink(missing_ok=True)
    dvc = subprocess.Popen([str(BIN / "dvc"), *args], cwd=clone, env=env, start_new_session=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not first_epoch.exists() and dvc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert dvc.poll() is None and first_epoch.exists(), "train_cnn did not start training"
        yield dvc
    finally:
        if dvc.poll() is None:
            os.killpg(dvc.pid, signal.SIGKILL)
