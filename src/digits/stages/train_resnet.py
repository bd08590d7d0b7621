"""Stage `train_resnet`: train a torchvision ResNet adapted to 1x28x28; model, probabilities, metrics, curves.

Runs as one process (`python -m digits.stages.train_resnet`) or data-parallel under
`torchrun --standalone --nproc_per_node=N -m digits.stages.train_resnet`, where only rank 0 writes.
"""
from contextlib import nullcontext
from pathlib import Path

from digits import resnet
from digits.data import load_split
from digits.io import write_json
from digits.metrics import accuracy
from digits.stages.common import METRICS, MODELS, PREPARED, save_predictions, stage
from digits.stages.epochs import epoch_log

CHECKPOINT = Path("checkpoints/resnet.pt")


@stage("train_resnet", tuple(f"resnet.{key}" for key in ("profile", "profiles", "device", "weights", "seed",
                                                         "resume", "tta")),
       ("models/resnet.pt", "predictions/resnet.npz", "dvclive/resnet/", "reports/figures/resnet_curves.png",
        "metrics/resnet.json", str(CHECKPOINT)))
def main(params: dict) -> None:
    p = params["resnet"]
    arch, stem, config = resnet.config_from(p["profiles"][p["profile"]], p["seed"])
    x_train, y_train = load_split(PREPARED / "train.npz")
    x_val, y_val = load_split(PREPARED / "val.npz")
    x_test, _ = load_split(PREPARED / "test.npz")
    last, scored = {}, {}  # the last epoch's figures and validation probabilities
    with resnet.distributed(p["device"]) as (device, rank):
        model = resnet.build_resnet(arch, stem, seed=p["seed"])
        resnet.load_weights(model, p["weights"], arch)

        def proba(x, tta=False):
            return resnet.predict_proba(model, x, device=device, bf16=config.bf16, tta=tta)

        with epoch_log("resnet") if rank == 0 else nullcontext() as log:
            def on_epoch(epoch: int, loss: float, train_accuracy: float, lr: float) -> dict:
                scored["val"] = proba(x_val)
                val_accuracy = accuracy(y_val, scored["val"])
                figures = {"train_loss": loss, "train_accuracy": train_accuracy, "val_accuracy": val_accuracy, "lr": lr}
                replay([figures])
                return figures

            def replay(history: list) -> None:
                """Log figures of epochs done (again, after resuming from a checkpoint) and keep the last ones."""
                for figures in history:
                    log(**figures)
                last.update({key: value for key, value in history[-1].items() if key != "lr"})

            resnet.train(model, x_train, y_train, config, device=device, on_epoch=on_epoch,
                         checkpoint=CHECKPOINT, resume=p["resume"], on_resume=replay)
    if rank != 0:
        return
    resnet.save(model, MODELS / "resnet.pt", arch, stem, tta=p["tta"])
    if p["tta"] or "val" not in scored:  # not scored yet when every epoch was done before resuming
        scored["val"] = proba(x_val, p["tta"])
    if p["tta"]:
        last["val_accuracy_tta"] = accuracy(y_val, scored["val"])
    save_predictions("resnet", val=scored["val"], test=proba(x_test, p["tta"]))
    write_json(METRICS / "resnet.json", {k: round(v, 6) for k, v in last.items()})
    tta = f", {last['val_accuracy_tta']:.4f} with test-time shifts" if p["tta"] else ""
    print(f"train_resnet: {arch} ({stem} stem) on {device}, {config.epochs} epochs: "
          f"validation accuracy {last['val_accuracy']:.4f}{tta}")


if __name__ == "__main__":
    main()
