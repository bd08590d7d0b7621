"""Stage `download`: fetch the competition files named by `data.source` into data/raw/."""
import sys

from digits.io import atomic_path, write_json
from digits.kaggle import no_credentials_message
from digits.params import Params
from digits.sources import fetch
from digits.stages.common import RAW, stage


@stage("download", ("data.source", "data.competition", "data.mnist_root"), ("data/raw/",))
def main(params: Params) -> None:
    source = params.data.source
    raw = fetch(source, competition=params.data.competition, mnist_root=params.data.mnist_root)
    for name, content in raw.files.items():
        with atomic_path(RAW / name) as tmp:
            tmp.write_bytes(content)
    write_json(RAW / "source.json", raw.manifest())  # nothing of this user, host, path or time: shareable
    rows = ", ".join(f"{name} {n:,} rows" for name, n in sorted(raw.rows.items()))
    print(f"download: data.source={source} ({raw.source}): {rows}")
    if "note" in raw.details:
        bar = "!" * 100
        print(f"{bar}\ndownload: WARNING: {raw.details['note']}\n({no_credentials_message()})\n{bar}",
              file=sys.stderr)
    elif source == "sample":
        print("download: this is the small bundled sample (scikit-learn's 8x8 digits resampled to 28x28); "
              "for the competition data run: dvc exp run -S data.source=kaggle")


if __name__ == "__main__":
    main()
