"""Stage `train_resnet`: train a torchvision ResNet adapted to 1x28x28; model, probabilities, metrics, curves."""
from digits import resnet
from digits.data import load_split
from digits.io import write_json
from digits.stages.common import METRICS, MODELS, PREPARED, epoch_log, save_predictions, stage


@stage("train_resnet")
def main(params: dict) -> None:
    p = params["resnet"]
    x_train, y_train = load_split(PREPARED / "train.npz")
    x_val, y_val = load_split(PREPARED / "val.npz")
    x_test, _ = load_split(PREPARED / "test.npz")
    device = resnet.pick_device(p["device"])
    model = resnet.build_resnet(p["arch"], seed=p["seed"])
    last = {}
    with epoch_log("resnet") as log:
        def on_epoch(epoch: int, loss: float, accuracy: float) -> None:
            val_accuracy = float((resnet.predict_proba(model, x_val, device=device).argmax(1) == y_val).mean())
            last.update(train_loss=loss, train_accuracy=accuracy, val_accuracy=val_accuracy)
            log(**last, lr=p["lr"])
        resnet.train(model, x_train, y_train, epochs=p["epochs"], batch_size=p["batch_size"], lr=p["lr"],
                     seed=p["seed"], device=device, on_epoch=on_epoch)

    resnet.save(model, MODELS / "resnet.pt", p["arch"])
    save_predictions("resnet", val=resnet.predict_proba(model, x_val, device=device),
                     test=resnet.predict_proba(model, x_test, device=device))
    write_json(METRICS / "resnet.json", {k: round(v, 6) for k, v in last.items()})
    print(f"train_resnet: {p['arch']} on {device}, {p['epochs']} epochs: "
          f"validation accuracy {last['val_accuracy']:.4f}")


if __name__ == "__main__":
    main()
