"""What produced a run: library versions, the platform and the git commit, for metrics/environment.json."""
from __future__ import annotations

import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version

# What a change must touch to change results; dvc.lock and metrics/ are rewritten by the run itself.
RESULT_PATHS = ("src", "dvc.yaml", "params.yaml", ":(glob)**/*.lock", ":(exclude)dvc.lock")


def environment() -> dict[str, str]:
    """Versions of Python, numpy, torch and torchvision, the platform, and the git commit
    ("+dirty" when RESULT_PATHS differ from it)."""
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("numpy", "torch", "torchvision"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    found["git_commit"] = _git_commit()
    return found


def _git_commit() -> str:
    commit, dirty = git("rev-parse", "HEAD"), git("status", "--porcelain", "--untracked-files=all", "--", *RESULT_PATHS)
    if commit is None or dirty is None:
        return "unknown (not a git checkout)"
    return commit + ("+dirty" if dirty else "")


def git(*args: str) -> str | None:
    """Stripped stdout of a git command, or None when git or the repository is missing."""
    try:
        result = subprocess.run(["git", *args], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip()
