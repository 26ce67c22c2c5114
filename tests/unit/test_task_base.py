"""Every task's base class: a transient failure is retried with backoff up to ``max_retries`` times and
then raised; any other failure is not retried. Tasks run in-process by Celery's ``apply`` (no broker)."""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery
from sqlalchemy.exc import OperationalError

from services.ports import PeerUnavailable, StorageUnavailable
from tasks.base import HoldfastTask

app = Celery("holdfast-unit", set_as_current=False)


class Recorded(HoldfastTask):
    """Notes each retry (the delay it was given, whether it was the last try, the task's arguments)."""

    retries: list[tuple[float, bool, tuple[Any, ...]]]

    def before_retry(self, error: BaseException, countdown: float, *args: Any, **kwargs: Any) -> None:
        self.retries.append((countdown, self.last_try, args))


def failing(name: str, errors: list[BaseException], **options: Any) -> Any:
    """A task that raises ``errors`` one per run, then answers ``done``."""
    pending = list(errors)

    @app.task(name=name, base=Recorded, shared=False, **options)
    def task(account_id: str) -> str:
        if pending:
            raise pending.pop(0)
        return "done"

    task.retries = []
    return task


def test_a_transient_failure_is_retried_until_the_task_succeeds() -> None:
    task = failing("t.succeeds", [StorageUnavailable("down"), OperationalError("select 1", {}, Exception())])
    result = task.apply(args=["acme"])
    assert result.get() == "done"
    assert [args for _, _, args in task.retries] == [("acme",), ("acme",)]


def test_after_max_retries_the_transient_error_is_raised() -> None:
    task = failing("t.gives_up", [StorageUnavailable(f"down {n}") for n in range(5)], max_retries=2)
    result = task.apply(args=["acme"])
    assert result.failed()
    assert str(result.result) == "down 2"  # the third run's own error: two retries, then raised
    assert [last for _, last, _ in task.retries] == [False, False, True]


def test_a_failure_that_is_not_transient_is_not_retried() -> None:
    task = failing("t.refused", [ValueError("bad data")])
    result = task.apply(args=["acme"])
    assert result.failed() and isinstance(result.result, ValueError)
    assert task.retries == []


def test_a_task_without_transient_errors_is_never_retried() -> None:
    task = failing("t.periodic", [StorageUnavailable("down")], transient_errors=())
    result = task.apply(args=["acme"])
    assert result.failed() and isinstance(result.result, StorageUnavailable)
    assert task.retries == []


def test_retry_n_waits_at_most_2_to_the_n_plus_1_seconds_and_never_more_than_300() -> None:
    task = failing("t.backoff", [StorageUnavailable("down")] * 10, max_retries=10)
    assert task.apply(args=["acme"]).get() == "done"
    assert len(task.retries) == 10
    for n, (countdown, _, _) in enumerate(task.retries):
        assert 0 <= countdown <= min(2 * 2**n, 300)  # 2, 4, 8, ... 256, then 300


@pytest.mark.parametrize(("honours", "shortest"), [(True, 60), (False, 0)])
def test_a_peers_retry_after_is_the_shortest_wait_only_where_honoured(honours: bool, shortest: float) -> None:
    task = failing(
        f"t.retry_after_{honours}",
        [PeerUnavailable("429", retry_after_seconds=60)],
        honours_retry_after=honours,
    )
    assert task.apply(args=["acme"]).get() == "done"
    [(countdown, _, _)] = task.retries
    assert countdown >= shortest and (honours or countdown <= 2)
