"""A real local HTTP server standing in for the provisioning API.

It records every call (idempotency key, body, headers, when it began and ended) and answers as
told: a fixed status, a script of statuses to use in turn, a status with headers (a redirect's
Location, a 429's Retry-After), a hang (holds the connection without answering), or a delay
before every answer (a slow API).
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
    method: str = "POST"
    path: str = "/provision"
    headers: dict[str, str] = field(default_factory=dict)
    ended: float | None = None  # when the answer was sent (None: not answered)


Answer = int | str | tuple[int, dict[str, str]]


@dataclass
class Behaviour:
    default: Answer = 200
    script: list[Answer] = field(default_factory=list)
    hang_seconds: float = 30.0
    delay_seconds: float = 0.0


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

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw or b"{}")
                call = Call(
                    self.headers.get("Idempotency-Key"),
                    body,
                    time.monotonic(),
                    method=self.command,
                    path=self.path,
                    headers=dict(self.headers.items()),
                )
                answer = server._record(call)
                try:
                    if server.behaviour.delay_seconds:
                        server._release.wait(server.behaviour.delay_seconds)
                    if answer == HANG:
                        server._release.wait(server.behaviour.hang_seconds)
                        self.close_connection = True
                        return
                    status, headers = answer if isinstance(answer, tuple) else (int(answer), {})
                    payload = json.dumps({"ok": 200 <= status < 300, "reason": f"answered {status}"}).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                finally:
                    call.ended = time.monotonic()

            do_POST = _answer
            do_GET = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/provision"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _record(self, call: Call) -> Answer:
        with self._lock:
            self.calls.append(call)
            return self.behaviour.script.pop(0) if self.behaviour.script else self.behaviour.default

    def answer(self, default: Answer = 200, *script: Answer, delay_seconds: float = 0.0) -> None:
        """Answer ``script`` in turn, then ``default``; each answer after ``delay_seconds``."""
        with self._lock:
            self.behaviour = Behaviour(default=default, script=list(script), delay_seconds=delay_seconds)
            self._release.clear()

    def overlapping(self) -> list[tuple[Call, Call]]:
        """Pairs of calls with the same idempotency key that were under way at the same moment."""
        with self._lock:
            calls = list(self.calls)
        pairs = []
        for i, first in enumerate(calls):
            for second in calls[i + 1 :]:
                if first.key == second.key and second.at < (first.ended if first.ended is not None else float("inf")):
                    pairs.append((first, second))
        return pairs

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
