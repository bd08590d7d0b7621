"""Stage `evaluate`: score every model and their ensemble; confusion data, figures and reports/report.md."""
import json

import numpy as np

from digits import report
from digits.data import load_split
from digits.errors import DigitsError
from digits.io import write_json, write_text
from digits.metrics import confusion_records, scores
from digits.plots import confusion_figure
from digits.stages.common import (FIGURES, METRICS, MODEL_NAMES, PREPARED, REPORTS, load_predictions,
                                  save_predictions, stage)


@stage("evaluate")
def main(params: dict) -> None:
    members = list(params["evaluate"]["ensemble"])
    unknown = sorted(set(members) - set(MODEL_NAMES))
    if not members or unknown:
        raise DigitsError(f"params.yaml: evaluate.ensemble is {members}, expected a non-empty list of {MODEL_NAMES}")
    _, y_val = load_split(PREPARED / "val.npz")
    _, y_test = load_split(PREPARED / "test.npz")
    probs = {m: load_predictions(m) for m in MODEL_NAMES}
    ensemble = {s: np.mean([probs[m][s] for m in members], axis=0) for s in ("val", "test")}
    save_predictions("ensemble", **ensemble)
    probs["ensemble"] = ensemble

    results = {}
    for name, p in probs.items():
        results[name] = {"val": scores(y_val, p["val"])}
        if y_test is not None:
            results[name]["test"] = {"accuracy": scores(y_test, p["test"])["accuracy"]}
        y_pred = p["val"].argmax(axis=1)
        write_json(REPORTS / "confusion" / f"{name}.json", confusion_records(y_val, y_pred))
        confusion_figure(y_val, y_pred, f"{name}: validation split", FIGURES / "confusion" / f"{name}.png")
        print(f"evaluate: {name}: validation accuracy {results[name]['val']['accuracy']:.4f}")
    write_json(METRICS / "evaluate.json", results)
    seconds = {m: json.loads((METRICS / "time" / f"train_{m}.json").read_text())["seconds"] for m in MODEL_NAMES}
    write_text(REPORTS / "report.md", report.render(results, seconds))


if __name__ == "__main__":
    main()
