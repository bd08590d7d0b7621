"""The Kaggle API through the official `kaggle` client: credentials, competition download, submission.

`kaggle` is imported only when a Kaggle call is made: importing it authenticates at once (and
prints a help text when there are no credentials), so other data sources never depend on it.
The client's own prints are swallowed and replaced by one-line `DigitsError`s that say what to
do. Nothing here prints or stores a key or token: messages name only where credentials were found.
"""
from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from digits.errors import DigitsError
from digits.provenance import changed_params, code_commit

SETTINGS_URL = "https://www.kaggle.com/settings/api"
MAX_POLL_SECONDS = 30  # the longest pause between two looks at a submission's status


@dataclass(frozen=True)
class Credentials:
    """Where the client will find credentials, e.g. "KAGGLE_API_TOKEN" or a file path; never the secret itself."""

    where: str


def config_dir() -> Path:
    """The folder the client reads kaggle.json from: $KAGGLE_CONFIG_DIR, else ~/.kaggle, else $XDG_CONFIG_HOME/kaggle on Linux."""
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return Path(os.environ["KAGGLE_CONFIG_DIR"])
    home = Path.home() / ".kaggle"
    if sys.platform.startswith("linux") and not home.exists():
        return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "kaggle"
    return home


def find_credentials() -> Credentials | None:
    """Look for credentials where the client looks, in its order; None when there are none.

    1. KAGGLE_API_TOKEN (the token, or a file holding it); 2. ~/.kaggle/access_token;
    3. a username and key from KAGGLE_USERNAME / KAGGLE_KEY or kaggle.json in `config_dir()`;
    4. ~/.kaggle/credentials.json written by `kaggle auth login`.
    A kaggle.json that other users can read gets a warning on stderr, as the client gives.
    """
    token = os.environ.get("KAGGLE_API_TOKEN")
    if token:
        if not Path(token).exists():
            return Credentials("KAGGLE_API_TOKEN")
        if Path(token).read_text().strip():
            return Credentials(f"KAGGLE_API_TOKEN (the file {token})")
    for name in ("access_token", "access_token.txt"):
        path = Path.home() / ".kaggle" / name
        if path.is_file() and path.read_text().strip():
            return Credentials(str(path))

    path = config_dir() / "kaggle.json"
    config = _read_kaggle_json(path) if path.is_file() else {}
    username = os.environ.get("KAGGLE_USERNAME") or config.get("username")
    key = os.environ.get("KAGGLE_KEY") or config.get("key")
    if username and key:
        from_env = [name for name in ("KAGGLE_USERNAME", "KAGGLE_KEY") if os.environ.get(name)]
        if len(from_env) == 2:
            return Credentials("KAGGLE_USERNAME/KAGGLE_KEY")
        return Credentials(" and ".join([str(path), *from_env]))

    oauth = Path.home() / ".kaggle" / "credentials.json"
    if oauth.is_file() and _read_kaggle_json(oauth).get("refresh_token"):
        return Credentials(f"{oauth} (kaggle auth login)")
    return None


