"""`digits predict`: digits drawn as image files are read by models trained here, in a project made in a temp folder."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image, ImageDraw
from sklearn.model_selection import train_test_split

from digits import cli, nn, resnet
from digits.cli import main
from digits.data import to_float
from digits.io import save_npz, write_json
from digits.preprocess import load_digit, to_mnist
from digits.sources import sample_images
from digits.stages import evaluate, train_knn
from digits.stages.common import save_predictions
from needs import require

ROOT = Path(__file__).resolve().parents[1]
SMALL_CNN = [{"conv2d": {"out_channels": 8, "kernel_size": 5}}, "relu", {"maxpool2d": {"kernel_size": 2}},
             "flatten", {"linear": {"out_features": 10}}]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project folder holding the sample's splits, a small numpy CNN, the k-NN, an untrained ResNet and the
    ensemble of CNN and k-NN that the evaluate stage fitted; returns its path and the test split."""
    root = tmp_path_factory.mktemp("project")
    x, y = sample_images()
    x = np.stack([to_mnist(image / 255.0) for image in x])  # trained as MNIST was: on size-normalised digits
    x_train, x_rest, y_train, y_rest = train_test_split(x, y, test_size=0.3, stratify=y, random_state=0)
    x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=0)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["evaluate"]["ensemble"] = {"members": ["cnn", "knn"], "weights": "fit"}
    params["split"]["refit"] = False  # weights fitted on the validation split
    params["cnn_members"] = {"cnn": {}}
    params["submit"]["models"] = ["cnn", "knn", "resnet", "ensemble"]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        Path("params.yaml").write_text(yaml.safe_dump(params))
        for split, xs, ys in (("train", x_train, y_train), ("val", x_val, y_val), ("test", x_test, y_test)):
            save_npz(f"data/prepared/{split}.npz", x=xs, y=ys)
        net = nn.build(SMALL_CNN, (1, 28, 28), seed=0)
        optimizer, rng = nn.Adam(net.parameters(), lr=0.003), np.random.default_rng(0)
        for _ in range(5):
            nn.train_epoch(net, optimizer, to_float(x_train), y_train, 32, rng)
        nn.save(net, "models/cnn.npz", SMALL_CNN, (1, 28, 28))
        save_predictions("cnn", nn.predict_proba(net, to_float(x_val)), nn.predict_proba(net, to_float(x_test)))
        untrained = resnet.build_resnet("resnet18", "stock", seed=0)
        resnet.save(untrained, "models/resnet.pt", "resnet18", "stock", tta=True)
        cpu = resnet.pick_device("cpu")
        save_predictions("resnet", *(resnet.predict_proba(untrained, v, device=cpu) for v in (x_val, x_test)))
        for model in ("cnn", "resnet"):
            write_json(f"metrics/time/train_{model}.json", {"seconds": 1.0})
        train_knn.main()
        evaluate.main()
    return root, x_test, y_test


def run_predict(project, capsys, *args):
    """Run `digits predict ARGS --models-dir <project>/models`: {image: (label, probabilities (10,))}, stderr."""
    main(["predict", *map(str, args), "--models-dir", str(project[0] / "models")])
    out, err = capsys.readouterr()
    rows = [line.split() for line in out.splitlines()[1:]]
    return {Path(r[0]).name: (int(r[1]), np.array(r[2:], float)) for r in rows}, err


def draw(label: int, path: Path, pen: int, dark_on_light: bool = True) -> Path:
    """A digit drawn with straight lines and ellipses on a 200x240 canvas."""
    ink, paper = (0, 255) if dark_on_light else (255, 0)
    img = Image.new("L", (200, 240), paper)
    d = ImageDraw.Draw(img)
    if label == 0:
        d.ellipse((50, 30, 150, 210), outline=ink, width=pen)
    elif label == 2:
        d.arc((50, 20, 150, 120), 180, 330, fill=ink, width=pen)
        d.line((142, 95, 50, 210), fill=ink, width=pen)
        d.line((50, 210, 160, 210), fill=ink, width=pen)
    elif label == 4:
        d.line((120, 30, 40, 150), fill=ink, width=pen)
        d.line((40, 150, 170, 150), fill=ink, width=pen)
        d.line((130, 90, 130, 215), fill=ink, width=pen)
    elif label == 5:
        d.line((60, 30, 150, 30), fill=ink, width=pen)
        d.line((65, 30, 58, 110), fill=ink, width=pen)
        d.arc((50, 90, 150, 215), 240, 150, fill=ink, width=pen)
    img.save(path)
    return path


