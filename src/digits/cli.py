"""The `digits` command: `digits predict IMAGE [IMAGE ...] [--model cnn|knn|resnet|ensemble]`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from digits.errors import DigitsError
from digits.params import MEMBER_NAME
from digits.preprocess import load_digit
FILES = {"knn": "knn.npz", "resnet": "resnet.pt", "ensemble": "ensemble.json"}  # any other name: a numpy CNN

Predictor = Callable[[np.ndarray], np.ndarray]  # uint8 images (N, 28, 28) -> probabilities (N, 10)


def _model_file(models_dir: Path, model: str) -> Path:
    path = models_dir / FILES.get(model, f"{model}.npz")
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
    if model not in FILES:
        from digits import nn
        from digits.data import to_float
        net = nn.load(path)
        return lambda x: nn.predict_proba(net, to_float(x))
    if model == "knn":
        from digits import knn
        return knn.load(path).predict_proba
    if model == "resnet":
        from digits import resnet
        cpu = resnet.pick_device("cpu")  # a few images: not worth starting an accelerator
        net, settings = resnet.load(path, device=cpu)
        return lambda x: resnet.predict_proba(net, x, device=cpu, tta=settings["tta"])
    from digits import ensemble
    members, weights = ensemble.load(path)
    parts = [predictor(m, models_dir) for m in members]
    return lambda x: ensemble.combine([p(x) for p in parts], weights)


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
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files, one digit each")
    p.add_argument("--model", default="ensemble", type=_model_name,
                   help="which trained model to use: a numpy CNN member (cnn, cnn2, ...: cnn_members in params.yaml), "
                        "knn, resnet or ensemble (default: ensemble, as weighted by the evaluate stage)")
    p.add_argument("--models-dir", type=Path, default=Path("models"),
                   help="folder holding the trained models (default: models, in the project root)")
    args = parser.parse_args(argv)
    names, images, errors = read_images(args.images)
    for line in errors:
        print(f"digits predict: error: {line}", file=sys.stderr)
    if names:
        try:
            proba = predictor(args.model, args.models_dir)(images)
        except DigitsError as e:
            print(f"digits predict: error: {e}", file=sys.stderr)
            sys.exit(1)
        print(table(names, proba))
    if errors:
        sys.exit(1)

if __name__ == "__main__":
    main()
