"""The sources added beside Kaggle: checks on a downloaded archive, the original MNIST, the upload message."""
import struct
import subprocess
import zipfile

import numpy as np
import pytest
import yaml

from digits.data import parse_digits, parse_labels
from digits.errors import DigitsError
from digits.kaggle import submission_message
from digits.sources import check_download, fetch
from kaggle_standin import competition_files, zip_bytes


def archive(tmp_path, files):
    path = tmp_path / "digit-recognizer.zip"
    path.write_bytes(zip_bytes(files))
    return path


def listed(files):
    return {name: len(content) for name, content in files.items()}


def test_an_archive_matching_kaggles_file_list_passes(tmp_path):
    files = competition_files(20, 5)
    check_download(archive(tmp_path, files), listed(files))


@pytest.mark.parametrize("member", ["../evil.csv", "/etc/evil.csv", "data/../../evil.csv", "C:evil.csv"])
def test_an_archive_with_an_escaping_member_name_is_refused(tmp_path, member):
    files = competition_files(20, 5)
    path = archive(tmp_path, {**files, member: b"x"})
    with pytest.raises(DigitsError, match=f"member '{member}' has an absolute or parent path"):
        check_download(path, listed(files))


def test_an_archive_that_disagrees_with_kaggles_file_list_is_refused(tmp_path):
    files = competition_files(20, 5)
    sizes = listed(files)
    with pytest.raises(DigitsError, match=rf"digit-recognizer.zip from Kaggle:train.csv: unpacks to {sizes['train.csv']} "
                                          rf"bytes, Kaggle lists {sizes['train.csv'] + 1}; rerun the download"):
        check_download(archive(tmp_path, files), {**sizes, "train.csv": sizes["train.csv"] + 1})
    with pytest.raises(DigitsError, match="no member extra.csv, which Kaggle lists"):
        check_download(archive(tmp_path, files), {**sizes, "extra.csv": 10})
    (tmp_path / "digit-recognizer.zip").write_bytes(b"<html>an error page</html>")
    with pytest.raises(DigitsError, match="not a readable zip file"):
        check_download(tmp_path / "digit-recognizer.zip", sizes)


def write_idx(path, array, magic):
    path.write_bytes(struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes())


@pytest.fixture
def fake_mnist(tmp_path):
    """A tiny MNIST in torchvision's layout (root/MNIST/raw, IDX files): 30 train and 12 test images."""
    raw = tmp_path / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 30), ("t10k", 12)):
        x, y = rng.integers(0, 256, (n, 28, 28)), np.arange(n) % 10
        write_idx(raw / f"{split}-images-idx3-ubyte", x, 0x803)
        write_idx(raw / f"{split}-labels-idx1-ubyte", y, 0x801)
        arrays[split] = (x, y)
    return tmp_path / "mnist", arrays


def test_mnist_is_written_in_the_competition_format_with_its_test_labels(fake_mnist):
    root, arrays = fake_mnist
    raw = fetch("mnist", mnist_root=str(root))
    assert raw.rows == {"train.csv": 30, "test.csv": 12, "sample_submission.csv": 12, "solution.csv": 12}
    x, y = parse_digits(raw.files["train.csv"], "train.csv", labelled=True)
    assert np.array_equal(x, arrays["train"][0]) and np.array_equal(y, arrays["train"][1])
    x_test, _ = parse_digits(raw.files["test.csv"], "test.csv", labelled=False)
    assert np.array_equal(x_test, arrays["t10k"][0])
    assert np.array_equal(parse_labels(raw.files["solution.csv"], "solution.csv"), arrays["t10k"][1])
    assert raw.manifest()["mnist_root"] == str(root)


def test_missing_mnist_files_that_cannot_be_downloaded_are_named(tmp_path, monkeypatch):
    for name in ("http_proxy", "https_proxy"):  # no network: every download attempt is refused at once
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("no_proxy", "NO_PROXY", "HTTP_PROXY", "HTTPS_PROXY"):  # the upper-case ones apply too
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(DigitsError, match=rf"data.mnist_root: {tmp_path}/MNIST/raw lacks readable MNIST files "
                                          r"and they could not be downloaded \(.*\); copy train-images-idx3-ubyte"):
        fetch("mnist", mnist_root=str(tmp_path))


def git(cwd, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd,
                          capture_output=True, text=True, check=True).stdout.strip()


def test_the_upload_message_names_the_commit_the_changed_params_and_the_accuracy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = {"data": {"source": "auto"}, "cnn": {"epochs": 10, "layers": ["relu"]}, "knn": {"n_neighbors": 3}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert submission_message("cnn", 0.91234, params) == "cnn | no git commit | val accuracy 0.9123"
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "params.yaml")
    git(tmp_path, "commit", "-qm", "params")
    commit = git(tmp_path, "rev-parse", "--short", "HEAD")
    assert submission_message("knn", 0.5, params) == f"knn | commit {commit} | params as committed | val accuracy 0.5000"
    changed = {**params, "cnn": {"epochs": 20, "layers": ["relu", "relu"]}, "data": {"source": "kaggle"}}
    assert submission_message("ensemble", 0.99, changed) == (
        f"ensemble | commit {commit} | cnn.epochs=20, cnn.layers, data.source=kaggle | val accuracy 0.9900")
