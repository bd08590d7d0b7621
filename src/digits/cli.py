"""The `digits` command: `digits predict IMAGE|FOLDER ... [--model cnn|knn|resnet|ensemble]`, `digits results [--all]`,
`digits public-score SCORE`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from digits.errors import DigitsError
from digits.families import family
from digits.params import MEMBER_NAME
from digits.preprocess import load_digit

Predictor = Callable[[np.ndarray], np.ndarray]  # uint8 images (N, 28, 28) -> probabilities (N, 10)


def _model_file(models_dir: Path, model: str) -> Path:
    path = models_dir / ("ensemble.json" if model == "ensemble" else f"{model}{family(model).suffix}")
    if not path.is_file():
        raise DigitsError(f"{path}: no such file; train the models first (dvc repro), "
                          "or point --models-dir at the folder that holds them")
    return path


def predictor(model: str, models_dir: Path) -> Predictor:
    """Load `model` (a numpy CNN member such as "cnn", "knn", "resnet" or "ensemble") from `models_dir`, as the
    pipeline saved it.

    Each model's library is imported only when asked for, so `--model cnn` never waits for torch.
    """
    path = _model_file(models_dir, model)
    if model != "ensemble":
        return family(model).load_class().load(path).predict_proba
    from digits import ensemble
    members, weights = ensemble.load(path)
    used = [(m, w) for m, w in zip(members, weights) if w > 0]  # a member of weight 0 is not even loaded
    parts = [predictor(m, models_dir) for m, _ in used]
    return lambda x: ensemble.combine([p(x) for p in parts], [w for _, w in used])


def project_root(start: Path) -> Path | None:
    """The nearest folder at or above `start` holding dvc.yaml and params.yaml, or None."""
    for folder in (start, *start.parents):
        if (folder / "dvc.yaml").is_file() and (folder / "params.yaml").is_file():
            return folder
    return None


def image_files(paths: list[Path]) -> list[Path]:
    """`paths` with each folder replaced by the image files in it (by extension, sorted by name)."""
    from PIL import Image

    suffixes = {s.lower() for s in Image.registered_extensions()}
    found = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
        else:
            found.append(path)
    return found


def trained_on_sample(models_dir: Path) -> str | None:
    """A warning when the data beside `models_dir` (../data/raw/source.json) is the bundled sample."""
    try:
        source = json.loads((models_dir.parent / "data" / "raw" / "source.json").read_text())["source"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if source != "sample":
        return None
    return ("note: these models were trained on the small bundled sample, so expect mistakes; "
            "train them on the competition's data: dvc exp run -S data.source=kaggle")


def _model_name(text: str) -> str:
    if not MEMBER_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a model name (cnn, cnn2, knn, resnet, ensemble, ...)")
    return text


def read_images(paths: list[Path]) -> tuple[list[str], np.ndarray, list[str]]:
    """The readable files' names and MNIST-style images uint8 (n, 28, 28), and one error line per other file."""
    names, images, errors = [], [], []
    for path in paths:
        try:
            images.append(load_digit(path))
            names.append(str(path))
        except DigitsError as e:
            errors.append(str(e))
    return names, np.array(images, dtype=np.uint8).reshape(-1, 28, 28), errors


def table(names: list[str], proba: np.ndarray) -> str:
    """One row per image: the most probable digit, then the ten probabilities (3 decimals)."""
    frame = pd.DataFrame(proba, index=names, columns=[str(d) for d in range(10)])
    frame.insert(0, "label", proba.argmax(axis=1))
    return frame.to_string(float_format=lambda v: f"{v:.3f}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `digits` console script; exits 1 when any image or model could not be used."""
    parser = argparse.ArgumentParser(prog="digits", description="Use the models the digits pipeline trained.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser(
        "predict", help="classify images of handwritten digits",
        description="Classify PNG or JPEG images of one handwritten digit each: any size, dark ink on a light "
                    "background or light on dark, colour or grey. Each is turned into a 28x28 image the way "
                    "MNIST was made (crop to the ink, fit in 20x20, centre by mass) before the model sees it.")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE",
                   help="image files, one digit each, or folders of them")
    p.add_argument("--model", default="ensemble", type=_model_name,
                   help="which trained model to use: a numpy CNN member (cnn, ...: cnn_members in params.yaml), "
                        "knn, resnet or ensemble (default: ensemble, as weighted by the evaluate stage)")
    p.add_argument("--models-dir", type=Path,
                   help="folder holding the trained models (default: models in the project root, the nearest "
                        "folder at or above the current one that holds dvc.yaml; else ./models)")
    r = commands.add_parser(
        "results", help="one line per model: validation, test and public scores, training time",
        description="Each model's scores as the pipeline recorded them (metrics/), read through DVC.")
    r.add_argument("--all", action="store_true",
                   help="every experiment of the current commit too (what `dvc exp show` lists)")
    k = commands.add_parser(
        "public-score", help="record the public score Kaggle gave a submission made by hand",
        description="Write SCORE to metrics/kaggle.json, as submit does after an upload, for `digits results` "
                    "and `dvc metrics diff`; then `dvc commit -f submit` records it in dvc.lock.")
    k.add_argument("score", type=float, help="the publicScore of `kaggle competitions submissions digit-recognizer`")
    args = parser.parse_args(argv)
    if args.command == "results":
        _results(args.all)
        return
    if args.command == "public-score":
        _public_score(args.score)
        return
    root = project_root(Path.cwd())
    models_dir = args.models_dir or (root or Path.cwd()) / "models"
    names, images, errors = read_images(image_files(args.images))
    for line in errors:
        print(f"digits predict: error: {line}", file=sys.stderr)
    if names:
        try:
            proba = predictor(args.model, models_dir)(images)
        except DigitsError as e:
            where = "" if args.models_dir or root else " (no dvc.yaml here or above: looked in the current folder)"
            print(f"digits predict: error: {e}{where}", file=sys.stderr)
            sys.exit(1)
        print(table(names, proba))
        note = trained_on_sample(models_dir)
        if note:
            print(f"digits predict: {note}", file=sys.stderr)
    elif not errors:
        print("digits predict: error: no image files found in " + ", ".join(map(str, args.images)), file=sys.stderr)
        sys.exit(1)
    if errors:
        sys.exit(1)


def _public_score(score: float) -> None:
    from digits.io import write_json

    root = project_root(Path.cwd())
    if root is None or not 0 <= score <= 1:
        what = "no dvc.yaml here or above" if root is None else f"found {score}, expected a score between 0 and 1"
        print(f"digits public-score: error: {what}", file=sys.stderr)
        sys.exit(1)
    write_json(root / "metrics" / "kaggle.json", {"public_score": score})
    print(f"digits public-score: {score} written to metrics/kaggle.json (the score of submit.model's submission); "
          "record it in dvc.lock with: dvc commit -f submit")


def _results(every: bool) -> None:
    from digits.results import summary

    try:
        print(summary(every))
    except DigitsError as e:
        print(f"digits results: error: {e}", file=sys.stderr)
        sys.exit(1)

if __name__ == "__main__":
    main()
