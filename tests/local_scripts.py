"""Running the scripts of scripts/ as a person does, against the app served over HTTP on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from tests.conftest import ADMIN_TOKEN, DYNAMICS_KEY, WEBHOOK_SECRET

ROOT = Path(__file__).resolve().parent.parent
# What the scripts read from .env when they run beside ./scripts/run: here, the tests' own values.
SECRETS = {
    "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "ADMIN_API_TOKEN": ADMIN_TOKEN,
    "DYNAMICS_WEBHOOK_KEY": DYNAMICS_KEY,
}


def script(name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run scripts/<name> with this Python, as ``.venv/bin/python scripts/<name>`` (README's 'Try it')."""
    holdfast_free = {k: v for k, v in os.environ.items() if k not in (*SECRETS, "PORT", "HOST")}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args],
        cwd=ROOT,
        env={**holdfast_free, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


@contextmanager
def served(app: Any) -> Iterator[str]:
    """The app on a free port of 127.0.0.1, for the length of the block; its address."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
