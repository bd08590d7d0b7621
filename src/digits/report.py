"""reports/report.md: the table of scores per model, F1 per digit, and the figures."""
from __future__ import annotations

COLUMNS = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "log_loss")


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]


def _leave_one_out(ensemble: dict, weights_fitted: bool) -> list[str]:
    """What each member earns: the ensemble's validation accuracy without it, and how sure that gain is."""
    without = ensemble.get("without", {})
    if not without:
        return []
    full, interval = ensemble["val"]["accuracy"], ensemble["gain_interval"]
    rows = [[m, f"{ensemble['weights'][m]:g}", f"{a:.4f}", f"{full - a:+.4f}",
             f"{interval[m]['low']:+.4f} to {interval[m]['high']:+.4f}"] for m, a in without.items()]
    again = "fitted again on the others" if weights_fitted else "the others keep theirs"
    return [f"Leave one out (validation split; weights {again}; training times: `metrics/time/`). The interval "
            "is a 95 % paired bootstrap over the validation rows: one that holds 0 means these rows cannot "
            "tell whether the member helps.", "",
            *_table(["member", "weight", "ensemble without it", "its gain", "95 % interval of the gain"], rows), ""]


def render(results: dict[str, dict], per_class: dict[str, dict], curves: list[str], weights_fitted: bool,
           origin: list[str] = (), refit: bool = False) -> str:
    """Markdown report; no wall-clock times, so identical runs give identical reports (timings: metrics/time/).

    results: evaluate.json's content, {model: {"val": scores, "test": {"accuracy"}}} with
    {"weights": {member: weight}, "without": {member: validation accuracy without it}, "gain_interval":
    {member: {"low", "high"}}} under "ensemble"; per_class: {model: {digit: {"f1", ...}}}; curves: the
    models that have `figures/<model>_curves.png`; weights_fitted: whether the ensemble's weights were fitted
    on the validation split; origin: lines saying which data, commit and params the run came from;
    refit: whether every model trained on the validation rows too (split.refit).
    """
    has_test = any("test" in r for r in results.values())
    head = ["model", "val accuracy", "val precision", "val recall", "val F1", "val log-loss"]
    head += ["test accuracy"] if has_test else []
    rows = []
    for model, r in results.items():
        cells = [model] + [f"{r['val'][c]:.4f}" for c in COLUMNS]
        cells += [f"{r['test']['accuracy']:.4f}" if "test" in r else "—"] if has_test else []
        rows.append(cells)
    weights = results["ensemble"]["weights"]
    how = ("fitted on the validation split: the most accurate on a 0.05 grid, then the lowest log-loss; so the "
           "ensemble's validation scores are slightly optimistic" + ("; its test accuracy is not" if has_test else "")
           ) if weights_fitted else "as set in params.yaml"
    lines = ["# Evaluation report", "", *(f"- {line}" for line in origin), *([""] if origin else []),
             "Scores on the validation split: macro averages over the ten digits, log-loss of the probabilities"
             + ("; accuracy on the test split, whose labels are known." if has_test else "."), "",
             *(["**split.refit: every model trained on the validation rows too**, so its validation scores measure "
                "how well it fits rows it has seen, not how it does on new digits; `dvc exp run -S split.refit=false "
                "-S evaluate.ensemble.weights=fit` gives held-out scores.", ""] if refit else []),
             *_table(head, rows), "",
             "Ensemble: " + ", ".join(f"{m} × {w:g}" for m, w in weights.items()) + f" (weights {how}).", "",
             *_leave_one_out(results["ensemble"], weights_fitted),
             "## F1 per digit (validation split)", "",
             *_table(["digit", *per_class], [[d] + [f"{per_class[m][d]['f1']:.4f}" for m in per_class]
                                             for d in next(iter(per_class.values()))]), "",
             "## Figures", "",
             "### Training images", "", "![the first training images](figures/samples.png)", ""]
    if curves:
        lines += ["### Training curves", ""] + [f"![{m} training curves](figures/{m}_curves.png)\n" for m in curves]
    lines += ["### F1 per digit", "", "![F1 per digit and model](figures/f1_per_class.png)", ""]
    for m in results:
        lines += [f"### {m}: confusion matrix and mistakes (validation split)", "",
                  f"![{m} confusion matrix](figures/confusion/{m}.png)", "",
                  f"![{m} mistakes](figures/errors/{m}.png)", ""]
    return "\n".join(lines)
