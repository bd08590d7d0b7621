"""What produced a run: library versions, the platform and the git commit, for metrics/environment.json."""
from __future__ import annotations

import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version

import yaml

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


def code_commit() -> str | None:
    """The short commit, with " with uncommitted code" when src/ or dvc.yaml differ from it; None outside git."""
    commit = git("rev-parse", "--short", "HEAD")
    if commit is not None and git("status", "--porcelain", "--untracked-files=no", "--", "src", "dvc.yaml"):
        commit += " with uncommitted code"
    return commit


def changed_params(params: dict) -> str:
    """The params that differ from the committed params.yaml, e.g. "cnn.epochs=20, knn.n_neighbors=5".

    A list that changed (e.g. cnn.layers) is named without its value, to keep the line short;
    "params as committed" when none differ.
    """
    committed = git("show", "HEAD:params.yaml")
    if committed is None:
        return "params.yaml not committed"
    base = _flatten(yaml.safe_load(committed) or {})
    return ", ".join(key if isinstance(value, list) else f"{key}={value}"
                     for key, value in sorted(_flatten(params).items())
                     if base.get(key, ...) != value) or "params as committed"


def _flatten(tree: dict, prefix: str = "") -> dict:
    """Nested params -> {"section.key": value}."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
