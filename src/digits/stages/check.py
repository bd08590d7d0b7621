"""Stage `check`: params.yaml against its schema and every setting that needs no data.

DVC removes a stage's outputs just before it runs the stage, so a mistake found inside
`train_cnn` would cost the last good model. This stage runs first (`download` depends on its
output, every other stage on `download`'s), so a mistake stops the run here with every output
in place. Its output's bytes never change: a valid change of params reruns only the stages
that read it.
"""
import sys
from pathlib import Path

from digits import cnn, knn, params
from digits.errors import DigitsError
from digits.features import Transforms
from digits.io import write_text
from digits.params import Params

OUT = Path("data/params.checked")


def check_settings(p: Params) -> None:
    """What the library would refuse in `p` (checked by digits.params) without reading any data."""
    for member in p.cnn_members:
        cnn.recipe(p.cnn_member(member), (1, 28, 28), n_train=10**6)  # limits that depend on the data: train_cnn
    Transforms(p.knn.transforms)
    knn.check_grid(p.knn.model_dump(exclude={"grid"}), p.knn.grid or {})


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
