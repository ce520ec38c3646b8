"""``workflows4py serve APP`` run for real (docs/cli.md, docs/web.md): a subprocess serving the
runtime of tests/cli_app.py over a SQLite file, asked over HTTP as a client would. It binds
127.0.0.1 by default, serves the UI's pages and the OpenAPI document, needs the bearer token
when the environment holds one (and never on the command line), refuses writes with 403 when
read-only, and stops cleanly on SIGINT and on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cli_app import BACKEND_ENV
from web_ui_common import free_port

SHUTDOWN_TIMEOUT = 5  # serve cancels what still runs past this; a stream ends sooner

ROOT = Path(__file__).resolve().parent.parent
APP = "cli_app:runtime"
PRS = "api/v1/workflows/PullRequest/instances"


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    database: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def listen(self, path: str, headers: dict[str, str] | None = None) -> list[str]:
        """Opens the event stream of ``path`` in a thread, as an open page of the UI does;
        the lines received so far (``"END"`` once the stream is over)."""
        lines: list[str] = []

        def read() -> None:
            try:
                with httpx.stream("GET", self.url + path, headers=headers, timeout=60) as answer:
                    lines.extend(answer.iter_lines())
            except httpx.HTTPError as error:
                lines.append(repr(error))
            lines.append("END")

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + 10
        while not any(line.startswith("data: ") for line in lines):
            assert time.monotonic() < deadline, lines
            time.sleep(0.05)
        return lines

    def stop(self, how: signal.Signals) -> None:
        """Sends ``how``; the server exits within 10 s with status 0 and no traceback, having
        closed the runtime (SQLite removes its write-ahead log when the last connection
        closes), even with an event stream open: the stream ends as the server stops, before
        the requests still under way would be cancelled."""
        start = time.monotonic()
        self.process.send_signal(how)
        code = self.process.wait(timeout=10)
        assert code == 0, self.output()
        assert time.monotonic() - start < SHUTDOWN_TIMEOUT  # the streams ended, none was cut
        assert "Traceback" not in self.output(), self.output()
        assert "ERROR" not in self.output(), self.output()
        assert self.database.exists()
        assert not self.database.with_name(self.database.name + "-wal").exists()


@contextmanager
def serve(tmp_path: Path, *options: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    """``python -m workflows4py serve cli_app:runtime --port P *options`` over a SQLite file of
    ``tmp_path``, once it answers HTTP; killed at the end if it is still running."""
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    database = tmp_path / "served.db"
    environment = {
        **{k: v for k, v in os.environ.items() if k != "WORKFLOWS4PY_TOKEN"},
        BACKEND_ENV: f"sqlite:{database}",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT / "src")]),
        **(env or {}),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "workflows4py", "serve", APP, "--port", str(port), *options],
            cwd=tmp_path,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = Served(process, port, log, database)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, served.output()
            try:
                if httpx.get(served.url, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"no answer in 30 s:\n{served.output()}"
            time.sleep(0.1)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_binds_loopback_serves_the_ui_and_api_and_stops_on_sigint(tmp_path: Path) -> None:
    with serve(tmp_path) as served:
        assert f"serving {APP} at http://127.0.0.1:{served.port}/" in served.output()
        # bound to 127.0.0.1 itself, not to every address: another loopback address is refused
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.2", served.port), timeout=2),
        ):
            pass
        with httpx.Client(base_url=served.url, timeout=10) as http:
            for path in ("", "workflows/PullRequest", "instances?status=awaiting"):
                page = http.get(path)
                assert page.status_code == 200, path
                assert '<base href="/">' in page.text
            assert "static/js/app.js" in http.get("").text
            assert http.get("static/js/app.js").status_code == 200
            spec = http.get("api/v1/openapi.json")
            assert spec.status_code == 200
            assert "/api/v1/workflows/{wf}/instances/{id}/resume" in spec.json()["paths"]
            started = http.post(PRS, json={"id": "pr-1"})  # no token, not read-only: it writes
            assert started.status_code == 201, started.text
            assert started.json()["status"] == "awaiting"
            listed = http.get("api/v1/instances").json()
            assert [row["id"] for row in listed["items"]] == ["pr-1"]
        stream = served.listen(f"{PRS}/pr-1/events")  # a page of the UI is open
        served.stop(signal.SIGINT)
        assert stream[-1] == "END"


def test_serve_with_a_token_and_read_only_stops_on_sigterm(tmp_path: Path) -> None:
    with serve(tmp_path, "--read-only", env={"WORKFLOWS4PY_TOKEN": "s3cret"}) as served:
        assert "s3cret" not in served.output()
        with httpx.Client(base_url=served.url, timeout=10) as http:
            assert http.get("").status_code == 200  # the UI's pages need no token
            for path in ("api/v1/workflows", "api/v1/openapi.json"):
                refused = http.get(path)
                assert refused.status_code == 401, path
                assert refused.json()["error"]["type"] == "unauthorized"
                assert refused.headers["www-authenticate"].startswith("Bearer")
            wrong = http.get("api/v1/workflows", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            http.headers["Authorization"] = "Bearer s3cret"
            assert http.get("api/v1/openapi.json").status_code == 200
            workflows = http.get("api/v1/workflows").json()["workflows"]
            assert [w["id"] for w in workflows] == ["PullRequest", "flaky"]
            write = http.post(PRS, json={"id": "pr-1"})
            assert write.status_code == 403
            assert write.json()["error"]["type"] == "read_only"
            assert http.get("api/v1/instances").json()["total"] == 0  # nothing was written
        served.stop(signal.SIGTERM)


def test_serve_reads_the_token_from_the_variable_token_env_names(tmp_path: Path) -> None:
    with serve(tmp_path, "--token-env", "OPS_TOKEN", env={"OPS_TOKEN": "t0ken"}) as served:
        with httpx.Client(base_url=served.url, timeout=10) as http:
            assert http.get("api/v1/workflows").status_code == 401
            auth = {"Authorization": "Bearer t0ken"}
            assert http.get("api/v1/workflows", headers=auth).status_code == 200
            assert http.post(PRS, json={"id": "pr-1"}, headers=auth).status_code == 201
        stream = served.listen(f"{PRS}/pr-1/events", headers=auth)
        served.stop(signal.SIGTERM)
        assert stream[-1] == "END"
    # a variable named but not set: it refuses to serve without the token it was told of
    done = subprocess.run(
        [sys.executable, "-m", "workflows4py", "serve", APP, "--token-env", "UNSET_TOKEN"],
        cwd=tmp_path,
        env={
            **os.environ,
            BACKEND_ENV: f"sqlite:{tmp_path / 'other.db'}",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT / "src")]),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "the environment variable UNSET_TOKEN is not set" in done.stderr
