"""A real local HTTP server subscribed to Holdfast's own events.

It keeps every delivery as received (the raw body and the headers, to verify with
``standardwebhooks``) and answers as told: a status, a script of statuses in turn, or a hang (it
holds the request without answering until released or ``hang_seconds`` pass). ``rule`` decides
per delivery when a test needs one account's deliveries to hang and another's to go.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG = "hang"
Answer = int | str


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]
    at: float
    ended: float | None = None  # when it was answered (None: not answered)
    answer: Answer = 200

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def account_id(self) -> str | None:
        data = self.event.get("data") or {}
        return data.get("account_id")


@dataclass
class Behaviour:
    default: Answer = 200
    script: list[Answer] = field(default_factory=list)
    rule: Callable[[Delivery], Answer | None] | None = None
    hang_seconds: float = 30.0


class SubscriberServer:
    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
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
                delivery = Delivery(
                    self.rfile.read(length) if length else b"",
                    {k.lower(): v for k, v in self.headers.items()},
                    time.monotonic(),
                )
                answer = server._record(delivery)
                try:
                    if answer == HANG:
                        server._release.wait(server.behaviour.hang_seconds)
                        self.close_connection = True
                        return
                    payload = b"{}"
                    self.send_response(int(answer))
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                finally:
                    delivery.ended = time.monotonic()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/holdfast-events"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _record(self, delivery: Delivery) -> Answer:
        with self._lock:
            self.deliveries.append(delivery)
            behaviour = self.behaviour
            chosen = behaviour.rule(delivery) if behaviour.rule is not None else None
            if chosen is None:
                chosen = behaviour.script.pop(0) if behaviour.script else behaviour.default
            delivery.answer = chosen
            return chosen

    def answer(
        self,
        default: Answer = 200,
        *script: Answer,
        rule: Callable[[Delivery], Answer | None] | None = None,
        hang_seconds: float = 30.0,
    ) -> None:
        """Answer ``script`` in turn, then ``default`` (``rule``, when it names an answer, first)."""
        with self._lock:
            self.behaviour = Behaviour(default, list(script), rule, hang_seconds)
            self._release.clear()

    def release(self) -> None:
        """Let every hanging request end (without an answer)."""
        self._release.set()

    def received(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)

    def reset(self) -> None:
        self._release.set()
        with self._lock:
            self.deliveries = []
            self.behaviour = Behaviour()
        self._release.clear()

    def start(self) -> SubscriberServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def running_subscriber() -> Iterator[SubscriberServer]:
    server = SubscriberServer().start()
    try:
        yield server
    finally:
        server.stop()
