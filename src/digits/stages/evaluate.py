"""Stage `evaluate`: score every model and their ensemble; confusion data, figures and reports/report.md."""
import json

from digits import ensemble, report
from digits.data import load_split
from digits.errors import DigitsError
from digits.io import write_json, write_text
from digits.metrics import accuracy, confusion_records, per_class, scores
from digits.params import Params
from digits.provenance import changed_params, code_commit, environment
from digits.plots import confusion_figure, errors_gallery, f1_bars, sample_grid
from digits.stages.common import (FIGURES, METRICS, MODELS, PREDICTIONS, PREPARED, RAW, REPORTS,
                                  load_predictions, save_predictions, stage)


def headline(result: dict, refit: bool) -> dict:
    """The figures runs are compared by (`dvc metrics`, `dvc exp show`): validation accuracy and log-loss,
    test accuracy where the labels are known. With split.refit the models trained on the validation
    rows, so those figures are named seen_val_*: a fit, not comparable with a held-out score."""
    prefix = "seen_" if refit else ""
    figures = {f"{prefix}val_accuracy": result["val"]["accuracy"], f"{prefix}val_log_loss": result["val"]["log_loss"]}
    if "test" in result:
        figures["test_accuracy"] = result["test"]["accuracy"]
    return figures


def origin(params: Params) -> list[str]:
    """Which data, commit and params this run came from, for the head of the report."""
    try:
        manifest = json.loads((RAW / "source.json").read_text())
    except FileNotFoundError:
        data = f"unknown ({RAW / 'source.json'} not found)"
    else:
        rows = manifest["files"]
        data = (f"`{manifest['source']}` (data.source: `{params.data.source}`), "
                f"{rows['train.csv']['rows']:,} labelled and {rows['test.csv']['rows']:,} test images")
        if manifest["source"] == "sample":
            data += (": the small bundled sample, for trying the pipeline, not for ranking models; "
                     "`dvc exp run -S data.source=kaggle` trains on the competition's data")
    return [f"Data: {data}", f"Code: commit {code_commit() or 'unknown (not a git checkout)'}",
            f"Params: {changed_params(params.document)}"]


@stage("evaluate", ("split.refit", "evaluate.ensemble"),
       ("predictions/ensemble.npz", "models/ensemble.json", "reports/confusion/", "reports/figures/confusion/",
        "reports/figures/errors/", "reports/figures/samples.png", "reports/figures/f1_per_class.png",
        "reports/report.md", "metrics/evaluate.json", "metrics/environment.json", "metrics/per_class.json",
        "metrics/scores/"))
def main(params: Params) -> None:
    members, weights = params.evaluate.ensemble.members, params.evaluate.ensemble.weights
    refit = params.split.refit
    val_rows = "validation split, seen in training (split.refit)" if refit else "validation split"
    x_train, y_train = load_split(PREPARED / "train.npz")
    x_val, y_val = load_split(PREPARED / "val.npz")
    x_test, y_test = load_split(PREPARED / "test.npz")
    models = params.model_names()
    probs = {m: load_predictions(m) for m in models}
    for m, p in probs.items():
        for split, n in (("val", len(x_val)), ("test", len(x_test))):
            if len(p[split]) != n:
                raise DigitsError(f"{PREDICTIONS / m}.npz: {split!r} has {len(p[split])} rows, expected {n} "
                                  f"(the {split} split); rerun train_{m} (dvc repro)")

    fitted = weights == "fit"
    if fitted:
        weights = ensemble.fit_weights([probs[m]["val"] for m in members], y_val).tolist()
    weights = [round(w / sum(weights), 6) for w in weights]  # shares of 1, comparable from run to run
    ensemble.save(MODELS / "ensemble.json", members, weights)
    probs["ensemble"] = {s: ensemble.combine([probs[m][s] for m in members], weights) for s in ("val", "test")}
    save_predictions("ensemble", **probs["ensemble"])

    results, classes = {}, {}
    for name, p in probs.items():
        results[name] = {"val": scores(y_val, p["val"])}
        if y_test is not None:
            results[name]["test"] = {"accuracy": round(accuracy(y_test, p["test"]), 6)}
        classes[name] = per_class(y_val, p["val"])
        y_pred = p["val"].argmax(axis=1)
        write_json(REPORTS / "confusion" / f"{name}.json", confusion_records(y_val, y_pred))
        confusion_figure(y_val, y_pred, f"{name}: {val_rows}, accuracy {results[name]['val']['accuracy']:.4f}",
                         FIGURES / "confusion" / f"{name}.png")
        errors_gallery(x_val, y_val, p["val"], name, FIGURES / "errors" / f"{name}.png")
        print(f"evaluate: {name}: accuracy {results[name]['val']['accuracy']:.4f} on the {val_rows}")
    results["ensemble"]["weights"] = dict(zip(members, weights))
    if not refit:  # rows the members trained on cannot tell what each one earns
        right = probs["ensemble"]["val"].argmax(axis=1) == y_val
        without = ensemble.leave_one_out({m: probs[m]["val"] for m in members}, y_val, None if fitted else weights)
        # validation accuracy with each member left out, and the 95 % interval of what it adds: what it earns
        results["ensemble"]["without"] = {m: round(float(rows.mean()), 6) for m, rows in without.items()}
        results["ensemble"]["gain_interval"] = {
            m: dict(zip(("low", "high"), (round(v, 6) for v in ensemble.gain_interval(right, rows))))
            for m, rows in without.items()}
    for name, r in results.items():
        write_json(METRICS / "scores" / f"{name}.json", headline(r, refit))
    write_json(METRICS / "evaluate.json", results)
    write_json(METRICS / "per_class.json", classes)
    write_json(METRICS / "environment.json", environment())

    sample_grid(x_train, y_train, FIGURES / "samples.png")
    f1_bars({m: [c[d]["f1"] for d in sorted(c)] for m, c in classes.items()}, FIGURES / "f1_per_class.png")
    curves = [m for m in models if (FIGURES / f"{m}_curves.png").is_file()]
    write_text(REPORTS / "report.md", report.render(results, classes, curves, fitted, origin(params), refit))
    print(f"evaluate: ensemble of {', '.join(f'{m} × {w:g}' for m, w in zip(members, weights))}")


if __name__ == "__main__":
    main()
