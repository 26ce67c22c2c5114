"""The relay: a thread in the worker that hands stored deliveries to the broker.

Webhooks only store; the relay queues what they stored, oldest first. On PostgreSQL it wakes
on the ``pg_notify`` sent with each stored row (and at least every second); on SQLite it
polls. Rows are claimed with ``SKIP LOCKED``, so several workers' relays share the work, and
a row queued twice is still processed once.

It also watches the broker: when the broker was unreachable or came back empty (a Redis
restarted without persistence), the messages it held may be gone, and ``recover`` queues again
everything still undone, at once, without waiting for the sweep. While the broker is down the
relay keeps trying every second, and drains the backlog at full speed as soon as it is back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

import psycopg
import structlog
from sqlalchemy import Engine

from adapters.db.inbox_store import INBOX_CHANNEL

log = structlog.get_logger(__name__)


class BrokerWatch(Protocol):
    def lost_messages(self) -> bool:
        """True when the broker may have lost messages since the last look; raises while it is unreachable."""


class InboxRelay:
    def __init__(
        self,
        engine: Engine,
        relay_once: Callable[[], int],
        *,
        watch: BrokerWatch | None = None,
        recover: Callable[[], None] | None = None,
        batch: int = 500,
        poll_seconds: float = 0.2,
        listen_timeout: float = 1.0,
    ) -> None:
        self.engine = engine
        self.relay_once = relay_once
        self.watch = watch
        self.recover = recover
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.listen_timeout = listen_timeout
        self._recovery_due = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inbox-relay", daemon=True)

    def start(self) -> InboxRelay:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _listener(self) -> psycopg.Connection[Any] | None:
        if self.engine.dialect.name != "postgresql":
            return None
        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        connection = psycopg.connect(url, autocommit=True, connect_timeout=5)
        connection.execute(f"LISTEN {INBOX_CHANNEL}")
        return connection

    def _check_broker(self) -> None:
        if self.watch is not None and self.watch.lost_messages():
            self._recovery_due = self.recover is not None
        if self._recovery_due and self.recover is not None:
            self.recover()  # if it fails part-way, it is tried again on the next turn
            self._recovery_due = False

    def _turn(self) -> None:
        self._check_broker()
        while self.relay_once() >= self.batch and not self._stop.is_set():
            pass  # a backlog: keep draining

    def _wait(self, listener: psycopg.Connection[Any] | None) -> None:
        """Until a row is committed (PostgreSQL's NOTIFY) or the poll interval passes."""
        if listener is None:
            self._stop.wait(self.poll_seconds)
            return
        for _ in listener.notifies(timeout=self.listen_timeout, stop_after=1):
            pass

    def _run(self) -> None:
        listener: psycopg.Connection[Any] | None = None
        failing = False
        while not self._stop.is_set():
            try:
                if listener is None and self.engine.dialect.name == "postgresql":
                    listener = self._listener()
                self._turn()
                if failing:
                    log.info("inbox_relay_resumed")
                    failing = False
                self._wait(listener)
            except Exception as error:
                if not failing:  # once per outage, not once a second
                    log.warning("inbox_relay_failed", error=type(error).__name__)
                    failing = True
                if listener is not None and (listener.closed or listener.broken):
                    listener = None
                self._stop.wait(1.0)
        if listener is not None:
            listener.close()
