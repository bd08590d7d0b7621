"""Every model family keeps digits.member's protocol: `fit` without a checkpoint or an epoch log, then `save` and
`load` give a model that predicts what `fit` scored on the validation split."""
from pathlib import Path

import numpy as np
import pytest

from digits import params as params_file
from digits.families import OTHERS, family
from digits.member import Fitted

ROOT = Path(__file__).resolve().parents[1]


def small_settings(name: str):
    """params.yaml's settings of member `name`, cut down to seconds of training on a few images."""
    params = params_file.load(ROOT / "params.yaml")
    if name == "cnn":
        return params.cnn_member("cnn").model_copy(update={"epochs": 1, "batch_size": 16, "schedule": "cosine"})
    if name == "knn":
        return params.knn.model_copy(update={"grid": None})
    resnet = params.resnet
    profile = resnet.chosen.model_copy(update={"epochs": 1, "batch_size": 16, "stem": "stock", "bf16": False})
    return resnet.model_copy(update={"profiles": {resnet.profile: profile}, "device": "cpu", "tta": False,
                                     "weights": "none"})


def splits(n_train: int = 64, n_val: int = 20):
    """Random uint8 'digits' whose label is the brightest image row / 3: (train, val) pairs of (N, 28, 28), (N,)."""
    rng = np.random.default_rng(0)
    found = []
    for n in (n_train, n_val):
        x = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
        y = np.arange(n) % 10
        x[np.arange(n), 3 * y, :] = 255
        found.append((x, y.astype(np.uint8)))
    return found


@pytest.mark.parametrize("name", ["cnn", *OTHERS])
def test_fit_save_load_predicts_what_fit_scored(name, tmp_path):
    train, val = splits()
    cls = family(name).load_class()
    member = cls()
    fitted = member.fit(small_settings(name), train, val, checkpoint=None, log=None)
    assert isinstance(fitted, Fitted) and fitted.summary
    assert fitted.val_proba.shape == (len(val[0]), 10) and fitted.val_proba.dtype in (np.float32, np.float64)
    np.testing.assert_allclose(fitted.val_proba.sum(axis=1), 1, rtol=1e-5)
    path = tmp_path / f"{name}{family(name).suffix}"
    member.save(path)
    assert not list(tmp_path.glob("*.tmp"))
    # The same computation on the same machine: equal but for float32 rounding of other batch splits.
    np.testing.assert_allclose(cls.load(path).predict_proba(val[0]), fitted.val_proba, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["cnn", *OTHERS])
def test_fit_without_a_validation_split_scores_nothing_held_out(name):
    train, _ = splits()
    member, logged = family(name).load_class()(), []
    fitted = member.fit(small_settings(name), train, None, checkpoint=None, log=lambda **figures: logged.append(figures))
    assert fitted.val_proba is None and "split.refit" in fitted.summary and f"{len(train[1]):,} labelled" in fitted.summary
    assert not [key for figures in [fitted.metrics, *logged] for key in figures if key.startswith("val")]
    assert member.predict_proba(train[0][:5]).shape == (5, 10)
