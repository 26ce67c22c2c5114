"""Fault tests: the real processes (web, workers, beats) on PostgreSQL and a Redis of the test's own.

They run in the PostgreSQL + Redis pass (``HOLDFAST_TEST_BACKEND=postgres``, which CI makes
mandatory); in the SQLite pass they are skipped with that reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKEND
from tests.faults.stack import RedisServer, Stack, running_stack

# Fast housekeeping so that recovery shows within the tests' bounds; every other setting is the default.
FAULT_TUNING = {
    "SWEEP_INTERVAL_SECONDS": "1",
    "INBOX_SWEEP_AGE_SECONDS": "2",
    "TICK_INTERVAL_SECONDS": "2",
    "RECONCILE_INTERVAL_SECONDS": "3600",
    "PROVISIONING_STUCK_SECONDS": "2",
    "PROVISIONING_BACKOFF_SECONDS": "1",
    "PROVISIONING_MAX_ATTEMPTS": "20",
    "PROVISIONING_READ_TIMEOUT": "10",
    "CRM_RECHECK_SECONDS": "3",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if BACKEND != "postgres":
        skip = pytest.mark.skip(reason="fault tests need PostgreSQL and Redis: they run in the postgres pass")
        for item in items:
            if "tests/faults/" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.kill()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def stack(
    backend_env: dict[str, str], own_redis: RedisServer, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    """Empty tables, an empty Redis of its own; processes are started by the test (``stack.start_web()``...)."""
    if own_redis.process is None:  # a test that killed it and failed before starting it again
        own_redis.start()
    env = {**backend_env, **FAULT_TUNING, "REDIS_URL": own_redis.url}
    with running_stack(env, own_redis, tmp_path) as running:
        yield running
        if request.node.stash.get(FAILED, False):  # what the processes said, for the diagnosis
            for process in [*running.workers, *running.beats]:
                print(f"\n--- celery {process.args[0]} (last lines)\n" + "\n".join(process.lines[-80:]))
