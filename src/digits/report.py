"""reports/report.md: the table of scores per model, and links to the figures."""
from __future__ import annotations

COLUMNS = ("accuracy", "precision_macro", "recall_macro", "f1_macro")


def render(results: dict[str, dict], train_seconds: dict[str, float]) -> str:
    """Markdown report from evaluate's results ({model: {"val": scores, "test": {...}}}) and training times (s)."""
    has_test = any("test" in r for r in results.values())
    head = ["model", "val accuracy", "val precision", "val recall", "val F1"]
    head += ["test accuracy"] if has_test else []
    head += ["training time (s)"]
    lines = ["# Evaluation report", "",
             "Scores on the validation split (macro averages over the ten digits)"
             + ("; test accuracy where the test labels are known." if has_test else "."), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model, r in results.items():
        cells = [model] + [f"{r['val'][c]:.4f}" for c in COLUMNS]
        cells += [f"{r['test']['accuracy']:.4f}" if "test" in r else "—"] if has_test else []
        cells += [f"{train_seconds[model]:.1f}" if model in train_seconds else "—"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Figures", ""]
    lines += [f"- {m}: [training curves](figures/{m}_curves.png)" for m in results if m in ("cnn", "resnet")]
    lines += [f"- {m}: [confusion matrix](figures/confusion/{m}.png)" for m in results]
    return "\n".join(lines) + "\n"
