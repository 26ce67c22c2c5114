"""A small closed-loop HTTP/1.1 load generator for signed Stripe webhooks.

Each request is a distinct Stripe event (the recorded template with a fresh ``id``), signed
with stripe-python's ``WebhookSignature.generate_signature_header``. Requests are built before
the clock starts and kept as (head, body prefix, id, body suffix) byte strings, so the pool
costs a few hundred bytes per request and one ``sendmsg`` puts a request on the wire.

Threads each hold one keep-alive connection to 127.0.0.1 and send one request at a time.
The client is deliberately raw (no requests/http.client) to leave as much of the shared CPU
as possible to the server being measured.
"""

from __future__ import annotations

import itertools
import json
import math
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import stripe

_ID_MARK = "evt_HOLDFAST_BENCH_EVENT_ID_"  # replaced by a fresh 28-character id per request


class ConnectionClosed(Exception):
    """The server closed the connection; ``partial`` when part of an answer had arrived."""

    def __init__(self, partial: bool) -> None:
        super().__init__("connection closed" + (" mid-answer" if partial else ""))
        self.partial = partial


@dataclass(frozen=True)
class RequestPool:
    """Pre-built, pre-signed requests: ``parts[i]`` is sent as one request."""

    parts: list[tuple[bytes, bytes, bytes, bytes]]

    def __len__(self) -> int:
        return len(self.parts)


def build_requests(template: Path, secret: str, host: str, count: int, tag: str) -> RequestPool:
    """``count`` distinct events made from ``template``, each with a fresh id, signed now."""
    event: dict[str, Any] = json.loads(template.read_text())
    event["id"] = _ID_MARK
    event["created"] = int(time.time())
    text = json.dumps(event, indent=2)  # Stripe sends pretty-printed JSON
    prefix, suffix = text.split(_ID_MARK, 1)
    assert _ID_MARK not in suffix
    prefix_b, suffix_b = prefix.encode(), suffix.encode()
    run = (tag + secrets.token_hex(4))[:12].ljust(12, "0")
    timestamp = int(time.time())
    parts = []
    for i in range(count):
        event_id = f"evt_{run}{i:012d}"  # always 28 characters, like Stripe's
        body = prefix + event_id + suffix
        signature = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=timestamp)
        head = (
            "POST /webhooks/stripe HTTP/1.1\r\n"
            f"Host: {host}\r\n"
            "User-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)\r\n"
            "Accept: */*; q=0.5, application/xml\r\n"
            "Cache-Control: no-cache\r\n"
            "Content-Type: application/json; charset=utf-8\r\n"
            f"Stripe-Signature: {signature}\r\n"
            f"Content-Length: {len(body.encode())}\r\n"
            "\r\n"
        ).encode()
        parts.append((head, prefix_b, event_id.encode(), suffix_b))
    return RequestPool(parts)


