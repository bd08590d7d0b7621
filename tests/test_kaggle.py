"""The download stage through the unmodified `kaggle` client, against the stand-in: each way of giving
credentials, `auto`, and every failure with its one-line message, nothing written and no key shown."""
import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from digits.errors import DigitsError
from digits.kaggle import Credentials, find_credentials
from kaggle_standin import KEY, TOKEN, client_env, standin  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[1]


def run_download(tmp_path: Path, env: dict, **data) -> tuple[subprocess.CompletedProcess, Path]:
    """Run the download stage in a fresh folder whose params.yaml has the given data.* values."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(data)
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run([sys.executable, "-m", "digits.stages.download"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=120)
    return result, work / "data" / "raw"


@pytest.mark.parametrize("credentials, source", [("env", "kaggle"), ("token", "kaggle"), ("file", "auto")])
def test_the_competition_is_downloaded_checked_and_recorded(standin, tmp_path, credentials, source):
    result, raw = run_download(tmp_path, client_env(tmp_path, standin, credentials=credentials), source=source)
    assert result.returncode == 0, result.stderr
    for name, content in standin.files.items():
        assert (raw / name).read_bytes() == content
    manifest = json.loads((raw / "source.json").read_text())
    assert manifest["source"] == "kaggle" and manifest["competition"] == "digit-recognizer"
    assert manifest["archive"]["sha256"] == hashlib.sha256(standin.served_archive()).hexdigest()
    assert "downloaded_at" not in manifest  # equal downloads give equal files, whenever they were made
    assert manifest["files"]["train.csv"] == {"rows": 100, "sha256": hashlib.sha256(standin.files["train.csv"]).hexdigest()}
    assert manifest.get("requested") == ("auto" if source == "auto" else None)
    assert standin.calls[-2:] == ["ListDataFiles", "DownloadDataFiles"]
    for secret in (KEY, TOKEN):
        assert secret not in result.stdout + result.stderr + (raw / "source.json").read_text()


def test_auto_without_credentials_runs_the_sample_and_says_so_loudly(tmp_path):
    env = client_env(tmp_path, credentials=None)
    result, raw = run_download(tmp_path, env, source="auto")
    assert result.returncode == 0, result.stderr
    assert "no Kaggle credentials were found, so this run used the small bundled SAMPLE" in result.stderr
    assert "dvc exp run -S data.source=kaggle" in result.stderr
    manifest = json.loads((raw / "source.json").read_text())
    assert manifest["source"] == "sample" and manifest["requested"] == "auto"
    assert "dvc exp run -S data.source=kaggle" in manifest["note"]
    assert not Path(env["KAGGLE_CONFIG_DIR"]).exists()  # the kaggle client (which creates it) was never imported


@pytest.fixture
def closed_port():
    """A local port that refuses connections: bound for the whole test (so nothing else can take it), never listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


RULES = "https://www.kaggle.com/competitions/digit-recognizer/rules"


FAILURES = {
    "no credentials": "no Kaggle credentials found: create an API token at https://www.kaggle.com/settings/api "
                      "and set KAGGLE_API_TOKEN, or save kaggle.json in",
    "wrong key": "Kaggle rejected the credentials from KAGGLE_USERNAME/KAGGLE_KEY (HTTP 401); check them, "
                 "or create a new API token at https://www.kaggle.com/settings/api",
    "wrong token": "Kaggle rejected the credentials from KAGGLE_API_TOKEN (HTTP 401)",
    "rules not accepted": f"Kaggle refused access to competition 'digit-recognizer' (HTTP 403): accept its rules "
                          f"at {RULES} with your account, then rerun",
    "rate limited": "Kaggle is rate-limiting this account (HTTP 429); wait a few minutes, then rerun",
    "unknown competition": "Kaggle has no competition 'digit-recogniser' (HTTP 404); check data.competition",
    "unreachable": "cannot reach Kaggle at http://localhost (ProxyError); check the network connection and "
                   "proxy settings, or work offline with data.source: sample",
}


