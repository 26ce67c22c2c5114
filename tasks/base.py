"""The base class of every Holdfast task: acknowledged late, transient failures retried with backoff.

It plays the part of warehouse's ``WarehouseTask`` (pypi/warehouse, ``warehouse/tasks.py``), with
one difference: a task does not run in one transaction of its own. Holdfast's tasks run several
short ones (a call to a peer is made outside any transaction), each in a unit of work that sends
its follow-up tasks only once it has committed (``UnitOfWork.after_commit``). What this class
sends itself is the retry, and it sends it after ``before_retry`` has committed what the retry
needs (a delivery's row says when it is due, so the sweep waits for it).
"""

from __future__ import annotations

from typing import Any

from celery import Task
from celery.utils.time import get_exponential_backoff_interval

from bootstrap import TRANSIENT_ERRORS
from services.ports import PeerUnavailable


class HoldfastTask(Task):  # type: ignore[misc]  # Celery is untyped
    """Retries what is transient, after at most ``retry_backoff`` * 2**n seconds (full jitter), up to
    ``max_retries`` times; then the error is raised and the sweep takes the work over later.

    Options of a task (``@app.task(base=HoldfastTask, ...)``) change them for that task:
    ``transient_errors`` (``()``: never retried), ``max_retries``, ``honours_retry_after``.
    """

    acks_late = True
    transient_errors: tuple[type[BaseException], ...] = TRANSIENT_ERRORS
    # Celery's own names for the backoff (its ``autoretry_for`` is not used: it has no hook for
    # ``before_retry`` or a peer's Retry-After).
    retry_backoff = 2  # the first retry within 2 s, the next within 4 s, ...
    retry_backoff_max = 300
    retry_jitter = True
    # A peer's Retry-After (``PeerUnavailable.retry_after_seconds``) is the shortest delay.
    honours_retry_after = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # As Celery's documentation does: the worker (or ``apply``) has pushed the request already.
        try:
            return self.run(*args, **kwargs)
        except self.transient_errors as error:
            countdown = self.retry_delay(error)
            self.before_retry(error, countdown, *args, **kwargs)
            # Past max_retries, Celery raises ``error`` itself instead of sending the retry.
            raise self.retry(exc=error, countdown=countdown) from None

    @property
    def last_try(self) -> bool:
        """Whether this run is the last one: a transient failure now is raised, not retried."""
        return self.max_retries is not None and bool(self.request.retries >= self.max_retries)

    def backoff(self) -> int:
        """Seconds before the next try: random, up to ``retry_backoff`` * 2**retries (capped)."""
        return int(
            get_exponential_backoff_interval(
                factor=self.retry_backoff,
                retries=self.request.retries,
                maximum=self.retry_backoff_max,
                full_jitter=self.retry_jitter,
            )
        )

    def retry_delay(self, error: BaseException) -> float:
        """The backoff, or the peer's Retry-After when the task honours it and it is longer."""
        delay = self.backoff()
        if self.honours_retry_after and isinstance(error, PeerUnavailable):
            return max(error.retry_after_seconds or 0, delay)
        return delay

    def before_retry(self, error: BaseException, countdown: float, *args: Any, **kwargs: Any) -> None:
        """Called with the task's arguments before the retry is sent (or, on the last try, the error
        raised); what it commits is committed before the retry exists. Nothing by default."""
