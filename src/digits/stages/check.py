"""Stage `check`: params.yaml against its schema and every setting that needs no data.

DVC removes a stage's outputs just before it runs the stage, so a mistake found inside
`train_cnn` would cost the last good model. This stage runs first (`download` depends on its
output, every other stage on `download`'s), so a mistake stops the run here with every output
in place. Its output's bytes never change: a valid change of params reruns only the stages
that read it.
"""
import sys
from pathlib import Path

import numpy as np

from digits import ensemble, knn, params
from digits.errors import DigitsError
from digits.features import Transforms
from digits.io import write_text
from digits.nn.recipe import setup

OUT = Path("data/params.checked")


def check_settings(p: dict) -> None:
    """What the stages would refuse in `p` (checked params.yaml) without reading any data."""
    for member in p["cnn_members"]:
        cnn = params.cnn_settings(p, member)
        setup(cnn, (1, 28, 28), np.dtype(cnn["dtype"]), n_train=10**6)  # limits that depend on the data: train_cnn
    Transforms(p["knn"]["transforms"])
    knn.check_grid(p["knn"], p["knn"]["grid"] or {})
    spec = p["evaluate"]["ensemble"]  # its names are checked by digits.params
    if spec["weights"] != "fit":
        ensemble.check_weights(spec["weights"], len(spec["members"]), "params.yaml: evaluate.ensemble")
    submit = p["submit"]
    if submit["upload"] and submit["model"] not in submit["models"]:
        raise DigitsError(f"params.yaml: submit.model is {submit['model']!r}, "
                          f"expected one of submit.models {submit['models']}")


def main() -> None:
    try:
        check_settings(params.load())
    except DigitsError as e:
        where = "" if str(e).startswith("params.yaml") else "params.yaml: "
        print(f"check: error: {where}{e}", file=sys.stderr)
        print("check: no stage ran and no output was removed; fix params.yaml, or `git checkout params.yaml` to go back to "
              "the committed values", file=sys.stderr)
        sys.exit(1)
    write_text(OUT, "params.yaml passed digits.params and the stages' own checks\n")


if __name__ == "__main__":
    main()
