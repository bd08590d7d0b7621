"""Stage `train_knn`: search the k-NN grid on the validation split, fit the best; model, probabilities, metrics."""
import pandas as pd

from digits import knn
from digits.data import load_split
from digits.io import atomic_path, write_json
from digits.metrics import scores
from digits.stages.common import METRICS, MODELS, PREPARED, save_predictions, stage

SETTINGS = ("transforms", "n_neighbors", "weights", "metric", "batch_size")


@stage("train_knn", tuple(f"knn.{key}" for key in (*SETTINGS, "grid")),
       ("models/knn.npz", "predictions/knn.npz", "metrics/knn.json", "metrics/knn_grid.csv"))
def main(params: dict) -> None:
    p = params["knn"]  # keys and types checked by digits.params
    x_train, y_train = load_split(PREPARED / "train.npz")
    x_val, y_val = load_split(PREPARED / "val.npz")
    x_test, _ = load_split(PREPARED / "test.npz")

    settings, grid = {key: p[key] for key in SETTINGS}, p["grid"] or {}
    unused = knn.overridden(settings, grid)
    if unused:
        print(f"train_knn: knn.grid searches {', '.join(grid)} on the validation split, so "
              f"the values set under knn for them ({', '.join(f'{k}={v}' for k, v in unused.items())}) are not used; "
              "to use them, turn the search off (-S knn.grid=null) or drop a key from it "
              f"(-S '~knn.grid.{next(iter(grid))}')")
    rows, best, chosen = knn.grid_search((x_train, y_train), (x_val, y_val), settings, grid)
    table = pd.DataFrame(rows)
    table.insert(0, "setting", [_label(row) for row in rows])
    with atomic_path(METRICS / "knn_grid.csv") as tmp:
        table.to_csv(tmp, index=False)

    model = knn.fit_model(x_train, y_train, chosen)
    val, test = model.predict_proba(x_val), model.predict_proba(x_test)
    knn.save(MODELS / "knn.npz", model)
    save_predictions("knn", val=val, test=test)
    accuracy = scores(y_val, val)["accuracy"]
    write_json(METRICS / "knn.json", {**best, "val_accuracy": accuracy})
    used = (f"{_label(best)}, the best of {len(rows)} settings on the validation split" if grid else
            " ".join(f"{key}={chosen[key]}" for key in ("n_neighbors", "weights", "metric"))
            + " as set under knn (knn.grid is null or empty: no search)")
    print(f"train_knn: used {used}; validation accuracy {accuracy:.4f}")


def _label(row: dict) -> str:
    """A grid row's settings as one string, e.g. "n_neighbors=5 weights=distance"."""
    return " ".join(f"{key}={value}" for key, value in row.items() if key != "val_accuracy") or "params"


if __name__ == "__main__":
    main()
