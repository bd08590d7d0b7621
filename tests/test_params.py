"""params.yaml is checked before any work: the shipped file passes, each kind of mistake gets one line."""
import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from digits import params
from digits.errors import DigitsError
from digits.stages import check

SHIPPED = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())


def broken(change):
    raw = copy.deepcopy(SHIPPED)
    change(raw)
    return raw


def test_the_shipped_params_pass():
    params.check(SHIPPED)


@pytest.mark.parametrize("change, message", [
    (lambda r: r["cnn"].update(epoch=3), r"^p\.yaml: cnn\.epoch: unknown key; allowed here: seed, dtype, epochs,"),
    (lambda r: r["cnn"].update(epochs=-1), r"^p\.yaml: cnn\.epochs: found -1, expected greater than or equal to 1$"),
    (lambda r: r["cnn"].update(epochs="10"), r"cnn\.epochs: found '10', expected a valid integer"),
    (lambda r: r["split"].update(val_fraction=1.0), r"split\.val_fraction: found 1\.0, expected less than 1"),
    (lambda r: r["knn"].update(weights="gaussian"), r"knn\.weights: found 'gaussian', expected 'uniform' or 'distance'"),
    (lambda r: r["resnet"]["profiles"]["cpu"].update(epoch=3), r"resnet\.profiles\.cpu\.epoch: unknown key"),
    (lambda r: r["resnet"].update(profile="tpu"), r"resnet\.profile: found 'tpu', expected one of cpu, gpu"),
    (lambda r: r["evaluate"]["ensemble"].update(members=["cnn", "svm"]),
     r"evaluate\.ensemble\.members: found \['cnn', 'svm'\], expected distinct names of cnn, cnn2, cnn3, knn, resnet$"),
    (lambda r: r["evaluate"]["ensemble"].update(weights=[1, 2]), r"found 2 numbers, expected one per member \(4\)"),
    (lambda r: r["submit"].update(model="svm"), r"submit\.model: found 'svm', expected one of cnn, cnn2, cnn3, knn, resnet, "),
    (lambda r: r["cnn_members"].update(cnn3={"epoch": 3}), r"^p\.yaml: cnn_members\.cnn3\.epoch: unknown key; allowed "
                                                           r"here: seed, dtype, epochs,"),
    (lambda r: r["cnn_members"].update(cnn3={"seed": -1}), r"cnn_members\.cnn3\.seed: found -1, expected greater"),
    (lambda r: r["cnn_members"].update(knn={}), r"cnn_members\.knn: not a usable name"),
    (lambda r: r["cnn"].update(lr=0), r"^p\.yaml: cnn\.lr: found 0, expected greater than 0$"),
    (lambda r: r["submit"].update(upload="yes"), r"submit\.upload: found 'yes', expected a valid boolean"),
    (lambda r: r["data"].pop("source"), r"data\.source: missing"),
    (lambda r: r.update(trian={}), r"^p\.yaml: trian: unknown key; allowed here: data, split, cnn"),
    (lambda r: (r["split"].update(refit=True), r["knn"].update(grid=None),
                r["evaluate"]["ensemble"].update(weights="fit")),
     r"^p\.yaml: evaluate\.ensemble\.weights: 'fit' fits them on the validation split, which split\.refit: true trains "
     r"every member on; give one number per member .* or set split\.refit: false$"),
    (lambda r: (r["split"].update(refit=True), r["knn"].update(grid={"n_neighbors": [1, 3]}),
                r["evaluate"]["ensemble"].update(weights=[1, 1, 1, 1])),
     r"^p\.yaml: knn\.grid: a search on the validation split, which split\.refit: true trains every member on; "
     r"set knn\.grid: null and the values a split\.refit: false run chose \(metrics/knn\.json\), "
     r"or set split\.refit: false$"),
])
def test_each_mistake_is_named_in_one_line(change, message):
    with pytest.raises(DigitsError, match=message) as err:
        params.check(broken(change), "p.yaml")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("refit", [False, True])
def test_refit_takes_fixed_weights_and_no_knn_grid_and_without_it_anything_goes(refit):
    raw = broken(lambda r: (r["split"].update(refit=refit), r["knn"].update(grid=None),
                            r["evaluate"]["ensemble"].update(weights=[0.2, 0.5, 0.25, 0.05])))
    assert params.check(raw).split.refit is refit
    if not refit:
        params.check(broken(lambda r: (r["split"].update(refit=False), r["evaluate"]["ensemble"].update(weights="fit"),
                                       r["knn"].update(grid={"n_neighbors": [1, 3]}))))


def test_a_stage_refuses_bad_params_before_any_work(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(broken(lambda r: r["cnn"].update(epoch=3))))
    result = subprocess.run([sys.executable, "-m", "digits.stages.download"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("download: error: params.yaml: cnn.epoch: unknown key")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_invalid_yaml_is_named(tmp_path):
    (tmp_path / "params.yaml").write_text("cnn: [unclosed\n")
    with pytest.raises(DigitsError, match=r"params\.yaml: not valid YAML"):
        params.load(tmp_path / "params.yaml")


@pytest.mark.parametrize("change, message", [
    (lambda r: r["cnn"].update(epoch=3), r"cnn\.epoch: unknown key"),
    (lambda r: r["cnn"]["layers"].append("softmax"), r"cnn\.layers: .*softmax"),
    (lambda r: r["knn"].update(transforms=["sharpen"]), r"knn\.transforms: .*sharpen"),
    (lambda r: (r["split"].update(refit=False), r["knn"].update(grid={"k": [1]})), r"knn\.grid: unknown key 'k'"),
    (lambda r: r["evaluate"]["ensemble"].update(members=["cnn", "cnn"]), r"evaluate\.ensemble\.members: found \[.cnn., .cnn.\], expected distinct names"),
])
def test_the_check_stage_refuses_what_a_later_stage_would_and_writes_nothing(tmp_path, monkeypatch, capsys,
                                                                            change, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(broken(change)))
    with pytest.raises(SystemExit) as exit_:
        check.main()
    err = capsys.readouterr().err.splitlines()
    assert exit_.value.code == 1 and re.search(message, err[0]) and err[0].startswith("check: error: params.yaml")
    assert "git checkout params.yaml" in err[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_the_check_stage_writes_the_same_bytes_for_any_valid_params(tmp_path, monkeypatch):
    """So that DVC reruns only the stages whose own params changed."""
    monkeypatch.chdir(tmp_path)
    written = []
    for change in (lambda r: None, lambda r: r["cnn"].update(epochs=3), lambda r: r["knn"].update(grid=None)):
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(broken(change)))
        check.main()
        written.append(check.OUT.read_bytes())
    assert len(set(written)) == 1 and written[0]
