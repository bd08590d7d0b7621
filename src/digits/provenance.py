"""What produced a run: library versions, the platform and the git commit, for source.json and the metrics."""
from __future__ import annotations

import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version


def environment() -> dict[str, str]:
    """Versions of Python, numpy, torch and torchvision, the platform, and the git commit ("+dirty" if changed)."""
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("numpy", "torch", "torchvision"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    found["git_commit"] = _git_commit()
    return found


def _git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return commit + ("+dirty" if dirty else "")
