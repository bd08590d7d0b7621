"""`digits results`: one line per model (and experiment) from the metrics DVC records."""
from __future__ import annotations

import re

import pandas as pd

from digits.errors import DigitsError

SCORE = re.compile(r"^metrics/scores/(?P<model>[^/]+)\.json:(?P<key>\w+)$")
COLUMNS = {"val_accuracy": "val accuracy", "val_log_loss": "val log-loss",
           "seen_val_accuracy": "val accuracy (seen, refit)", "test_accuracy": "test accuracy",
           "public_score": "public score", "seconds": "training (s)"}


def rows(record: dict) -> list[dict]:
    """One dict per model from one row of `dvc.api.exp_show()` (flat "file:key" metric columns).

    The public score (metrics/kaggle.json) belongs to the model `submit.model` uploaded; a training
    time to the model whose stage is `train_<model>`. The ensemble comes last. A metric this run lacks
    but another has (e.g. val_accuracy beside a split.refit run's seen_val_accuracy) is left out: DVC
    gives it as None or "None".
    """
    models: dict[str, dict] = {}
    for column, value in record.items():
        found = SCORE.match(column)
        if found and value not in (None, "None"):
            models.setdefault(found["model"], {})[found["key"]] = value
    for model, figures in models.items():
        figures["seconds"] = record.get(f"metrics/time/train_{model}.json:seconds")
        if record.get("submit.model") == model:
            figures["public_score"] = record.get("metrics/kaggle.json:public_score")
    return [{"model": m, **models[m]} for m in sorted(models, key=lambda m: (m == "ensemble", m))]


def table(records: list[dict], with_experiment: bool) -> str:
    """The models of `records` (rows of `dvc.api.exp_show()`) as one text table, without the columns
    that none of them has."""
    lines = []
    for record in records:
        name = record.get("Experiment") or record.get("rev")
        lines += [{"experiment": name, **row} for row in rows(record)]
    if not lines:
        raise DigitsError("no scores recorded yet (metrics/scores/ is empty); run the pipeline first: dvc repro")
    frame = pd.DataFrame(lines).reindex(columns=["experiment", "model", *COLUMNS]).dropna(axis=1, how="all")
    frame = frame.rename(columns=COLUMNS)
    if not with_experiment:
        frame = frame.drop(columns="experiment")
    return frame.to_string(index=False, na_rep="—", float_format=lambda v: f"{v:.4f}",
                           formatters={"training (s)": lambda v: "—" if pd.isna(v) else f"{v:.0f}"})


def summary(every: bool = False) -> str:
    """The workspace's models, or with `every` those of each experiment `dvc exp show` lists."""
    import dvc.api
    from dvc.exceptions import DvcException
    from dvc.scm import SCMError

    try:
        records = dvc.api.exp_show()
    except (DvcException, SCMError) as e:
        raise DigitsError(f"DVC could not read the metrics: {e}") from None
    return table(records if every else records[:1], with_experiment=every)
