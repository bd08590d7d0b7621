"""Stage `train_cnn`: train the numpy CNN declared in params.yaml; model, probabilities, metrics, curves."""
import numpy as np

from digits import nn
from digits.data import load_split, to_float
from digits.errors import DigitsError
from digits.progress import progress
from digits.stages.common import METRICS, MODELS, PREPARED, epoch_log, save_predictions, stage
from digits.io import write_json

OPTIMIZERS = {"sgd": lambda params, p: nn.SGD(params, lr=p["lr"], momentum=p["momentum"]),
              "adam": lambda params, p: nn.Adam(params, lr=p["lr"])}


@stage("train_cnn")
def main(params: dict) -> None:
    p = params["cnn"]
    if p["optimizer"] not in OPTIMIZERS:
        raise DigitsError(f"params.yaml: cnn.optimizer is {p['optimizer']!r}, expected one of {sorted(OPTIMIZERS)}")
    x_train, y_train = load_split(PREPARED / "train.npz")
    x_val, y_val = load_split(PREPARED / "val.npz")
    x_test, _ = load_split(PREPARED / "test.npz")
    x_train, x_val, x_test = to_float(x_train), to_float(x_val), to_float(x_test)

    model = nn.build(p["layers"], input_shape=x_train.shape[1:], seed=p["seed"])
    optimizer = OPTIMIZERS[p["optimizer"]](model.parameters(), p)
    schedule = nn.StepLR(optimizer, step_size=p["lr_step"], gamma=p["lr_gamma"])
    rng = np.random.default_rng(p["seed"])
    with epoch_log("cnn") as log:
        for _ in progress(range(p["epochs"]), "train_cnn", unit="epoch"):
            lr = optimizer.lr
            loss, accuracy = nn.train_epoch(model, optimizer, x_train, y_train, p["batch_size"], rng)
            val_accuracy = float((nn.predict_proba(model, x_val).argmax(1) == y_val).mean())
            log(train_loss=loss, train_accuracy=accuracy, val_accuracy=val_accuracy, lr=lr)
            schedule.step()

    nn.save(model, MODELS / "cnn.npz", p["layers"], x_train.shape[1:])
    save_predictions("cnn", val=nn.predict_proba(model, x_val), test=nn.predict_proba(model, x_test))
    write_json(METRICS / "cnn.json", {"train_loss": round(loss, 6), "train_accuracy": round(accuracy, 6),
                                      "val_accuracy": round(val_accuracy, 6)})
    print(f"train_cnn: {p['epochs']} epochs: validation accuracy {val_accuracy:.4f}")


if __name__ == "__main__":
    main()
