"""Stage `train_cnn@<member>`: train one numpy CNN member of params.yaml's cnn_members; model, probabilities,
metrics, curves.  `python -m digits.stages.train_cnn [MEMBER]` (default: cnn)."""
import sys

from digits.cnn import NumpyCNN
from digits.params import Params
from digits.stages.common import CHECKPOINTS, stage
from digits.stages.training import train_member
from digits.stages.epochs import epoch_log


def main(argv: list[str] | None = None) -> None:
    """Train the member named by the first argument (default: cnn); its timing goes to metrics/time/train_<member>.json."""
    member_stage((argv or ["cnn"])[0])()


def member_stage(member: str):
    """The stage `train_cnn@<member>` as a `main()` (see common.stage), with the params and outputs it owns."""
    outputs = (f"models/{member}.npz", f"predictions/{member}.npz", f"dvclive/{member}/",
               f"reports/figures/{member}_curves.png", f"metrics/{member}.json", f"checkpoints/{member}.npz")

    def body(params: Params) -> None:
        settings = params.cnn_member(member)
        with epoch_log(member) as log:
            train_member(member, NumpyCNN(), settings, refit=params.split.refit,
                         checkpoint=CHECKPOINTS / f"{member}.npz", log=log)
    return stage(f"train_{member}", ("split.refit", "cnn", f"cnn_members.{member}"), outputs)(body)


if __name__ == "__main__":
    main(sys.argv[1:])
