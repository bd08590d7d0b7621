"""Stage `train_knn`: which k-NN settings a run uses, and that it says so."""
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from dvc.utils.hydra import apply_overrides

from digits import knn, params
from digits.data import load_split
from digits.stages import train_knn
from digits.stages.common import load_predictions

ROOT = Path(__file__).resolve().parents[1]


def write_params(folder, overrides):
    """The project's params.yaml in `folder`, changed the way `dvc exp run -S` changes it."""
    shutil.copy(ROOT / "params.yaml", folder / "params.yaml")
    apply_overrides(str(folder / "params.yaml"), overrides)
    return yaml.safe_load((folder / "params.yaml").read_text())["knn"]


def test_with_the_grid_off_the_value_set_under_knn_is_used(workdir, capsys):
    found = write_params(workdir, ["split.refit=false", "knn.grid=null", "knn.n_neighbors=3", "knn.weights=distance",
                                   "knn.transforms=[deskew]"])
    assert found["grid"] is None
    train_knn.main()
    out = capsys.readouterr().out
    assert "train_knn: used n_neighbors=3 weights=distance metric=euclidean as set under knn (knn.grid is null" in out
    assert knn.KNNModel.load("models/knn.npz").classifier.n_neighbors == 3


def test_a_value_the_grid_replaces_is_named_with_the_way_to_keep_it(workdir, capsys):
    write_params(workdir, ["split.refit=false", "knn.n_neighbors=3", "knn.transforms=[deskew]",
                           "knn.grid={n_neighbors: [1, 2]}"])
    train_knn.main()
    out = capsys.readouterr().out
    assert "the values set under knn for them (n_neighbors=3) are not used" in out
    assert "-S knn.grid=null" in out
    assert "the best of 2 settings on the validation split" in out


def test_dvc_cannot_empty_the_grid_with_braces_so_null_is_the_documented_way(tmp_path):
    searched = ["split.refit=false", "knn.grid={n_neighbors: [1, 3]}"]
    assert write_params(tmp_path, [*searched, "knn.grid={}"])["grid"]  # DVC merges {} into the grid: no change
    assert write_params(tmp_path, [*searched, "knn.grid=null"])["grid"] is None
    params.load(tmp_path / "params.yaml")


def test_with_refit_the_settings_as_set_fit_every_labelled_row(workdir, capsys):
    write_params(workdir, ["split.refit=true", "knn.grid=null", "knn.n_neighbors=1", "knn.transforms=[deskew]",
                           "evaluate.ensemble.weights=[1,1,1,1]"])
    train_knn.main()
    assert "used n_neighbors=1 weights=uniform metric=euclidean as set under knn, on all 88 labelled rows " \
           "(split.refit)" in capsys.readouterr().out
    assert len(knn.KNNModel.load("models/knn.npz").classifier.X_fit_) == 64 + 24  # training and validation rows
    y_val = load_split(workdir / "data/prepared/val.npz")[1]
    assert (load_predictions("knn")["val"].argmax(axis=1) == y_val).all()  # one neighbour: each row itself
    assert "val_accuracy" not in json.loads(Path("metrics/knn.json").read_text())
    assert pd.read_csv("metrics/knn_grid.csv").empty
