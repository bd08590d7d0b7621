"""The train_cnn stage on a tiny prepared split: outputs, per-epoch curves, reproducibility, bad settings."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from digits import nn
from digits.stages import train_cnn

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"
SETTINGS = {
    "seed": 0, "dtype": "float32", "epochs": 2, "batch_size": 16, "optimizer": "adamw", "lr": 0.003,
    "momentum": 0.9, "nesterov": True, "weight_decay": 0.0001, "schedule": "onecycle", "lr_step": 1,
    "lr_gamma": 0.5, "warmup": 0.3, "label_smoothing": 0.1, "degrees": 10, "translate": 0.1, "scale": 0.1,
    "layers": [{"conv2d": {"out_channels": 4, "kernel_size": 5, "bias": False}}, {"maxpool2d": {"kernel_size": 2}},
               "batchnorm2d", "relu", {"conv2d": {"out_channels": 6, "kernel_size": 5}}, "relu",
               {"maxpool2d": {"kernel_size": 2}}, "flatten", {"linear": {"out_features": 10}}, {"dropout": {"p": 0.2}},
               {"linear": {"out_features": 10}}],
    "resume": False,
}


def run(workdir, refit=False, **changes):
    """Run the stage with the project's params.yaml, its cnn section replaced by SETTINGS and ``changes``,
    split.refit set to `refit`."""
    params = yaml.safe_load(PARAMS.read_text())
    params["cnn"] = {**SETTINGS, **changes}
    params["split"]["refit"] = refit
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    train_cnn.main()


def test_writes_model_predictions_metrics_and_curves(workdir):
    run(workdir)
    model = nn.load(workdir / "models" / "cnn.npz")
    with np.load(workdir / "predictions" / "cnn.npz") as predictions:
        val, test = predictions["val"], predictions["test"]
    assert val.shape == (24, 10) and test.shape == (12, 10) and val.dtype == np.float32
    with np.load(workdir / "data" / "prepared" / "val.npz") as data:
        x_val, y_val = (data["x"].astype(np.float32) / 255)[:, None], data["y"]
    np.testing.assert_allclose(nn.predict_proba(model, x_val), val, rtol=1e-5, atol=1e-7)
    metrics = json.loads((workdir / "metrics" / "cnn.json").read_text())
    assert set(metrics) == {"train_loss", "train_accuracy", "val_loss", "val_accuracy"}
    assert metrics["val_accuracy"] == pytest.approx(float((val.argmax(1) == y_val).mean()), abs=1e-6)
    curves = workdir / "dvclive" / "cnn" / "plots" / "metrics"
    lrs = [float(line.split("\t")[-1]) for line in (curves / "lr.tsv").read_text().splitlines()[1:]]
    assert len(lrs) == 2 and lrs[0] == pytest.approx(0.003 / 25) and lrs[1] > lrs[0]  # one-cycle warm-up, per epoch
    assert (curves / "val_loss.tsv").is_file()
    assert (workdir / "reports" / "figures" / "cnn_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_with_refit_it_trains_on_the_validation_rows_too_and_scores_no_held_out_rows(workdir, capsys):
    run(workdir, refit=True)
    assert "2 epochs on all 88 labelled rows (split.refit)" in capsys.readouterr().out  # 64 training, 24 validation
    assert set(json.loads((workdir / "metrics" / "cnn.json").read_text())) == {"train_loss", "train_accuracy"}
    curves = workdir / "dvclive" / "cnn" / "plots" / "metrics"
    assert (curves / "train_loss.tsv").is_file() and not list(curves.glob("val_*"))
    with np.load(workdir / "predictions" / "cnn.npz") as predictions:
        assert predictions["val"].shape == (24, 10) and predictions["test"].shape == (12, 10)


def test_same_settings_give_identical_files(workdir):
    run(workdir)
    first = (workdir / "models" / "cnn.npz").read_bytes(), (workdir / "predictions" / "cnn.npz").read_bytes()
    run(workdir)
    assert (workdir / "models" / "cnn.npz").read_bytes() == first[0]
    assert (workdir / "predictions" / "cnn.npz").read_bytes() == first[1]


@pytest.mark.parametrize("schedule, optimizer, dtype", [("step", "sgd", "float64"), ("cosine", "adam", "float32")])
def test_other_schedules_optimizers_and_float64_run(workdir, schedule, optimizer, dtype):
    run(workdir, schedule=schedule, optimizer=optimizer, dtype=dtype, degrees=0, translate=0, scale=0)
    assert nn.load(workdir / "models" / "cnn.npz").parameters()[0][1].dtype == np.dtype(dtype)


@pytest.mark.parametrize(
    "changes, fragments",
    [
        ({"optimizer": "rmsprop"}, ["cnn.optimizer", "rmsprop"]),
        ({"learning_rate": 0.1}, ["cnn.learning_rate"]),
        ({"warmup": 0.01}, ["cnn", "warmup", "no room"]),
        ({"momentum": 0, "optimizer": "sgd"}, ["cnn", "nesterov", "momentum"]),
        ({"layers": [{"conv2d": {"out_channels": 4}}]}, ["cnn.layers", "layer 0", "kernel_size"]),
        ({"layers": ["flatten", {"linear": {"out_features": 10}}, "batchnorm2d"]}, ["cnn.layers", "layer 2"]),
    ],
)
def test_bad_settings_stop_with_one_line_naming_them(workdir, capsys, changes, fragments):
    with pytest.raises(SystemExit) as excinfo:
        run(workdir, **changes)
    assert excinfo.value.code == 1
    message = capsys.readouterr().err.strip()
    assert message.startswith("train_cnn: error: params.yaml") and "\n" not in message
    for fragment in fragments:
        assert fragment in message
    assert not (workdir / "models").exists() and not (workdir / "dvclive").exists()


OUTPUTS = ("models/cnn.npz", "predictions/cnn.npz", "metrics/cnn.json", "dvclive/cnn/plots/metrics/val_accuracy.tsv")


def interrupt_at_epoch(monkeypatch, epoch):
    """Make the stage's training raise KeyboardInterrupt (as Ctrl-C does) when it starts ``epoch`` (from 0)."""
    calls = []
    train_epoch = nn.train_epoch

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == epoch + 1:
            raise KeyboardInterrupt
        return train_epoch(*args, **kwargs)

    monkeypatch.setattr(nn, "train_epoch", interrupted)


