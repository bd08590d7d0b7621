"""Stage `train_knn`: fit the numpy k-NN on the training split; probabilities for validation and test."""
import numpy as np

from digits.data import load_split
from digits.io import save_npz, write_json
from digits.knn import KNNClassifier
from digits.metrics import scores
from digits.stages.common import METRICS, MODELS, PREPARED, save_predictions, stage


def features(x: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) -> float32 (N, 784) in [0, 1]."""
    return x.reshape(len(x), -1).astype(np.float32) / 255.0


def class_proba(clf: KNNClassifier, x: np.ndarray) -> np.ndarray:
    """Probabilities (N, 10) over all ten digits, zero for a digit absent from the training split."""
    proba = np.zeros((len(x), 10), dtype=np.float32)
    proba[:, clf.classes_] = clf.predict_proba(features(x))
    return proba


@stage("train_knn")
def main(params: dict) -> None:
    p = params["knn"]
    x_train, y_train = load_split(PREPARED / "train.npz")
    x_val, y_val = load_split(PREPARED / "val.npz")
    x_test, _ = load_split(PREPARED / "test.npz")
    clf = KNNClassifier(n_neighbors=p["n_neighbors"], weights=p["weights"], batch_size=p["batch_size"])
    clf.fit(features(x_train), y_train)
    val, test = class_proba(clf, x_val), class_proba(clf, x_test)
    save_npz(MODELS / "knn.npz", x=x_train, y=y_train,
             n_neighbors=np.int64(p["n_neighbors"]), weights=np.str_(p["weights"]))
    save_predictions("knn", val=val, test=test)
    write_json(METRICS / "knn.json", {"val_accuracy": scores(y_val, val)["accuracy"]})
    print(f"train_knn: k={p['n_neighbors']} ({p['weights']}): validation accuracy {scores(y_val, val)['accuracy']:.4f}")


if __name__ == "__main__":
    main()
