"""Stage `train_knn`: which k-NN settings a run uses, and that it says so."""
import shutil
from pathlib import Path

import pytest
import yaml
from dvc.utils.hydra import apply_overrides

from digits import knn, params
from digits.stages import train_knn

ROOT = Path(__file__).resolve().parents[1]


def write_params(folder, overrides):
    """The project's params.yaml in `folder`, changed the way `dvc exp run -S` changes it."""
    shutil.copy(ROOT / "params.yaml", folder / "params.yaml")
    apply_overrides(str(folder / "params.yaml"), overrides)
    return yaml.safe_load((folder / "params.yaml").read_text())["knn"]


def test_with_the_grid_off_the_value_set_under_knn_is_used(workdir, capsys):
    found = write_params(workdir, ["knn.grid=null", "knn.n_neighbors=3", "knn.transforms=[deskew]"])
    assert found["grid"] is None
    train_knn.main()
    out = capsys.readouterr().out
    assert "train_knn: used n_neighbors=3 weights=distance metric=euclidean as set under knn" in out
    assert knn.KNNModel.load("models/knn.npz").classifier.n_neighbors == 3


def test_a_value_the_grid_replaces_is_named_with_the_way_to_keep_it(workdir, capsys):
    write_params(workdir, ["knn.n_neighbors=3", "knn.transforms=[deskew]", "~knn.grid.weights"])
    changed = yaml.safe_load((workdir / "params.yaml").read_text())
    changed["knn"]["grid"] = {"n_neighbors": [1, 2]}
    (workdir / "params.yaml").write_text(yaml.safe_dump(changed))
    train_knn.main()
    out = capsys.readouterr().out
    assert "the values set under knn for them (n_neighbors=3) are not used" in out
    assert "-S knn.grid=null" in out
    assert "the best of 2 settings on the validation split" in out


def test_dvc_cannot_empty_the_grid_with_braces_so_null_is_the_documented_way(tmp_path):
    assert write_params(tmp_path, ["knn.grid={}"])["grid"]  # DVC merges {} into the grid: no change
    assert write_params(tmp_path, ["knn.grid=null"])["grid"] is None
    params.load(tmp_path / "params.yaml")