def test_resume_after_an_interruption_ends_with_the_same_outputs(workdir, monkeypatch, capsys):
    run(workdir, epochs=3)
    uninterrupted = {name: (workdir / name).read_bytes() for name in OUTPUTS}
    for name in ("models", "predictions", "metrics", "dvclive", "checkpoints"):
        shutil.rmtree(workdir / name)

    with monkeypatch.context() as patch:
        interrupt_at_epoch(patch, 2)
        with pytest.raises(SystemExit) as excinfo:
            run(workdir, epochs=3)
    assert excinfo.value.code == 130
    assert not (workdir / "models" / "cnn.npz").exists() and (workdir / "checkpoints" / "cnn.npz").is_file()
    capsys.readouterr()
    run(workdir, epochs=3, resume=True)
    assert "resuming from checkpoints/cnn.npz after 2 of 3 epochs" in capsys.readouterr().out
    assert {name: (workdir / name).read_bytes() for name in OUTPUTS} == uninterrupted


def test_resume_of_a_finished_run_rewrites_the_same_outputs(workdir):
    run(workdir)
    finished = {name: (workdir / name).read_bytes() for name in OUTPUTS}
    run(workdir, resume=True)
    assert {name: (workdir / name).read_bytes() for name in OUTPUTS} == finished


def test_resume_without_a_checkpoint_starts_afresh(workdir, capsys):
    run(workdir, resume=True)
    assert "no checkpoint at checkpoints/cnn.npz; starting from the first epoch" in capsys.readouterr().out
    assert (workdir / "models" / "cnn.npz").is_file()


@pytest.mark.parametrize(
    "spoil, fragment",
    [
        (lambda path: None, "checkpoints/cnn.npz: made with other training settings or data (lr); "
                            "delete it or set cnn.resume to false"),
        (lambda path: path.write_bytes(b"PK\x03\x04 truncated"), "checkpoints/cnn.npz: not a training checkpoint"),
        (lambda path: np.save(path.open("wb"), np.array([{"code": "runs on load"}], dtype=object)),
         "checkpoints/cnn.npz: not a training checkpoint"),
    ],
)
def test_resume_refuses_a_foreign_or_broken_checkpoint(workdir, capsys, spoil, fragment):
    run(workdir)
    spoil(workdir / "checkpoints" / "cnn.npz")
    capsys.readouterr()
    with pytest.raises(SystemExit) as excinfo:
        run(workdir, resume=True, lr=0.01)
    assert excinfo.value.code == 1
    message = capsys.readouterr().err.strip()
    assert message.startswith("train_cnn: error: ") and "\n" not in message and fragment in message


def test_each_member_trains_the_shared_network_with_its_own_overrides(workdir, capsys):
    params = yaml.safe_load(PARAMS.read_text())
    params["cnn"] = {**SETTINGS, "epochs": 1}
    params["cnn_members"] = {"cnn": {}, "wide": {"seed": 1, "epochs": 2}}
    params["evaluate"]["ensemble"]["members"] = params["submit"]["models"] = ["cnn", "wide"]
    params["evaluate"]["ensemble"]["weights"] = [1, 1]
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    train_cnn.main(["wide"])
    assert "train_wide: 2 epochs" in capsys.readouterr().out
    assert json.loads((workdir / "metrics" / "time" / "train_wide.json").read_text())["seconds"] > 0
    assert len((workdir / "dvclive" / "wide" / "plots" / "metrics" / "lr.tsv").read_text().splitlines()) == 3
    train_cnn.main()  # the first member, cnn: seed 0, one epoch
    wide, cnn = nn.load(workdir / "models" / "wide.npz"), nn.load(workdir / "models" / "cnn.npz")
    assert not np.array_equal(wide.parameters()[0][1], cnn.parameters()[0][1])  # another seed
    assert (workdir / "checkpoints" / "wide.npz").is_file() and (workdir / "predictions" / "wide.npz").is_file()
    capsys.readouterr()

    with pytest.raises(SystemExit) as exit_:
        train_cnn.main(["narrow"])
    assert exit_.value.code == 1
    assert capsys.readouterr().err == ("train_narrow: error: params.yaml: cnn_members has no member 'narrow'; "
                                       "it has cnn, wide\n")
