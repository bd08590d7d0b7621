"""A stand-in for the part of Kaggle's API that the `kaggle` client uses, served on loopback for the tests.

What the client sends (kaggle 2.x over kagglesdk): JSON POSTs to /api/v1/<Service>/<Method>,
authenticated by HTTP Basic (username, key) or a Bearer token; a data download is answered by a
redirect to a link whose name ends in the archive's extension; an upload is a PUT to the URL that
StartSubmissionUpload returns. The unmodified client is aimed here by `client_env`:
KAGGLE_API_ENVIRONMENT=LOCALHOST makes it call http://localhost/api/v1/..., and
http_proxy=http://127.0.0.1:PORT brings those requests to this server, whatever its port.
"""
from __future__ import annotations

import base64
import io
import json
import os
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest

from digits.data import PIXELS

COMPETITION = "digit-recognizer"
USERNAME = "standin-user"
KEY = "f4ke-k3y-0123456789abcdef"  # the tests grep every output for this
TOKEN = "KGAT_f4ke-t0ken-fedcba9876543210"


def digits_csv(n: int, labelled: bool, seed: int = 0) -> bytes:
    """n random 28x28 images in the competition's CSV format, labels cycling 0-9 when `labelled`."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(n, len(PIXELS)))
    frame = pd.DataFrame(pixels, columns=PIXELS)
    if labelled:
        frame.insert(0, "label", np.arange(n) % 10)
    return frame.to_csv(index=False, lineterminator="\n").encode()


def competition_files(n_train: int = 100, n_test: int = 30) -> dict[str, bytes]:
    """A tiny competition: train.csv, test.csv and sample_submission.csv."""
    sample = pd.DataFrame({"ImageId": np.arange(1, n_test + 1), "Label": 0})
    return {"train.csv": digits_csv(n_train, True), "test.csv": digits_csv(n_test, False, seed=1),
            "sample_submission.csv": sample.to_csv(index=False, lineterminator="\n").encode()}


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """A deflated zip of name -> content, the same bytes every time (fixed member dates)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(2012, 7, 25, 0, 0, 0)), content, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


