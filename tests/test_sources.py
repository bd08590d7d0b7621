"""Data sources: the bundled sample, a local folder, a local zip; bad sources are refused clearly."""
import zipfile
from pathlib import Path

import numpy as np
import pytest

from digits.data import parse_digits, parse_labels
from digits.errors import DigitsError
from digits import sources
from digits.sources import fetch, sample_images
from test_data import csv_bytes, row

SHARED_ZIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "digit-recognizer.zip"


def kaggle_files(n_train=4, n_test=3):
    return {"train.csv": csv_bytes([row(i % 10) for i in range(n_train)]),
            "test.csv": csv_bytes([[0] * 784] * n_test, labelled=False)}


def test_sample_images_look_like_mnist():
    x, y = sample_images()
    assert x.shape == (1797, 28, 28) and x.dtype == np.uint8
    assert sorted(set(y.tolist())) == list(range(10))
    assert x.max() == 255 and x[:, :4].max() == 0 and x[:, :, 24:].max() == 0  # ink inside the 20x20 box


def test_sample_source_has_valid_files_and_a_matching_solution():
    raw = fetch("sample")
    assert set(raw.files) == {"train.csv", "test.csv", "sample_submission.csv", "solution.csv"}
    assert raw.rows["train.csv"] + raw.rows["test.csv"] == 1797
    x_test, _ = parse_digits(raw.files["test.csv"], "test.csv", labelled=False)
    assert len(parse_labels(raw.files["solution.csv"], "solution.csv", n_rows=len(x_test))) == len(x_test)
    manifest = raw.manifest()
    assert manifest["source"] == "sample" and len(manifest["files"]["train.csv"]["sha256"]) == 64


def test_folder_source_reads_the_kaggle_layout_and_adds_a_sample_submission(tmp_path):
    for name, content in kaggle_files().items():
        (tmp_path / name).write_bytes(content)
    raw = fetch(str(tmp_path))
    assert raw.rows == {"train.csv": 4, "test.csv": 3, "sample_submission.csv": 3}
    assert "solution.csv" not in raw.files


def test_zip_source_reads_members_without_extracting(tmp_path):
    archive = tmp_path / "digit-recognizer.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name, content in kaggle_files().items():
            z.writestr(name, content)
    raw = fetch(str(archive))
    assert raw.rows["train.csv"] == 4
    assert sorted(path.name for path in tmp_path.iterdir()) == ["digit-recognizer.zip"]


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil.txt", "data/../../evil.txt"])
def test_a_zip_with_an_escaping_member_name_is_refused(tmp_path, member):
    archive = tmp_path / "digit-recognizer.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name, content in kaggle_files().items():
            z.writestr(name, content)
        z.writestr(member, "never written")
    with pytest.raises(DigitsError, match=f"member '{member}' has an absolute or parent path"):
        fetch(str(archive))
    assert not (tmp_path.parent / "evil.txt").exists()


def test_a_zip_bomb_is_refused_before_unpacking(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MAX_MEMBER_BYTES", 1 << 20)
    archive = tmp_path / "d.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in {**kaggle_files(), "train.csv": b"0" * (2 << 20)}.items():  # 2 MiB in a few kB
            z.writestr(name, content)
    assert archive.stat().st_size < 20_000
    with pytest.raises(DigitsError, match=r"d\.zip:train\.csv: unpacks to 2097152 bytes, expected at most 1048576"):
        fetch(str(archive))


def test_bad_member_in_zip_is_named(tmp_path):
    archive = tmp_path / "d.zip"
    files = kaggle_files()
    files["test.csv"] = csv_bytes([[0] * 783 + [300]], labelled=False)
    with zipfile.ZipFile(archive, "w") as z:
        for name, content in files.items():
            z.writestr(name, content)
    with pytest.raises(DigitsError, match=r"d\.zip:test\.csv: row 1, column 'pixel783': found 300"):
        fetch(str(archive))


@pytest.mark.parametrize("make, fragment", [
    (lambda p: p.write_bytes(b"not a zip at all"), "not a readable zip"),
    (lambda p: zipfile.ZipFile(p, "w").writestr("train.csv", csv_bytes([row()])), "no test.csv"),
])
def test_bad_archives_are_refused(tmp_path, make, fragment):
    archive = tmp_path / "d.zip"
    make(archive)
    with pytest.raises(DigitsError, match=fragment):
        fetch(str(archive))


def test_truncated_zip_is_refused(tmp_path):
    archive = tmp_path / "d.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in kaggle_files(400, 300).items():
            z.writestr(name, content)
    archive.write_bytes(archive.read_bytes()[:2000])
    with pytest.raises(DigitsError, match="zip"):
        fetch(str(archive))


def test_missing_folder_member_and_unknown_source(tmp_path):
    (tmp_path / "train.csv").write_bytes(csv_bytes([row()]))
    with pytest.raises(DigitsError, match="missing test.csv"):
        fetch(str(tmp_path))
    with pytest.raises(DigitsError, match="neither 'sample' nor an existing zip file or folder"):
        fetch(str(tmp_path / "nowhere.zip"))


@pytest.mark.skipif(not SHARED_ZIP.is_file(), reason=f"the competition replica is absent ({SHARED_ZIP})")
def test_replica_of_the_competition_download():
    raw = fetch(str(SHARED_ZIP))
    assert raw.rows == {"train.csv": 42000, "test.csv": 28000, "sample_submission.csv": 28000}
