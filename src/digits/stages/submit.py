"""Stage `submit`: write submissions/<model>.csv (ImageId,Label) from each model's test probabilities."""
from digits.stages.common import load_predictions, stage
from digits.submission import write_submission


@stage("submit")
def main(params: dict) -> None:
    for model in params["submit"]["models"]:
        labels = load_predictions(model)["test"].argmax(axis=1)
        write_submission(f"submissions/{model}.csv", labels)
        print(f"submit: submissions/{model}.csv ({len(labels):,} rows)")


if __name__ == "__main__":
    main()