class _Connection:
    def __init__(self, address: tuple[str, int], timeout: float) -> None:
        self.address, self.timeout = address, timeout
        self.sock: socket.socket | None = None
        self.buffer = bytearray()

    def open(self) -> socket.socket:
        if self.sock is None:
            sock = socket.create_connection(self.address, timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock, self.buffer = sock, bytearray()
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def exchange(self, parts: tuple[bytes, ...]) -> int:
        """Send one request, read its answer, return the status code."""
        sock = self.open()
        sock.sendmsg(parts)
        buffer = self.buffer
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionClosed(partial=bool(buffer))
            buffer += chunk
        lines = bytes(buffer[:end]).split(b"\r\n")
        del buffer[: end + 4]
        status = int(lines[0].split(b" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
            elif name == b"transfer-encoding":
                raise ValueError("chunked answers are not expected from these endpoints")
        while len(buffer) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionClosed(partial=True)
            buffer += chunk
        del buffer[:length]
        if close:
            self.close()
        return status


@dataclass
class LoadResult:
    """What one timed run saw. Latencies in seconds, of requests started inside the window."""

    window: float
    completed_in_window: int
    latencies: list[float]
    sent: int
    statuses: dict[int, int]
    errors: int
    reconnects: int
    exhausted: bool
    client_cpu: float
    error_samples: list[str] = field(default_factory=list)
    probes: tuple[Any, Any] = (None, None)

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)


def run_load(
    address: tuple[str, int],
    pool: RequestPool,
    *,
    connections: int,
    warmup: float,
    duration: float,
    timeout: float = 30.0,
    probe: Callable[[], Any] | None = None,
) -> LoadResult:
    """Closed loop: ``connections`` threads send the pool's requests, each at most once.

    The first ``warmup`` seconds are not measured; the run stops ``duration`` seconds later,
    or earlier when the pool is used up. Every request is bounded by ``timeout``.
    ``probe()`` is called as the measured window opens and as it closes.
    """
    counter = itertools.count()
    start_event = threading.Event()
    stop_event = threading.Event()
    lock = threading.Lock()
    per_thread: list[list[tuple[float, float, int]]] = []
    errors: list[str] = []
    reconnects = [0]
    times: dict[str, float] = {}

    def worker() -> None:
        samples: list[tuple[float, float, int]] = []
        with lock:
            per_thread.append(samples)
        connection = _Connection(address, timeout)
        start_event.wait()
        perf = time.perf_counter
        try:
            while not stop_event.is_set():
                i = next(counter)
                if i >= len(pool.parts):
                    break
                parts = pool.parts[i]
                began = perf()
                try:
                    try:
                        status = connection.exchange(parts)
                    except (ConnectionClosed, ConnectionResetError, BrokenPipeError) as error:
                        # A keep-alive connection closed under us (e.g. a worker recycled after
                        # max_requests): like any HTTP client, retry once on a new connection.
                        if isinstance(error, ConnectionClosed) and error.partial:
                            raise
                        connection.close()
                        with lock:
                            reconnects[0] += 1
                        status = connection.exchange(parts)
                except Exception as error:  # counted, reported, never retried again
                    connection.close()
                    status = -1
                    with lock:
                        if len(errors) < 5:
                            errors.append(f"{type(error).__name__}: {error}")
                samples.append((began, perf(), status))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, daemon=True, name=f"load-{n}") for n in range(connections)]
    for thread in threads:
        thread.start()
    cpu_before = time.process_time()
    began = time.perf_counter()
    times["measure_from"] = began + warmup
    times["measure_to"] = times["measure_from"] + duration
    start_event.set()
    probes: list[Any] = []
    try:
        for until in (times["measure_from"], times["measure_to"]):
            while time.perf_counter() < until and any(t.is_alive() for t in threads):
                time.sleep(min(0.05, max(until - time.perf_counter(), 0)))
            probes.append(probe() if probe else None)
    finally:
        stop_event.set()
        for thread in threads:
            thread.join(timeout + 5)
    ended = time.perf_counter()
    client_cpu = time.process_time() - cpu_before

    samples = [s for thread_samples in per_thread for s in thread_samples]
    exhausted = len(samples) >= len(pool.parts)
    window_from = times["measure_from"]
    window_to = min(times["measure_to"], max((s[1] for s in samples), default=window_from))
    window = max(window_to - window_from, 1e-9)
    statuses: dict[int, int] = {}
    for _, _, status in samples:
        statuses[status] = statuses.get(status, 0) + 1
    return LoadResult(
        window=window,
        completed_in_window=sum(1 for _, done, _ in samples if window_from <= done <= window_to),
        latencies=sorted(done - start for start, done, status in samples if window_from <= start < window_to),
        sent=len(samples),
        statuses={k: v for k, v in statuses.items() if k != -1},
        errors=statuses.get(-1, 0),
        reconnects=reconnects[0],
        exhausted=exhausted,
        client_cpu=client_cpu / max(ended - began, 1e-9),
        error_samples=errors,
        probes=(probes[0], probes[1]) if len(probes) == 2 else (None, None),
    )


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (nan when there are none)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), math.ceil(fraction * len(sorted_values))))
    return sorted_values[rank - 1]