@pytest.mark.parametrize("model", ["cnn", "knn", "ensemble"])
def test_predict_reads_digits_drawn_with_a_thick_or_a_thin_pen(project, capsys, tmp_path, model):
    paths = [draw(label, tmp_path / f"{label}_{pen}.png", pen, dark_on_light=pen > 8)
             for label in (0, 2, 4, 5) for pen in (4, 16)]
    predicted, err = run_predict(project, capsys, *paths, "--model", model)
    assert "error" not in err  # stderr carries only progress lines
    assert {name: label for name, (label, _) in predicted.items()} == {p.name: int(p.name[0]) for p in paths}


def test_predict_reads_unseen_digits_saved_at_other_sizes_polarities_colours_and_formats(project, capsys, tmp_path):
    root, x_test, y_test = project
    # per digit, the first test image that both models read right and surely from the array itself
    sure = [cli.predictor(m, root / "models")(x_test) for m in ("cnn", "knn")]
    picks = [int(np.flatnonzero((y_test == d) & np.all([p[:, d] > 0.9 for p in sure], axis=0))[0]) for d in range(10)]
    styles = [(140, "L", False, "png"), (61, "RGB", True, "jpg"), (300, "RGBA", True, "png"), (45, "RGB", False, "png")]
    paths = []
    for n, i in enumerate(picks):
        size, mode, dark_on_light, ext = styles[n % len(styles)]
        grey = 255 - x_test[i] if dark_on_light else x_test[i]
        img = Image.fromarray(grey).resize((size, size), Image.Resampling.BICUBIC).convert(mode)
        framed = Image.new(mode, (size + 40, size + 90), img.getpixel((0, 0)))  # a wider margin, off centre
        framed.paste(img, (30, 20))
        framed.save(tmp_path / f"{y_test[i]}.{ext}")
        paths.append(tmp_path / f"{y_test[i]}.{ext}")
    for model in ("cnn", "knn", "ensemble"):
        predicted, _ = run_predict(project, capsys, *paths, "--model", model)
        wrong = {name: label for name, (label, _) in predicted.items() if label != int(name[0])}
        assert len(predicted) == 10 and not wrong, model


def test_the_ensemble_weighs_its_members_as_evaluate_fitted_them(project, capsys, tmp_path):
    paths = [draw(label, tmp_path / f"{label}.png", 12) for label in (0, 2, 4, 5)]
    spec = json.loads((project[0] / "models" / "ensemble.json").read_text())
    assert spec["members"] == ["cnn", "knn"] and sum(spec["weights"]) == pytest.approx(1)
    members = [run_predict(project, capsys, *paths, "--model", m)[0] for m in spec["members"]]
    mixed, _ = run_predict(project, capsys, *paths)  # the default model is the ensemble
    for name, (label, proba) in mixed.items():
        expected = sum(w * m[name][1] for w, m in zip(spec["weights"], members))
        assert proba == pytest.approx(expected, abs=2e-3)  # the table prints three decimals
        assert label == int(np.argmax(proba))


def test_resnet_probabilities_are_those_of_the_saved_model(project, capsys, tmp_path):
    path = draw(4, tmp_path / "4.png", 16)
    predicted, _ = run_predict(project, capsys, path, "--model", "resnet")
    model, settings = resnet.load(project[0] / "models" / "resnet.pt")
    assert settings["tta"]  # predicted with the test-time shifts the pipeline used
    expected = resnet.predict_proba(model, load_digit(path)[None], device=resnet.pick_device("cpu"), tta=True)[0]
    assert predicted["4.png"][1] == pytest.approx(expected, abs=1e-3)
    assert predicted["4.png"][1].sum() == pytest.approx(1, abs=6e-3)