@dataclass
class StandIn:
    """The server's state; tests arrange it (files, failures, limits) and read what the client did."""

    files: dict[str, bytes] = field(default_factory=competition_files)
    archive: bytes | None = None        # served instead of zip_bytes(files) when set
    fail: dict[str, int] = field(default_factory=dict)  # API method -> HTTP status to answer it with
    allowed_now: int = 5                # submissions left today
    made_today: int = 0                 # submissions made today before the test's
    pending_polls: int = 1              # ListSubmissions answers that show a new submission as PENDING
    public_score: str = "0.98765"
    calls: list[str] = field(default_factory=list)        # API methods called, in order
    uploads: dict[str, bytes] = field(default_factory=dict)  # upload token -> bytes received
    submissions: list[dict] = field(default_factory=list)    # newest first, as ListSubmissions returns them
    port: int = 0

    def served_archive(self) -> bytes:
        return self.archive if self.archive is not None else zip_bytes(self.files)

    def start(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _handler(state: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep the test output clean
            pass

        def _reply(self, status: int, body: bytes = b"", content_type: str = "application/json",
                   headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, obj: dict, status: int = 200) -> None:
            self._reply(status, json.dumps(obj).encode())

        def _error(self, status: int, message: str) -> None:
            self._json({"code": status, "message": message}, status)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))

        def _authorised(self) -> bool:
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Bearer "):
                return auth.removeprefix("Bearer ") == TOKEN
            if auth.startswith("Basic "):
                return base64.b64decode(auth.removeprefix("Basic ")).decode() == f"{USERNAME}:{KEY}"
            return False

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            parts = urlsplit(self.path).path.split("/")  # through the proxy the path is a full URL
            if parts[:3] != ["", "api", "v1"] or len(parts) != 5:
                return self._error(404, "no such endpoint")
            method, request = parts[4], json.loads(self._body() or b"{}")
            state.calls.append(method)
            if method in state.fail:
                status = state.fail[method]
                headers = {"Retry-After": "0"} if status == 429 else None
                body = json.dumps({"code": status, "message": f"stand-in refuses {method}"}).encode()
                return self._reply(status, body, headers=headers)
            if method == "IntrospectToken":
                return self._json({"active": request.get("token") == TOKEN, "username": USERNAME})
            if not self._authorised():
                return self._error(401, "Unauthenticated")
            if request.get("competitionName", COMPETITION) != COMPETITION:
                return self._error(404, "Competition not found")
            answer = getattr(self, f"_{method}", None)
            if answer is None:
                return self._error(404, f"the stand-in does not speak {method}")
            answer(request)

        def _ListDataFiles(self, request: dict) -> None:  # noqa: N802
            files = [{"ref": name, "name": name, "totalBytes": len(content)} for name, content in state.files.items()]
            self._json({"files": files, "nextPageToken": ""})

        def _DownloadDataFiles(self, request: dict) -> None:  # noqa: N802
            self._reply(302, headers={"Location": f"http://localhost/storage/{COMPETITION}/archive.zip?sig=s1gned"})

        def _GetSubmissionLimits(self, request: dict) -> None:  # noqa: N802
            made = state.made_today + len(state.submissions)
            self._json({"numToday": made, "numTotal": made, "numAllowedNow": state.allowed_now,
                        "limitedByTotal": False})

        def _StartSubmissionUpload(self, request: dict) -> None:  # noqa: N802
            token = f"blob-{len(state.uploads) + 1}"
            state.uploads[token] = b""
            self._json({"token": token, "createUrl": f"http://localhost/upload/{token}"})

        def _CreateSubmission(self, request: dict) -> None:  # noqa: N802
            token = request.get("blobFileTokens")
            if not state.uploads.get(token):
                return self._json({"message": "no file was uploaded for this token", "ref": 0})
            ref = 1000 + len(state.submissions)
            state.submissions.insert(0, {"ref": ref, "description": request.get("submissionDescription", ""),
                                         "fileName": "upload.csv", "token": token, "polls": state.pending_polls})
            state.allowed_now -= 1
            self._json({"message": "Successfully submitted to Digit Recognizer", "ref": ref})

        def _ListSubmissions(self, request: dict) -> None:  # noqa: N802
            listed = []
            for sub in state.submissions:
                scored = sub["polls"] <= 0
                sub["polls"] -= 1
                listed.append({"ref": sub["ref"], "description": sub["description"], "fileName": sub["fileName"],
                               "status": "COMPLETE" if scored else "PENDING",
                               **({"publicScore": state.public_score} if scored else {})})
            self._json({"submissions": listed, "nextPageToken": ""})

        def do_GET(self) -> None:  # noqa: N802
            if urlsplit(self.path).path == f"/storage/{COMPETITION}/archive.zip":
                return self._reply(200, state.served_archive(), "application/zip")
            self._error(404, "no such file")

        def do_PUT(self) -> None:  # noqa: N802
            token = urlsplit(self.path).path.removeprefix("/upload/")
            if token not in state.uploads:
                return self._error(404, "no such upload")
            state.uploads[token] = self._body()
            self._json({})

    return Handler


@pytest.fixture
def standin():
    """A running stand-in on 127.0.0.1 (a free port), stopped after the test."""
    server = StandIn()
    server.start()
    yield server
    server.stop()


def client_env(tmp_path: Path, standin: StandIn | None = None, *, proxy: str | None = None,
               credentials: str | None = "env") -> dict[str, str]:
    """The environment for a stage run: isolated from the developer's own Kaggle setup, aimed at `standin`.

    HOME and KAGGLE_CONFIG_DIR are fresh folders under `tmp_path` and every KAGGLE_* and proxy
    variable is dropped, so a real ~/.kaggle can never leak in. `credentials`: "env"
    (KAGGLE_USERNAME/KAGGLE_KEY), "token" (KAGGLE_API_TOKEN), "file" (kaggle.json, mode 0600)
    or None. `proxy` overrides where the client's requests go.
    """
    drop = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_") and k.lower() not in drop}
    home, config = tmp_path / "home", tmp_path / "kaggle-config"
    home.mkdir(exist_ok=True)
    # the real cache folder stays (matplotlib's font cache, torch's): the kaggle client keeps nothing there
    env.update(HOME=str(home), KAGGLE_CONFIG_DIR=str(config),
               XDG_CACHE_HOME=os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache"))
    if standin is not None or proxy is not None:
        env.update(KAGGLE_API_ENVIRONMENT="LOCALHOST", http_proxy=proxy or f"http://127.0.0.1:{standin.port}")
    if credentials == "env":
        env.update(KAGGLE_USERNAME=USERNAME, KAGGLE_KEY=KEY)
    elif credentials == "token":
        env.update(KAGGLE_API_TOKEN=TOKEN)
    elif credentials == "file":
        config.mkdir(exist_ok=True)
        path = config / "kaggle.json"
        path.write_text(json.dumps({"username": USERNAME, "key": KEY}))
        path.chmod(0o600)
    return env
