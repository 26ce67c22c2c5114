"""A real local HTTP server standing in for Stripe's API (point ``STRIPE_API_BASE`` at ``url``).

It serves what Holdfast reads from Stripe, the way Stripe answers:

- ``GET /v1/events``: the events it holds, **newest first** (``created`` descending; events
  created in the same second in the reverse of the order they were added), in the list
  shape of the recorded ``events_list.*.json`` fixture (``object``, ``url``, ``has_more``,
  ``data``). Filters: ``created`` (a whole number, or ``created[gt|gte|lt|lte]``),
  ``types[]`` / ``types[N]`` (up to 20) or ``type`` (``*`` as a wildcard), ``limit`` (1 to
  100, default 10). Cursors: ``starting_after=<id>`` gives the next page (older objects),
  ``ending_before=<id>`` the page just before that object (the ``limit`` objects nearest to
  it among the newer ones, still newest first); ``has_more`` says whether more objects lie
  further in the direction paged. A cursor naming an event it does not hold is a 400, as are
  both cursors together, a bad limit or more than 20 types. Events older than the retention
  (30 days before the server's clock) are not listed.
- ``GET /v1/charges/<id>`` and ``GET /v1/payment_intents/<id>``: the objects configured with
  ``add_charge`` / ``add_payment_intent`` (or a status to answer instead), 404 otherwise.

Every request is recorded (method, path, query, headers). A request without
``Authorization: Bearer <api_key>`` is answered 401 as Stripe does. ``fail_events`` makes
event listings fail from the Nth on (a status such as 500, or 429)::

    with running_stripe_api() as stripe_api:
        stripe_api.add_events(event, ...)        # dicts, as Stripe sends them
        stripe_api.page_limit = 3                # at most 3 per page, whatever limit is asked
        stripe_api.fail_events(500, after=2)     # the 3rd listing and every later one: 500
        stripe_api.event_listings()              # the query of each GET /v1/events, parsed
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.conftest import FIXTURES

RETENTION_SECONDS = 30 * 24 * 3600
MAX_TYPES = 20
_INDEXED = re.compile(r"^(?P<name>[a-z_]+)\[(?P<key>[a-z_]*|\d+)\]$")


def _list_shape() -> dict[str, Any]:
    """The envelope of a recorded GET /v1/events answer, without its events."""
    recorded = next((FIXTURES / "stripe").glob("events_list.*.json"), None)
    if recorded is None:  # a clone without shared/: the same keys
        return {"object": "list", "url": "/v1/events", "has_more": False, "data": []}
    shape: dict[str, Any] = json.loads(recorded.read_text())
    return {**shape, "data": [], "has_more": False}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    at: float


@dataclass
class EventListing:
    """The parameters of one GET /v1/events, as the server understood them."""

    created: dict[str, int]
    types: list[str]
    limit: int | None
    starting_after: str | None
    ending_before: str | None
    raw: dict[str, list[str]] = field(repr=False)


class StripeError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.kind}
        if self.code:
            error["code"] = self.code
        return {"error": error}


class StripeApiServer:
    def __init__(self, api_key: str = "sk_test_holdfast_local") -> None:
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self.page_limit: int | None = None  # caps every page, whatever limit the client asks for
        self.clock: Callable[[], float] = time.time
        self._events: list[tuple[int, int, dict[str, Any]]] = []  # (created, sequence, event)
        self._sequence = 0
        self._charges: dict[str, dict[str, Any] | int] = {}
        self._intents: dict[str, dict[str, Any] | int] = {}
        self._failure: tuple[int, int] | None = None  # (status, listings answered normally first)
        self._listings = 0
        self._lock = threading.Lock()
        self._hang = threading.Event()  # set: every request waits (Stripe's API hanging) until cleared
        self._unhung = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if server._hang.is_set():
                    server._unhung.wait(300)
                status, body = server._answer(self)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Request-Id", f"req_local_{len(server.requests)}")
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:  # nothing Holdfast does writes to Stripe
                self.send_response(405)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # ------------------------------------------------------------------ configuration

    def add_events(self, *events: dict[str, Any]) -> None:
        """Hold these events (each needs ``id``, ``type`` and ``created``)."""
        with self._lock:
            for event in events:
                self._sequence += 1
                self._events.append((int(event["created"]), self._sequence, json.loads(json.dumps(event))))

    def add_charge(self, charge_id: str, answer: dict[str, Any] | int) -> None:
        """``GET /v1/charges/<charge_id>`` answers this object, or this status."""
        with self._lock:
            self._charges[charge_id] = answer

    def add_payment_intent(self, intent_id: str, answer: dict[str, Any] | int) -> None:
        with self._lock:
            self._intents[intent_id] = answer

    def fail_events(self, status: int | None, *, after: int = 0) -> None:
        """Answer ``status`` to every event listing after the first ``after`` (None: stop failing)."""
        with self._lock:
            self._failure = None if status is None else (status, self._listings + after)

    def hang(self, hanging: bool = True) -> None:
        """While hanging, every request is held without an answer (a client's timeout ends it)."""
        if hanging:
            self._unhung.clear()
            self._hang.set()
        else:
            self._hang.clear()
            self._unhung.set()

    def reset(self) -> None:
        self.hang(False)
        with self._lock:
            self.requests = []
            self.page_limit = None
            self.clock = time.time
            self._events, self._charges, self._intents = [], {}, {}
            self._failure, self._listings = None, 0

    # ------------------------------------------------------------------ what it received

    def event_listings(self) -> list[EventListing]:
        with self._lock:
            recorded = [r for r in self.requests if r.method == "GET" and r.path == "/v1/events"]
        return [_parse_listing(r.query) for r in recorded]

    def paths(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests]

    # ------------------------------------------------------------------ answers

    def _answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(handler.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        with self._lock:
            self.requests.append(Recorded("GET", parts.path, query, dict(handler.headers.items()), time.monotonic()))
        try:
            if handler.headers.get("Authorization") != f"Bearer {self.api_key}":
                given = (handler.headers.get("Authorization") or "").removeprefix("Bearer ")
                raise StripeError(401, f"Invalid API Key provided: {given[:8]}{'*' * 12}{given[-4:]}")
            if parts.path == "/v1/events":
                return 200, self._list_events(query)
            found = re.fullmatch(r"/v1/(charges|payment_intents)/([^/]+)", parts.path)
            if found:
                return 200, self._retrieve(found.group(1), found.group(2))
            raise StripeError(404, f"Unrecognized request URL (GET: {parts.path}).")
        except StripeError as error:
            return error.status, error.body()

    def _retrieve(self, kind: str, object_id: str) -> dict[str, Any]:
        with self._lock:
            answer = (self._charges if kind == "charges" else self._intents).get(object_id)
        what = "charge" if kind == "charges" else "payment_intent"
        if answer is None:
            raise StripeError(404, f"No such {what}: '{object_id}'", code="resource_missing")
        if isinstance(answer, int):
            raise StripeError(answer, f"The {what} could not be read right now.", kind="api_error")
        return {"id": object_id, "object": what, **answer}

    def _list_events(self, query: dict[str, list[str]]) -> dict[str, Any]:
        with self._lock:
            self._listings += 1
            failure = self._failure
            if failure is not None and self._listings > failure[1]:
                raise StripeError(failure[0], "An error occurred with our connection to Stripe.", kind="api_error")
            held = sorted(self._events, key=lambda e: (e[0], e[1]), reverse=True)  # newest first
            page_cap = self.page_limit
            oldest_kept = int(self.clock()) - RETENTION_SECONDS
        listing = _parse_listing(query)
        if listing.starting_after and listing.ending_before:
            raise StripeError(400, "You may only specify one of these parameters: ending_before, starting_after.")
        if listing.limit is not None and not 1 <= listing.limit <= 100:
            raise StripeError(400, "Invalid limit: must be between 1 and 100")
        if len(listing.types) > MAX_TYPES:
            raise StripeError(400, f"Invalid array: types must have at most {MAX_TYPES} elements")
        if listing.types and "type" in query:
            raise StripeError(400, "You may pass either type or types, but not both.")
        limit = listing.limit or 10
        if page_cap is not None:
            limit = min(limit, page_cap)

        def position(event_id: str) -> tuple[int, int]:
            for created, sequence, event in held:
                if event["id"] == event_id and created >= oldest_kept:
                    return created, sequence
            raise StripeError(400, f"No such event: '{event_id}'", code="resource_missing")

        patterns = listing.types or query.get("type", [])
        matching = [
            (created, sequence, event)
            for created, sequence, event in held
            if created >= oldest_kept
            and _created_matches(created, listing.created)
            and (not patterns or any(fnmatch.fnmatchcase(event["type"], p) for p in patterns))
        ]
        if listing.starting_after:
            anchor = position(listing.starting_after)
            older = [e for e in matching if (e[0], e[1]) < anchor]
            page, has_more = older[:limit], len(older) > limit
        elif listing.ending_before:
            anchor = position(listing.ending_before)
            newer = [e for e in matching if (e[0], e[1]) > anchor]
            page, has_more = newer[-limit:], len(newer) > limit
        else:
            page, has_more = matching[:limit], len(matching) > limit
        return {**_list_shape(), "has_more": has_more, "data": [event for _, _, event in page]}

    # ------------------------------------------------------------------ life cycle

    def start(self) -> StripeApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _parse_listing(query: dict[str, list[str]]) -> EventListing:
    created: dict[str, int] = {}
    types: list[tuple[int, str]] = []
    for key, values in query.items():
        if key == "created":
            created["eq"] = int(values[-1])
            continue
        indexed = _INDEXED.match(key)
        if indexed is None:
            continue
        name, sub = indexed.group("name"), indexed.group("key")
        if name == "created" and sub in ("gt", "gte", "lt", "lte"):
            created[sub] = int(values[-1])
        elif name == "types":
            order = int(sub) if sub.isdigit() else len(types)
            types.extend((order, v) for v in values)
    limit = query.get("limit")
    return EventListing(
        created=created,
        types=[t for _, t in sorted(types, key=lambda t: t[0])],
        limit=int(limit[-1]) if limit else None,
        starting_after=(query.get("starting_after") or [None])[-1],
        ending_before=(query.get("ending_before") or [None])[-1],
        raw=query,
    )


def _created_matches(created: int, bounds: dict[str, int]) -> bool:
    checks = {
        "eq": lambda v: created == v,
        "gt": lambda v: created > v,
        "gte": lambda v: created >= v,
        "lt": lambda v: created < v,
        "lte": lambda v: created <= v,
    }
    return all(checks[op](value) for op, value in bounds.items())


@contextmanager
def running_stripe_api(api_key: str = "sk_test_holdfast_local") -> Iterator[StripeApiServer]:
    server = StripeApiServer(api_key).start()
    try:
        yield server
    finally:
        server.stop()