def _read_kaggle_json(path: Path) -> dict:
    """A credentials file as a dict; warns when others can read it; never echoes its content."""
    if os.name != "nt" and path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
        _warn_readable(path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise DigitsError(f'{path}: not valid JSON; expected {{"username": "...", "key": "..."}} '
                          f"as downloaded from {SETTINGS_URL}") from None
    if not isinstance(config, dict):
        raise DigitsError(f'{path}: found a JSON {type(config).__name__}, expected an object {{"username": ..., "key": ...}}')
    return config


@functools.lru_cache(maxsize=None)
def _warn_readable(path: Path) -> None:
    """Say once per process that `path` holds a secret others can read."""
    print(f"warning: {path} is readable by other users of this machine; run: chmod 600 {path}", file=sys.stderr)


def no_credentials_message() -> str:
    """What to do when `find_credentials` finds nothing."""
    return (f"no Kaggle credentials found: create an API token at {SETTINGS_URL} and set KAGGLE_API_TOKEN, "
            f"or save kaggle.json in {config_dir()} (or set KAGGLE_USERNAME and KAGGLE_KEY)")


@dataclass
class Submission:
    """A scored submission: its reference number and public score (None when Kaggle publishes none)."""

    ref: int
    public_score: float | None


class Kaggle:
    """An authenticated session with the Kaggle API for one competition.

    Every call maps the client's failures onto a one-line `DigitsError`: rejected credentials
    (401), rules not accepted (403), unknown competition (404), rate limits (429), an
    unreachable host.
    """

    def __init__(self, competition: str):
        self.competition = competition
        self.credentials = find_credentials()
        if self.credentials is None:
            raise DigitsError(no_credentials_message())
        with self._calls():
            try:
                from kaggle.api.kaggle_api_extended import KaggleApi
            except ImportError as e:
                raise DigitsError(f"the kaggle client cannot be imported ({e}); run `make install`") from None
            self.api = KaggleApi()
            try:
                self.api.authenticate()
            except SystemExit:
                raise DigitsError(self._rejected()) from None

    @contextlib.contextmanager
    def _calls(self) -> Iterator[None]:
        """Run client calls with their prints swallowed and their failures turned into DigitsError."""
        import requests

        try:
            with contextlib.redirect_stdout(io.StringIO()):
                yield
        except requests.HTTPError as e:
            raise DigitsError(self._http_message(getattr(e.response, "status_code", None))) from None
        except requests.RequestException as e:
            raise DigitsError(
                f"cannot reach Kaggle at {_endpoint()} ({type(e).__name__}); check the network connection "
                "and proxy settings, or work offline with data.source: sample") from None

    def _rejected(self) -> str:
        return (f"Kaggle rejected the credentials from {self.credentials.where} (HTTP 401); check them, "
                f"or create a new API token at {SETTINGS_URL}")

    def _http_message(self, status: int | None) -> str:
        c = self.competition
        if status == 401:
            return self._rejected()
        if status == 403:
            return (f"Kaggle refused access to competition '{c}' (HTTP 403): accept its rules at "
                    f"https://www.kaggle.com/competitions/{c}/rules with your account, then rerun")
        if status == 404:
            return f"Kaggle has no competition '{c}' (HTTP 404); check data.competition in params.yaml"
        if status == 429:
            return "Kaggle is rate-limiting this account (HTTP 429); wait a few minutes, then rerun"
        return f"Kaggle answered HTTP {status} for competition '{c}'; try again later"

    def download(self, folder: Path) -> tuple[Path, dict[str, int]]:
        """Download the competition's data archive into `folder`.

        Returns the archive's path and the files Kaggle lists for the competition
        (name -> bytes), against which the archive is checked before anything is read.
        """
        listed: dict[str, int] = {}
        with self._calls():
            token = ""
            while True:
                page = self.api.competition_list_files(self.competition, page_token=token, page_size=100)
                listed.update({f.name: f.total_bytes for f in page.files})
                token = page.next_page_token
                if not token:
                    break
            try:
                self.api.competition_download_files(self.competition, path=str(folder), force=True, quiet=True)
            except ValueError as e:  # the client's check of the received size against Content-Length
                raise DigitsError(f"the download of '{self.competition}' from Kaggle is incomplete ({e}); rerun") from None
        archives = sorted(folder.iterdir())
        if len(archives) != 1:
            raise DigitsError(f"Kaggle download of '{self.competition}': found {len(archives)} files in "
                              f"{folder}, expected one archive")
        return archives[0], listed

    def submissions_left(self) -> int:
        """How many submissions the account may still make now; stops with a clear message when none are left."""
        with self._calls():
            limits = self.api.competition_get_submission_limits(self.competition)
        if limits.num_allowed_now <= 0:
            if limits.num_total == 0:  # Kaggle answers all zeros until the account has joined
                raise DigitsError(f"this Kaggle account has not joined '{self.competition}': accept its rules at "
                                  f"https://www.kaggle.com/competitions/{self.competition}/rules, then rerun")
            if limits.limited_by_total:
                raise DigitsError(f"no submissions left for '{self.competition}': all {limits.num_total} "
                                  "allowed for the whole competition are used")
            raise DigitsError(f"no submissions left today for '{self.competition}' ({limits.num_today} made "
                              "today); the daily allowance resets at 00:00 UTC, rerun after that")
        return limits.num_allowed_now

    def submit(self, csv: Path, message: str) -> int:
        """Upload a submission file with `message`; returns its reference number."""
        with self._calls():
            response = self.api.competition_submit(str(csv), message, self.competition, quiet=True)
        if not response.ref:
            raise DigitsError(f"{csv}: Kaggle did not accept the upload ({response.message or 'no reason given'})")
        return response.ref

    def wait_for_score(self, ref: int, wait_seconds: float) -> Submission:
        """Poll the competition's submissions until `ref` is scored, for at most `wait_seconds`.

        Pauses start at one second and double up to MAX_POLL_SECONDS.
        """
        deadline = time.monotonic() + wait_seconds
        pause = 1.0
        while True:
            with self._calls():
                found = [s for s in self.api.competition_submissions(self.competition) or [] if s.ref == ref]
            status = found[0].status.name if found else "PENDING"
            if status == "COMPLETE":
                score = found[0].public_score
                return Submission(ref, float(score) if score else None)
            if status == "ERROR":
                raise DigitsError(f"Kaggle could not score submission {ref}: "
                                  f"{(found[0].error_description or 'no reason given').strip()}")
            if time.monotonic() + pause > deadline:
                raise DigitsError(
                    f"submission {ref} was not scored within submit.wait_seconds={wait_seconds}; it may still "
                    f"be scored: see https://www.kaggle.com/competitions/{self.competition}/submissions")
            time.sleep(pause)
            pause = min(2 * pause, MAX_POLL_SECONDS)


def _endpoint() -> str:
    from kagglesdk.kaggle_env import get_endpoint, get_env

    return get_endpoint(get_env())


def submission_message(model: str, val_accuracy: float, params: dict) -> str:
    """The upload's description: model, git commit, params changed since that commit, validation accuracy.

    E.g. "ensemble | commit 1a2b3c4 | cnn.epochs=20, knn.n_neighbors=5 | val accuracy 0.9915".
    A list that changed (e.g. cnn.layers) is named without its value, to keep the line short.
    """
    commit = code_commit()
    if commit is None:
        return f"{model} | no git commit | val accuracy {val_accuracy:.4f}"
    return f"{model} | commit {commit} | {changed_params(params)} | val accuracy {val_accuracy:.4f}"
