from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.workers import CeleryProcess, start_worker


@pytest.fixture(scope="session")
def worker_env(backend_env: dict[str, str]) -> dict[str, str]:
    return dict(backend_env)


@pytest.fixture
def worker(worker_env: dict[str, str], container: Any) -> Iterator[CeleryProcess]:
    """A real worker process for one test, started after the tables were emptied."""
    process = start_worker(worker_env)
    try:
        yield process
    finally:
        process.stop()
