"""Where the raw competition files come from: Kaggle, the original MNIST, the bundled sample, a local zip or folder.

Every source yields the same thing, a `RawFiles`: the bytes of train.csv, test.csv and
sample_submission.csv (plus solution.csv when the source knows the test labels), each
already validated, so the download stage only has to write them out.
"""
from __future__ import annotations

import hashlib
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.error import URLError

import numpy as np
import pandas as pd
from scipy import ndimage
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from digits import kaggle
from digits.data import PIXELS, SIDE, parse_digits, parse_labels
from digits.errors import DigitsError
from digits.submission import submission_csv

REQUIRED = ("train.csv", "test.csv")
OPTIONAL = ("sample_submission.csv", "solution.csv")
MAX_MEMBER_BYTES = 1 << 30  # refuse archive members that would unpack past 1 GiB


@dataclass
class RawFiles:
    """The competition files of one source: file name -> CSV bytes, their row counts, and where they came from."""

    source: str
    files: dict[str, bytes] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    details: dict = field(default_factory=dict)  # recorded in source.json beside the source

    def manifest(self) -> dict:
        """What `source.json` records: the source and its details, and each file's rows and sha256."""
        return {
            "source": self.source,
            **self.details,
            "files": {name: {"rows": self.rows[name], "sha256": hashlib.sha256(raw).hexdigest()}
                      for name, raw in sorted(self.files.items())},
        }


def fetch(source: str, competition: str = "digit-recognizer", mnist_root: str = "~/.cache/mnist") -> RawFiles:
    """Fetch and validate the files named by `data.source`: auto, kaggle, mnist, sample, or a path to a zip or folder.

    `competition` is the Kaggle competition for "kaggle" and "auto"; `mnist_root` the
    torchvision MNIST folder for "mnist".
    """
    if source == "auto":
        if kaggle.find_credentials() is None:
            raw = validated("sample", sample_files())
            raw.details = {"requested": "auto", "note": auto_note()}
            return raw
        raw = from_kaggle(competition)
        raw.details["requested"] = "auto"
        return raw
    if source == "kaggle":
        return from_kaggle(competition)
    if source == "mnist":
        return from_mnist(mnist_root)
    if source == "sample":
        return validated(source, sample_files())
    path = Path(source).expanduser()
    if path.is_dir():
        return validated(source, _read_folder(path))
    if path.is_file():
        return validated(source, _read_zip(path))
    raise DigitsError(
        f"data.source: {source!r} is not auto, kaggle or mnist, and neither 'sample' nor an existing zip file "
        "or folder; set it in params.yaml to one of those names or to the path of the Kaggle download")


def auto_note() -> str:
    """Why `auto` fell back to the sample, and how to switch to the competition data (no user's paths in it)."""
    return ("data.source is 'auto' and no Kaggle credentials were found, so this run used the small bundled "
            "SAMPLE, not the competition data. To use the competition data: set up Kaggle credentials "
            "(README, section \"Kaggle\"), then run `dvc exp run -S data.source=kaggle`; or download the zip "
            "yourself and run `dvc exp run -S data.source=PATH/TO/digit-recognizer.zip`")


def from_kaggle(competition: str) -> RawFiles:
    """The competition's files through the Kaggle API, checked against Kaggle's file list before they are read.

    The archive goes to a temporary folder that is removed afterwards; `source.json` records the
    competition and the archive's name, size and sha256 (not the time, so equal downloads give equal files).
    """
    session = kaggle.Kaggle(competition)
    with tempfile.TemporaryDirectory(prefix="digits-kaggle-") as tmp:
        archive, listed = session.download(Path(tmp))
        check_download(archive, listed)
        files = _read_zip(archive)
        details = {
            "competition": competition,
            "archive": {"name": archive.name, "bytes": archive.stat().st_size,
                        "sha256": hashlib.sha256(archive.read_bytes()).hexdigest()},
        }
    raw = validated("kaggle", files)
    raw.details = details
    return raw


def check_download(archive: Path, listed: dict[str, int]) -> None:
    """Refuse a downloaded archive that is not a zip, has an absolute or parent (..) member name,
    or whose members' sizes differ from the sizes Kaggle lists for the competition's files (name -> bytes)."""
    try:
        with zipfile.ZipFile(archive) as z:
            sizes = {info.filename: info.file_size for info in z.infolist()}
    except (zipfile.BadZipFile, EOFError) as e:
        raise DigitsError(f"{archive.name} from Kaggle: not a readable zip file ({e}); rerun the download") from None
    escaping = escaping_member(sizes)
    if escaping:
        raise DigitsError(f"{archive.name} from Kaggle: member {escaping!r} has an absolute or parent path, "
                          "expected names inside the archive; nothing was extracted")
    for name, size in sorted(listed.items()):
        if name not in sizes:
            raise DigitsError(f"{archive.name} from Kaggle: no member {name}, which Kaggle lists for the "
                              "competition; rerun the download")
        if size and sizes[name] != size:
            raise DigitsError(f"{archive.name} from Kaggle:{name}: unpacks to {sizes[name]} bytes, "
                              f"Kaggle lists {size}; rerun the download")


