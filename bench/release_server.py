"""A zero-latency stand-in for the provisioning API, for ``bench.release``, in its own process.

    python -m bench.release_server [--kind stdlib|fast]

It listens on a free port of 127.0.0.1, prints ``listening <port>`` on stdout, and then:

- ``POST`` (any path): answers 200 at once (keep-alive, HTTP/1.1) and counts the call under
  its ``Idempotency-Key`` header;
- ``GET /stats``: ``{"calls": <total>, "keys": {<key>: <calls>}, "first": <t>, "last": <t>}``, the
  times (``time.monotonic()``, the same clock in every process) of the first and last call;
- ``POST /reset``: forgets every call (answers ``{"reset": true}``).

Two implementations of the same behaviour:

- ``stdlib``: ``http.server.ThreadingHTTPServer`` with HTTP/1.1 (one thread per connection),
  like tests/provisioning_server.py, but with TCP_NODELAY (see ``disable_nagle_algorithm``);
- ``fast``: one asyncio event loop parsing HTTP/1.1 by hand (no thread switches, no
  ``email.parser``), a few times cheaper per call, so that the server is not what limits
  either of the two clients measured against it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading
import time
from collections import Counter
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWER = b'{"ok": true}'


class Calls:
    """Calls per idempotency key (a POST without the header counts under the empty key)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: Counter[str] = Counter()
        self._first: float | None = None
        self._last: float | None = None
        self._at: dict[str, float] = {}

    def add(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._keys[key] += 1
            self._at.setdefault(key, now)
            if self._first is None:
                self._first = now
            self._last = now

    def reset(self) -> None:
        with self._lock:
            self._keys = Counter()
            self._at = {}
            self._first = self._last = None

    def stats(self) -> bytes:
        with self._lock:
            calls = sum(self._keys.values())
            return json.dumps(
                {"calls": calls, "keys": dict(self._keys), "first": self._first, "last": self._last, "at": self._at}
            ).encode()


def serve_stdlib(calls: Calls) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Without TCP_NODELAY the body, written after the headers, waits for the client's delayed
        # ACK: about 40 ms per call on Linux, instead of a fraction of a millisecond.
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, payload: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            if self.path == "/reset":
                calls.reset()
                self._answer(b'{"reset": true}')
                return
            calls.add(self.headers.get("Idempotency-Key") or "")
            self._answer(ANSWER)

        def do_GET(self) -> None:
            self._answer(calls.stats())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


def _response(payload: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(payload)).encode()
        + b"\r\n\r\n"
        + payload
    )


class _Connection(asyncio.Protocol):
    """HTTP/1.1 keep-alive, pipelining-safe: requests are answered in the order they came."""

    ok = _response(ANSWER)

    def __init__(self, calls: Calls) -> None:
        self.calls = calls
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out: list[bytes] = []
        close = False
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            method, path = head[0].split(" ", 2)[:2]
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                break  # the body has not all arrived
            self.buffer = self.buffer[end + 4 + length :]
            close = close or headers.get("connection", "").lower() == "close"
            if method == "GET":
                out.append(_response(self.calls.stats()))
            elif path == "/reset":
                self.calls.reset()
                out.append(_response(b'{"reset": true}'))
            else:
                self.calls.add(headers.get("idempotency-key", ""))
                out.append(self.ok)
        if out and self.transport is not None:
            self.transport.write(b"".join(out))
            if close:
                self.transport.close()


def serve_fast(calls: Calls) -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Connection(calls), "127.0.0.1", 0, backlog=512)
        port = server.sockets[0].getsockname()[1]
        print(f"listening {port}", flush=True)
        await server.serve_forever()

    asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.release_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=["stdlib", "fast"], default="fast")
    options = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    calls = Calls()
    with suppress(KeyboardInterrupt, SystemExit):
        (serve_fast if options.kind == "fast" else serve_stdlib)(calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
