"""Stage `train_knn`: search the k-NN grid on the validation split, fit the best (with split.refit: fit the settings
as set on every labelled row); model, probabilities, metrics."""
import pandas as pd

from digits import knn
from digits.io import atomic_path
from digits.params import Params
from digits.stages.common import METRICS, stage
from digits.stages.training import train_member


@stage("train_knn", ("split.refit", *(f"knn.{key}" for key in ("transforms", "n_neighbors", "weights", "metric",
                                                                 "batch_size", "grid"))),
       ("models/knn.npz", "predictions/knn.npz", "metrics/knn.json", "metrics/knn_grid.csv"))
def main(params: Params) -> None:
    model = train_member("knn", knn.KNNModel(), params.knn, refit=params.split.refit)
    table = pd.DataFrame(model.grid_)
    table.insert(0, "setting", [knn.label(row) for row in model.grid_])
    with atomic_path(METRICS / "knn_grid.csv") as tmp:
        table.to_csv(tmp, index=False)


if __name__ == "__main__":
    main()
