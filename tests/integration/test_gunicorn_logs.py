"""The Procfile's web process logs as the app does: one JSON object a line, gunicorn's lines included.

gunicorn's error log ("Booting worker ...") and its access log come out with ``level``,
``timestamp`` and ``event`` like every other line; an access line is the event ``request`` with
the method, path, status, duration and the request's id (never its query string, which carries
the Dynamics key). gunicorn writes no control socket outside the project (25.1+ puts one in
``$XDG_RUNTIME_DIR`` or ``~/.gunicorn`` unless told not to).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = (
    "-m",
    "gunicorn",
    "--config",
    "bootstrap/gunicorn_conf.py",
    "--bind",
    "127.0.0.1:0",
    "webhooks:create_app()",
)


def holdfast_free_environment() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DYNAMICS_", "HOLD_", "STRIPE_", "ADMIN_", "DATABASE_", "REDIS_", "XDG_RUNTIME_DIR"))
    }


def port_of(log: Path) -> int | None:
    found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
    return int(found[1]) if found else None


def get(url: str, **headers: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def answered(port: int) -> bool:
    try:
        return get(f"http://127.0.0.1:{port}/healthz") == 200
    except OSError:
        return False


def test_gunicorns_lines_are_json_like_the_apps_and_its_access_lines_carry_the_request_id(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **holdfast_free_environment(),
        "HOME": str(home),
        "STRIPE_WEBHOOK_SECRET": "whsec_x",
        "ADMIN_API_TOKEN": "t" * 24,
        "DYNAMICS_WEBHOOK_KEY": "dynamics-key-in-the-query",
        "HOLDFAST_INSTANCE_DIR": str(tmp_path / "instance"),
        "WEB_CONCURRENCY": "1",
    }
    log = tmp_path / "web.log"
    with log.open("w") as out:
        web = subprocess.Popen(
            [sys.executable, *GUNICORN], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        port = wait_for(lambda: port_of(log), timeout=60, what="gunicorn to listen")
        wait_for(lambda: answered(port), timeout=60, what="gunicorn's worker to answer")
        assert get(f"http://127.0.0.1:{port}/healthz", **{"X-Request-ID": "lb-request-0001"}) == 200
        assert (
            get(f"http://127.0.0.1:{port}/webhooks/dynamics?code=wrong", **{"X-Request-ID": "lb-request-0002"}) == 405
        )
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(30)
    text = log.read_text()
    parsed: list[dict[str, Any]] = []
    for line in text.splitlines():
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    for line in parsed:
        assert {"level", "timestamp", "event", "logger"} <= set(line), line
    events = [line["event"] for line in parsed if line["logger"] == "gunicorn.error"]
    assert any(e.startswith("Booting worker with pid: ") for e in events), events
    access = {line["request_id"]: line for line in parsed if line["logger"] == "gunicorn.access"}
    assert access["lb-request-0001"] | {"timestamp": "", "duration_ms": 0} == {
        "event": "request",
        "level": "info",
        "logger": "gunicorn.access",
        "timestamp": "",
        "method": "GET",
        "path": "/healthz",
        "status": 200,
        "duration_ms": 0,
        "request_id": "lb-request-0001",
    }
    assert isinstance(access["lb-request-0001"]["duration_ms"], float)
    assert (access["lb-request-0002"]["path"], access["lb-request-0002"]["status"]) == ("/webhooks/dynamics", 405)
    assert "dynamics-key-in-the-query" not in text and "code=wrong" not in text
    assert list(home.iterdir()) == [], "gunicorn wrote into the home directory"