def escaping_member(names) -> str | None:
    """The first archive member name that is absolute or climbs out with "..", or None."""
    for name in names:
        path = PurePosixPath(name.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or ":" in name:
            return name
    return None


def from_mnist(root: str) -> RawFiles:
    """The original MNIST (60,000 train, 10,000 test images) through torchvision, with the test labels as solution.csv.

    Reads `root`/MNIST/raw/*-ubyte; when those files are missing, torchvision downloads them there.
    """
    from torchvision.datasets import MNIST

    folder = Path(root).expanduser()
    splits = {}
    for train in (True, False):
        try:
            data = MNIST(folder, train=train, download=True)
        except (RuntimeError, URLError, OSError, ValueError) as e:
            reason = str(e).strip().splitlines()[0]
            raise DigitsError(
                f"data.mnist_root: {folder / 'MNIST' / 'raw'} lacks readable MNIST files and they could not be "
                f"downloaded ({reason}); copy train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte there, or run on a machine with internet access") from None
        splits[train] = (data.data.numpy().astype(np.uint8), data.targets.numpy().astype(np.uint8))
    (x_train, y_train), (x_test, y_test) = splits[True], splits[False]
    raw = validated("mnist", {
        "train.csv": _digits_csv(x_train, y_train),
        "test.csv": _digits_csv(x_test, None),
        "solution.csv": submission_csv(y_test),
    })
    raw.details = {"mnist_root": root}  # as given in params.yaml (e.g. ~/.cache/mnist), not this user's path
    return raw


def validated(source: str, files: dict[str, bytes]) -> RawFiles:
    """Check every file's format and that the files agree with each other; count rows."""
    raw = RawFiles(source, dict(files))
    x_train, _ = parse_digits(files["train.csv"], _name(source, "train.csv"), labelled=True)
    x_test, _ = parse_digits(files["test.csv"], _name(source, "test.csv"), labelled=False)
    raw.rows = {"train.csv": len(x_train), "test.csv": len(x_test)}
    if "sample_submission.csv" not in files:
        raw.files["sample_submission.csv"] = submission_csv(np.zeros(len(x_test), dtype=np.uint8))
    for name in OPTIONAL:
        if name in raw.files:
            raw.rows[name] = len(parse_labels(raw.files[name], _name(source, name), n_rows=len(x_test)))
    return raw


def _name(source: str, member: str) -> str:
    return member if source == "sample" else f"{source}:{member}"


def _read_folder(path: Path) -> dict[str, bytes]:
    missing = [n for n in REQUIRED if not (path / n).is_file()]
    if missing:
        raise DigitsError(f"{path}: missing {', '.join(missing)}; expected a folder laid out like the Kaggle download")
    return {n: (path / n).read_bytes() for n in REQUIRED + OPTIONAL if (path / n).is_file()}


def _read_zip(path: Path) -> dict[str, bytes]:
    """Read the known top-level members of a zip; nothing is extracted to disk."""
    try:
        with zipfile.ZipFile(path) as z:
            members = {info.filename: info for info in z.infolist()}
            escaping = escaping_member(members)
            if escaping:
                raise DigitsError(f"{path}: member {escaping!r} has an absolute or parent path, expected names "
                                  "inside the archive; nothing was extracted")
            missing = [n for n in REQUIRED if n not in members]
            if missing:
                raise DigitsError(
                    f"{path}: the zip has no {', '.join(missing)} at its top level; "
                    "expected the Kaggle download (train.csv, test.csv, sample_submission.csv)")
            files = {}
            for name in REQUIRED + OPTIONAL:
                if name in members:
                    if members[name].file_size > MAX_MEMBER_BYTES:
                        raise DigitsError(
                            f"{path}:{name}: unpacks to {members[name].file_size} bytes, "
                            f"expected at most {MAX_MEMBER_BYTES}")
                    files[name] = z.read(name)
            return files
    except (zipfile.BadZipFile, EOFError) as e:
        raise DigitsError(f"{path}: not a readable zip file ({e}); expected the Kaggle download or a folder") from None


def _digits_csv(images: np.ndarray, labels: np.ndarray | None) -> bytes:
    """Images uint8 (N, 28, 28) and optional labels -> competition CSV bytes."""
    frame = pd.DataFrame(images.reshape(len(images), -1), columns=PIXELS)
    if labels is not None:
        frame.insert(0, "label", labels)
    return frame.to_csv(index=False, lineterminator="\n").encode()


def sample_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (1,797 images, 0-16) as MNIST-like uint8 (N, 28, 28) and labels.

    Each image is resampled bilinearly to 20x20, scaled to 0-255 and centred in a
    28x28 frame with a 4-pixel border, the way MNIST centres its 20x20 digits.
    """
    digits = load_digits()
    big = ndimage.zoom(digits.images, (1, 20 / 8, 20 / 8), order=1, grid_mode=True, mode="nearest")
    big = np.clip(np.rint(big * (255 / 16)), 0, 255).astype(np.uint8)
    images = np.zeros((len(big), SIDE, SIDE), dtype=np.uint8)
    images[:, 4:24, 4:24] = big
    return images, digits.target.astype(np.uint8)


def sample_files(test_fraction: float = 0.3, seed: int = 0) -> dict[str, bytes]:
    """The bundled sample in the competition's layout (`validated` adds sample_submission.csv), with the
    test labels as solution.csv."""
    images, labels = sample_images()
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_fraction, stratify=labels, random_state=seed)
    return {
        "train.csv": _digits_csv(x_train, y_train),
        "test.csv": _digits_csv(x_test, None),
        "solution.csv": submission_csv(y_test),
    }