@pytest.mark.parametrize("case", FAILURES)
def test_each_failure_stops_with_one_line_saying_what_to_do_and_writes_nothing(standin, tmp_path, case, closed_port):
    env = client_env(tmp_path, standin, credentials=None if case == "no credentials" else "env")
    data = {"source": "kaggle"}
    if case == "wrong key":
        env["KAGGLE_KEY"] = "not-the-key"
    elif case == "wrong token":
        del env["KAGGLE_USERNAME"], env["KAGGLE_KEY"]
        env["KAGGLE_API_TOKEN"] = "KGAT_expired"
    elif case == "rules not accepted":
        standin.fail["DownloadDataFiles"] = 403
    elif case == "rate limited":
        standin.fail["ListDataFiles"] = 429
    elif case == "unknown competition":
        data["competition"] = "digit-recogniser"
    elif case == "unreachable":
        env["http_proxy"] = f"http://127.0.0.1:{closed_port}"
    result, raw = run_download(tmp_path, env, **data)
    assert result.returncode == 1
    assert result.stderr.startswith(f"download: error: {FAILURES[case]}"), result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert not raw.exists()
    assert KEY not in result.stdout + result.stderr


@pytest.fixture
def no_kaggle_setup(tmp_path, monkeypatch):
    """This process with a fresh HOME and KAGGLE_CONFIG_DIR and no KAGGLE_* variables; yields the config folder."""
    for name in [n for n in os.environ if n.startswith("KAGGLE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "config"))
    (tmp_path / "config").mkdir()
    return tmp_path / "config"


def write_json(path: Path, obj, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    path.chmod(mode)
    return path


def test_credentials_are_found_where_the_client_looks_in_its_order(no_kaggle_setup, monkeypatch, tmp_path):
    assert find_credentials() is None
    config = write_json(no_kaggle_setup / "kaggle.json", {"username": "u"})
    assert find_credentials() is None  # a username without a key is not enough
    monkeypatch.setenv("KAGGLE_KEY", "k")
    assert find_credentials() == Credentials(f"{config} and KAGGLE_KEY")
    monkeypatch.setenv("KAGGLE_USERNAME", "u")
    assert find_credentials() == Credentials("KAGGLE_USERNAME/KAGGLE_KEY")
    token_file = write_json(tmp_path / "home" / ".kaggle" / "access_token", "t0ken\n")
    assert find_credentials() == Credentials(str(token_file))
    monkeypatch.setenv("KAGGLE_API_TOKEN", "t0ken")
    assert find_credentials() == Credentials("KAGGLE_API_TOKEN")


def test_oauth_login_counts_as_credentials(no_kaggle_setup, tmp_path):
    path = write_json(tmp_path / "home" / ".kaggle" / "credentials.json", {"refresh_token": "r"})
    assert find_credentials() == Credentials(f"{path} (kaggle auth login)")


def test_a_kaggle_json_readable_by_others_gets_one_warning(no_kaggle_setup, monkeypatch, tmp_path, capsys):
    config = write_json(no_kaggle_setup / "kaggle.json", {"username": "u", "key": KEY}, mode=0o644)
    assert find_credentials() == find_credentials() == Credentials(str(config))
    err = capsys.readouterr().err
    assert err == f"warning: {config} is readable by other users of this machine; run: chmod 600 {config}\n"
    private = write_json(tmp_path / "private" / "kaggle.json", {"username": "u", "key": KEY}, mode=0o600)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(private.parent))
    assert find_credentials() == Credentials(str(private))
    assert capsys.readouterr().err == ""


def test_a_broken_kaggle_json_is_named_without_echoing_it(no_kaggle_setup):
    write_json(no_kaggle_setup / "kaggle.json", '{"username": "u", "key": "' + KEY)
    with pytest.raises(DigitsError, match="kaggle.json: not valid JSON") as e:
        find_credentials()
    assert KEY not in str(e.value)