def test_a_bad_file_gets_one_line_and_the_others_are_still_read(project, capsys, tmp_path):
    good = draw(0, tmp_path / "0.png", 16)
    (tmp_path / "notes.png").write_text("not a picture")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(SystemExit) as exit_:
        run_predict(project, capsys, good, tmp_path / "notes.png", tmp_path / "empty.jpg", "--model", "knn")
    assert exit_.value.code == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[1].split()[:2] == [str(good), "0"]
    assert [line for line in err.splitlines() if "error" in line] == [
        f"digits predict: error: {tmp_path / 'notes.png'}: not an image file Pillow can read, "
        "expected a PNG or JPEG image of a digit",
        f"digits predict: error: {tmp_path / 'empty.jpg'}: the file is empty, expected a PNG or JPEG image of a digit"]


def test_a_missing_model_is_named_in_one_line(capsys, tmp_path):
    image = draw(0, tmp_path / "0.png", 16)
    with pytest.raises(SystemExit) as exit_:
        main(["predict", str(image), "--model", "cnn", "--models-dir", str(tmp_path / "nowhere")])
    assert exit_.value.code == 1
    assert capsys.readouterr().err == (f"digits predict: error: {tmp_path / 'nowhere' / 'cnn.npz'}: no such file; train "
                                       "the models first (dvc repro), or point --models-dir at the folder that holds "
                                       "them\n")


def test_the_console_script_is_installed(project, tmp_path):
    script = Path(sys.executable).parent / "digits"
    require(script.exists() or shutil.which("digits") is not None, "the `digits` console script beside this python")
    result = subprocess.run([str(script) if script.exists() else "digits", "predict",
                             str(draw(5, tmp_path / "5.png", 16)), "--model", "cnn"],
                            cwd=project[0], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split() == ["label", *map(str, range(10))]
    assert row.split()[:2] == [str(tmp_path / "5.png"), "5"]


def test_a_folder_of_images_is_read_file_by_file(project, capsys, tmp_path):
    folder = tmp_path / "drawn"
    folder.mkdir()
    for label in (0, 4):
        draw(label, folder / f"{label}.png", 16)
    (folder / "readme.txt").write_text("not an image, and not read")
    predicted, err = run_predict(project, capsys, folder, "--model", "cnn")
    assert {name: label for name, (label, _) in predicted.items()} == {"0.png": 0, "4.png": 4}
    assert "error" not in err


def test_the_models_of_the_project_are_found_from_a_subfolder(project, capsys, tmp_path, monkeypatch):
    root = project[0]
    (root / "dvc.yaml").touch()  # with params.yaml, what marks the project root
    (root / "notes" / "drawings").mkdir(parents=True, exist_ok=True)
    image = draw(4, root / "notes" / "drawings" / "4.png", 16)
    monkeypatch.chdir(root / "notes" / "drawings")
    main(["predict", "4.png", "--model", "cnn"])
    assert capsys.readouterr().out.splitlines()[1].split()[:2] == ["4.png", "4"]
    monkeypatch.chdir(tmp_path)  # no project here or above
    with pytest.raises(SystemExit):
        main(["predict", str(image), "--model", "cnn"])
    assert capsys.readouterr().err.endswith("(no dvc.yaml here or above: looked in the current folder)\n")


def test_models_trained_on_the_sample_say_so_and_a_member_of_weight_zero_is_not_loaded(project, capsys, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(project[0] / "models", models)
    (models / "knn.npz").unlink()
    write_json(models / "ensemble.json", {"members": ["cnn", "knn"], "weights": [1.0, 0.0]})
    write_json(tmp_path / "data" / "raw" / "source.json", {"source": "sample"})
    main(["predict", str(draw(0, tmp_path / "0.png", 16)), "--models-dir", str(models)])
    out, err = capsys.readouterr()
    assert out.splitlines()[1].split()[:2] == [str(tmp_path / "0.png"), "0"]
    assert "k-NN" not in err and "deskew" not in err
    assert "trained on the small bundled sample" in err and "dvc exp run -S data.source=kaggle" in err


def test_a_public_score_from_a_submission_by_hand_is_recorded_where_submit_records_one(tmp_path, monkeypatch, capsys):
    (tmp_path / "dvc.yaml").touch()
    (tmp_path / "params.yaml").touch()
    (tmp_path / "src").mkdir()
    monkeypatch.chdir(tmp_path / "src")
    main(["public-score", "0.99572"])
    assert json.loads((tmp_path / "metrics" / "kaggle.json").read_text()) == {"public_score": 0.99572}
    assert "dvc commit -f submit" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["public-score", "99.5"])
    assert exit_.value.code == 1 and "expected a score between 0 and 1" in capsys.readouterr().err
