"""The real processes, for fault tests: gunicorn (web), Celery workers and beats, and a Redis server of
the test's own, which it may kill and start again (empty: no persistence)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
import requests
from sqlalchemy import Engine, create_engine, delete

from adapters.db.tables import metadata
from bootstrap.settings import load_settings
from tests.conftest import ADMIN_TOKEN, DYNAMICS_KEY, sign, wait_for
from tests.workers import CeleryProcess, start_beat, start_worker, watch_for_late_sends

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """``redis-server`` on a port of its own, in the foreground: killed with SIGKILL, it loses everything."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.folder)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        wait_for(lambda: _pings(client), timeout=15, what="redis-server to start")
        client.close()
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def flush(self) -> None:
        client = redis.Redis.from_url(self.url, socket_timeout=2)
        client.flushall()
        client.close()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


class WebServer:
    """The Procfile's web process: gunicorn with bootstrap/gunicorn_conf.py, bound to the loopback."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "gunicorn", "--config", "bootstrap/gunicorn_conf.py"),
                    *("--bind", f"127.0.0.1:{self.port}", "webhooks:create_app()"),
                ],
                cwd=ROOT,
                env={**env, "PORT": str(self.port), "WEB_CONCURRENCY": "2"},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for(self._ready, timeout=60, interval=0.2, what="gunicorn to answer /healthz")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError("gunicorn exited at start:\n" + self.log.read_text(errors="replace")[-3000:])
        try:
            return requests.get(self.url + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


class Stack:
    """Web, workers and beats against one PostgreSQL database and the test's own Redis."""

    def __init__(self, env: dict[str, str], redis_server: RedisServer, folder: Path) -> None:
        self.env = env
        self.redis = redis_server
        self.folder = folder
        self.engine: Engine = create_engine(load_settings(env).database_url)
        self.web: WebServer | None = None
        self.workers: list[CeleryProcess] = []
        self.beats: list[CeleryProcess] = []
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        # A connection per call: a kept-alive one reused just as gunicorn closes it (keepalive 5 s)
        # fails with "Remote end closed connection", which says nothing about Holdfast.
        self.http.headers["Connection"] = "close"

    # -- processes

    def start_web(self) -> Stack:
        self.web = WebServer(self.env, self.folder / f"web-{uuid.uuid4().hex[:6]}.log")
        return self

    def start_worker(self, concurrency: int = 2, **env: str) -> CeleryProcess:
        worker = start_worker({**self.env, **env}, concurrency=concurrency)
        self.workers.append(worker)
        return worker

    def start_beat(self, **env: str) -> CeleryProcess:
        own = self.folder / f"beat-{uuid.uuid4().hex[:6]}"  # each beat its own schedule file
        beat = start_beat({**self.env, "HOLDFAST_INSTANCE_DIR": str(own), **env})
        self.beats.append(beat)
        return beat

    def stop(self) -> None:
        for process in [*self.workers, *self.beats]:
            process.stop()
        if self.web is not None:
            self.web.stop()
        self.engine.dispose()

    # -- the HTTP API, as a client would use it

    @property
    def url(self) -> str:
        assert self.web is not None, "start_web() first"
        return self.web.url

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, self.url + path, timeout=30, **kwargs)

    def post_stripe(self, event: dict[str, Any]) -> requests.Response:
        body = json.dumps(event)
        return requests.post(
            self.url + "/webhooks/stripe",
            data=body,
            headers={"Stripe-Signature": sign(body), "Content-Type": "application/json"},
            timeout=30,
        )

    def post_dynamics(self, body: dict[str, Any]) -> requests.Response:
        return requests.post(f"{self.url}/webhooks/dynamics?code={DYNAMICS_KEY}", json=body, timeout=30)

    def watch_for_late_sends(self, seconds: float) -> None:
        """See ``tests.workers.watch_for_late_sends``: over every worker of the stack."""
        watch_for_late_sends(self.workers, seconds)

    # -- what the database holds

    def rows(self, sql: str, **params: Any) -> list[Any]:
        from sqlalchemy import text

        with self.engine.connect() as connection:
            return list(connection.execute(text(sql), params))


def empty_tables(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(delete(table))


@contextlib.contextmanager
def running_stack(env: dict[str, str], redis_server: RedisServer, folder: Path) -> Iterator[Stack]:
    stack = Stack(env, redis_server, folder)
    empty_tables(stack.engine)
    redis_server.flush()
    try:
        yield stack
    finally:
        stack.stop()


def until(predicate: Any, timeout: float, what: str, interval: float = 0.25) -> float:
    """Wait for ``predicate``; return how long it took (for the figures printed in the test's output)."""
    started = time.monotonic()
    wait_for(predicate, timeout=timeout, interval=interval, what=what)
    return time.monotonic() - started
