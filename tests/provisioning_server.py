"""A real local HTTP server standing in for the provisioning API.

It records every call (idempotency key, body, time) and answers as told: a fixed status,
a script of statuses to use in turn, or a hang (holds the connection without answering).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG = "hang"


@dataclass
class Call:
    key: str | None
    body: dict[str, Any]
    at: float


@dataclass
class Behaviour:
    default: int | str = 200
    script: list[int | str] = field(default_factory=list)
    hang_seconds: float = 30.0


class ProvisioningServer:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.behaviour = Behaviour()
        self._lock = threading.Lock()
        self._release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                answer = server._record(Call(self.headers.get("Idempotency-Key"), body, time.monotonic()))
                if answer == HANG:
                    server._release.wait(server.behaviour.hang_seconds)
                    self.close_connection = True
                    return
                payload = json.dumps({"ok": 200 <= int(answer) < 300, "reason": f"answered {answer}"}).encode()
                self.send_response(int(answer))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/provision"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _record(self, call: Call) -> int | str:
        with self._lock:
            self.calls.append(call)
            return self.behaviour.script.pop(0) if self.behaviour.script else self.behaviour.default

    def answer(self, default: int | str = 200, *script: int | str) -> None:
        """Answer ``script`` in turn, then ``default``."""
        with self._lock:
            self.behaviour = Behaviour(default=default, script=list(script))
            self._release.clear()

    def reset(self) -> None:
        self._release.set()  # free any hanging handler
        with self._lock:
            self.calls = []
            self.behaviour = Behaviour()
        self._release.clear()

    def keys(self) -> list[str | None]:
        with self._lock:
            return [c.key for c in self.calls]

    def start(self) -> ProvisioningServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def running_server() -> Iterator[ProvisioningServer]:
    server = ProvisioningServer().start()
    try:
        yield server
    finally:
        server.stop()
