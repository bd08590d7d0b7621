"""Fixtures shared by the stage tests."""

import os

import numpy as np
import pytest
from hypothesis import settings

from digits.io import save_npz


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
