"""The worker's Celery app and tasks. Importing this module is starting a worker or beat process."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import Task
from celery.signals import setup_logging, worker_process_init, worker_ready, worker_shutdown
from celery.utils.time import get_exponential_backoff_interval
from structlog import get_logger

from adapters.broker import (
    TASK_DISPATCH_PROVISIONING,
    TASK_PROCESS_INBOX_EVENT,
    TASK_RECONCILE_STRIPE,
    TASK_SWEEP_INBOX,
    TASK_TICK,
    TASK_WRITE_BACK_HOLD,
)
from adapters.inbox_relay import InboxRelay
from adapters.stripe_api import StripeLookupFailed, StripeUnavailable
from bootstrap import Container, build
from bootstrap.celery_app import create_celery
from bootstrap.logging import configure_logging
from bootstrap.settings import ConfigurationError, load_settings
from services import crm_write_back, inbox, provisioning, reconciliation, tick
from services.stripe_events import HANDLED_EVENT_TYPES

try:
    settings = load_settings()
    build(settings)  # check the whole configuration (policy file included) before serving
except ConfigurationError as error:  # stop with the sentence, not a traceback
    raise SystemExit(f"Holdfast cannot start: {error}") from None
log = get_logger(__name__)
app = create_celery(settings)
_container: Container | None = None


@setup_logging.connect
def _logging(**_: Any) -> None:
    configure_logging(settings.log_level)


_relay: tuple[Container, InboxRelay] | None = None


@worker_ready.connect
def _start_relay(**_: Any) -> None:
    """In the worker's main process: queue what the webhooks stored, as soon as they store it."""
    global _relay
    own = build(settings)  # its own engine, not shared with the pool's processes
    relay = InboxRelay(own.engine, lambda: inbox.relay_stored(own.uow(), own.publisher, now=own.clock()))
    _relay = (own, relay.start())


@worker_shutdown.connect
def _stop_relay(**_: Any) -> None:
    if _relay is not None:
        _relay[1].stop()
        _relay[0].engine.dispose()


@worker_process_init.connect
def _forget_parent_connections(**_: Any) -> None:
    # A pool process forked after the relay started must not touch the relay's connections.
    if _relay is not None:
        _relay[0].engine.dispose(close=False)


def container() -> Container:
    """Built on first use in each worker process (after the fork), never at import."""
    global _container
    if _container is None:
        _container = build(settings)
        _container.celery = app
    return _container


@app.task(
    name=TASK_PROCESS_INBOX_EVENT,
    bind=True,
    acks_late=True,
    max_retries=settings.task_max_retries,
)
def process_inbox_event(self: Task, inbox_id: int) -> str:
    """Apply one stored webhook delivery; retry only transient (database) failures."""
    c = container()
    try:
        return inbox.process_inbox_event(c.uow(), inbox_id, c.handlers, c.context, c.clock(), c.transient_errors)
    except c.transient_errors as error:
        inbox.record_transient_error(c.uow(), inbox_id, f"{type(error).__name__}: transient, will retry")
        if self.request.retries >= settings.task_max_retries:
            raise  # the row stays received; the sweep picks it up later
        raise self.retry(exc=error, countdown=_backoff(self.request.retries)) from None


def _backoff(retries: int) -> int:
    return int(get_exponential_backoff_interval(factor=2, retries=retries, maximum=300, full_jitter=True))


@app.task(name=TASK_SWEEP_INBOX, acks_late=True)
def sweep() -> int:
    """Re-queue deliveries left unprocessed and provisioning requests left behind (lost messages, dead workers)."""
    c = container()
    swept = inbox.sweep(
        c.uow(), c.publisher, older_than=timedelta(seconds=settings.inbox_sweep_age_seconds), now=c.clock()
    )
    return swept + provisioning.sweep_requests(c.uow(), c.context, c.clock())


@app.task(
    name=TASK_DISPATCH_PROVISIONING,
    bind=True,
    acks_late=True,
    max_retries=settings.task_max_retries,
)
def dispatch_provisioning(self: Task, request_ids: list[str]) -> dict[str, str]:
    """Call the provisioning API for a batch of queued requests and record each outcome."""
    c = container()
    try:
        return provisioning.dispatch_requests(
            c.uow, c.context, c.provisioner, request_ids, c.clock, threads=settings.provisioning_threads
        )
    except c.transient_errors as error:
        if self.request.retries >= settings.task_max_retries:
            raise  # the requests stay queued or provisioning; the sweep picks them up
        raise self.retry(exc=error, countdown=_backoff(self.request.retries)) from None


@app.task(name=TASK_WRITE_BACK_HOLD, bind=True, acks_late=True, max_retries=settings.task_max_retries)
def write_back_hold(self: Task, account_id: str) -> str:
    """Make the CRM's creditonhold show the account's effective hold (429 and 5xx are retried)."""
    c = container()
    if c.crm is None:
        return "not_configured"
    try:
        result = crm_write_back.write_back_hold(c.uow, c.context, c.crm, account_id, c.clock)
    except c.transient_errors as error:
        raise self.retry(exc=error, countdown=_backoff(self.request.retries)) from None
    if result.outcome == "retry":
        if self.request.retries >= settings.task_max_retries:
            return "gave_up"  # the next change of the account writes again
        delay = result.retry_after_seconds if result.retry_after_seconds is not None else _backoff(self.request.retries)
        raise self.retry(countdown=delay)
    return result.outcome


@app.task(name=TASK_TICK, acks_late=True)
def clock_tick() -> int:
    """Re-evaluate the accounts whose next evaluation time has come."""
    c = container()
    return tick.tick(c.uow(), c.context, c.clock())


@app.task(name=TASK_RECONCILE_STRIPE, bind=True, acks_late=True, max_retries=3)
def reconcile_stripe(self: Task) -> int:
    """Store and process every Stripe event the inbox lacks (missed webhooks)."""
    c = container()
    if c.stripe_api is None:
        log.warning("stripe_reconcile_skipped", reason="STRIPE_API_KEY is not set")
        return 0
    try:
        result = reconciliation.reconcile_stripe(
            c.uow,
            c.deliveries,
            c.stripe_api,
            now=c.clock(),
            clock=c.clock,
            lookback=timedelta(seconds=settings.reconcile_lookback_seconds),
            types=sorted(HANDLED_EVENT_TYPES),
        )
    except StripeUnavailable as error:
        raise self.retry(exc=error, countdown=_backoff(self.request.retries)) from None
    except StripeLookupFailed as error:
        log.warning("stripe_reconcile_refused", error=str(error))
        return 0
    return result.stored
