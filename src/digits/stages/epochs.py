"""Per-epoch figures of a training stage: dvclive curves for `dvc plots show` and a PNG of them."""
from contextlib import ExitStack, contextmanager
from typing import Callable, Iterator

from dvclive import Live

from digits.plots import curves_figure
from digits.progress import note
from digits.stages.common import FIGURES


@contextmanager
def epoch_log(model: str) -> Iterator[Callable[..., None]]:
    """Yield `log(**values)`, called once per epoch with train_loss, train_accuracy, val_accuracy, lr.

    Each epoch is one line of the log; values go to dvclive (`dvclive/<model>/plots/metrics/*.tsv`,
    drawn by `dvc plots show`), started at the first epoch, so that settings refused before
    training leave no folder; on exit the curves are also drawn to `reports/figures/<model>_curves.png`.
    """
    history: list[dict[str, float]] = []
    with ExitStack() as stack:
        live = None

        def log(**values: float) -> None:
            nonlocal live
            if live is None:
                live = stack.enter_context(Live(f"dvclive/{model}", dvcyaml=False, save_dvc_exp=False, report=None))
            history.append(values)
            note(f"train_{model}: epoch {len(history)}: " + ", ".join(
                f"{key.replace('_', ' ')} {value:.3g}" if key == "lr" else f"{key.replace('_', ' ')} {value:.4f}"
                for key, value in values.items()))
            for key, value in values.items():
                live.log_metric(key, float(value))
            live.next_step()
        yield log
    curves_figure(history, model, FIGURES / f"{model}_curves.png")
