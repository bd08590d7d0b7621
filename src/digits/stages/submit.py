"""Stage `submit`: write submissions/<model>.csv (ImageId,Label); with submit.upload, send one to Kaggle.

The upload is checked first (the file's format against data/raw's test set, which must be the
competition's, and the submissions left today), then polled until scored; the public score goes
to metrics/kaggle.json, which is `{}` when nothing was uploaded.
"""
import json
from pathlib import Path

from digits.data import read_labels
from digits.errors import DigitsError
from digits.io import write_json
from digits.kaggle import Kaggle, submission_message
from digits.params import Params
from digits.stages.common import METRICS, RAW, load_predictions, stage
from digits.submission import write_submission

NOT_COMPETITION_DATA = ("sample", "mnist")  # sources whose test set is not the competition's


@stage("submit", ("data.competition", "submit.models", "submit.upload", "submit.model", "submit.wait_seconds"),
       ("submissions/", "metrics/kaggle.json"))
def main(params: Params) -> None:
    settings = params.submit
    models = settings.models
    predicted = {model: load_predictions(model)["test"].argmax(axis=1) for model in models}  # all checked first
    for model, labels in predicted.items():
        write_submission(f"submissions/{model}.csv", labels)
        print(f"submit: submissions/{model}.csv ({len(labels):,} rows)")
    if not settings.upload:
        write_json(METRICS / "kaggle.json", {})
        print("submit: submit.upload is false: nothing sent to Kaggle")
        return

    model, competition = settings.model, params.data.competition  # among submit.models: digits.params
    csv = Path(f"submissions/{model}.csv")
    read_labels(csv, n_rows=_competition_test_rows(competition))
    evaluation = json.loads((METRICS / "evaluate.json").read_text())
    message = submission_message(model, evaluation[model]["val"]["accuracy"], params.document)

    session = Kaggle(competition)
    left = session.submissions_left()
    ref = session.submit(csv, message)
    print(f"submit: uploaded {csv} to '{competition}' as submission {ref} ({left - 1} left today): {message}")
    scored = session.wait_for_score(ref, float(settings.wait_seconds))
    write_json(METRICS / "kaggle.json", {"public_score": scored.public_score})
    print(f"submit: Kaggle scored submission {ref}: public score {scored.public_score}")


def _competition_test_rows(competition: str) -> int:
    """Rows of data/raw/test.csv, refusing data that is not `competition`'s own test set."""
    manifest = json.loads((RAW / "source.json").read_text())
    source = manifest["source"]
    if source in NOT_COMPETITION_DATA or manifest.get("competition", competition) != competition:
        found = repr(source) + (f" (competition {manifest['competition']!r})" if "competition" in manifest else "")
        raise DigitsError(
            f"{RAW / 'source.json'}: data/raw came from {found}, expected the '{competition}' competition's "
            "data, whose test set an upload must predict; set data.source to kaggle (or to the Kaggle zip), "
            "or submit.upload to false")
    return manifest["files"]["test.csv"]["rows"]


if __name__ == "__main__":
    main()
