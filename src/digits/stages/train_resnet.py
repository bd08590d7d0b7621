"""Stage `train_resnet`: train a torchvision ResNet adapted to 1x28x28; model, probabilities, metrics, curves.

Runs as one process (`python -m digits.stages.train_resnet`) or data-parallel under
`torchrun --standalone --nproc_per_node=N -m digits.stages.train_resnet`, where only rank 0 writes.
"""
from contextlib import nullcontext

from digits.params import Params
from digits.resnet import ResNet
from digits.stages.common import CHECKPOINTS, is_writer, stage
from digits.stages.training import train_member
from digits.stages.epochs import epoch_log


@stage("train_resnet", ("split.refit", *(f"resnet.{key}" for key in ("profile", "profiles", "device", "weights",
                                                                       "seed", "resume", "tta"))),
       ("models/resnet.pt", "predictions/resnet.npz", "dvclive/resnet/", "reports/figures/resnet_curves.png",
        "metrics/resnet.json", "checkpoints/resnet.pt"))
def main(params: Params) -> None:
    with epoch_log("resnet") if is_writer() else nullcontext() as log:
        train_member("resnet", ResNet(), params.resnet, refit=params.split.refit, checkpoint=CHECKPOINTS / "resnet.pt",
                     log=log)


if __name__ == "__main__":
    main()
