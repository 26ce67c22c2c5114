"""The worker's Celery app and tasks. Importing this module is starting a worker or beat process.

Each task is thin: it calls one service. Queues (adapters.broker) keep peers apart: events on
``holdfast.events``, calls to the provisioning API on ``holdfast.provisioning``, the Dataverse
Web API on ``holdfast.crm``, Stripe's API on ``holdfast.stripe``. Every task has a time limit;
a task that reaches it is killed like a crashed worker, and what it left is found by the sweep.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from celery.signals import setup_logging, worker_process_init, worker_ready, worker_shutdown
from structlog import get_logger

from adapters.broker import (
    QUEUE_EVENTS,
    QUEUE_OUTGOING,
    TASK_COMPLETE_INBOX_EVENT,
    TASK_DISPATCH_PROVISIONING,
    TASK_PROCESS_INBOX_EVENT,
    TASK_PURGE_INBOX,
    TASK_RECONCILE_STRIPE,
    TASK_SEND_OUTGOING,
    TASK_SWEEP_INBOX,
    TASK_SWEEP_OUTGOING,
    TASK_TICK,
    TASK_WRITE_BACK_HOLD,
)
from adapters.inbox_relay import InboxRelay
from adapters.stripe_api import StripeLookupFailed, StripeUnavailable
from adapters.stripe_parser import HANDLED_EVENT_TYPES
from bootstrap import Container, build, make_broker_watch
from bootstrap.celery_app import create_celery
from bootstrap.logging import configure_logging
from bootstrap.settings import ConfigurationError, load_settings
from services import crm_write_back, inbox, outgoing, provisioning, reconciliation, retention, tick
from tasks.base import HoldfastTask

try:
    settings = load_settings()
    build(settings)  # check the whole configuration (policy file included) before serving
except ConfigurationError as error:  # stop with the sentence, not a traceback
    raise SystemExit(f"Holdfast cannot start: {error}") from None
log = get_logger(__name__)
app = create_celery(settings)
_container: Container | None = None

# Time limits (seconds): a call to a peer is bounded by its timeouts, a dispatch turn by its length.
_PEER_CALL = settings.peer_connect_timeout + settings.peer_read_timeout
_PROVISIONING_CALL = settings.provisioning_connect_timeout + settings.provisioning_read_timeout
EVENT_TIME_LIMIT = 120
PEER_TIME_LIMIT = int(3 * _PEER_CALL) + 60
DISPATCH_TIME_LIMIT = int(60 + _PROVISIONING_CALL) + 120
HOUSEKEEPING_TIME_LIMIT = 600
PURGE_BUDGET_SECONDS = 300  # a purge stops well within its time limit; the next run goes on
RECONCILE_TIME_LIMIT = 1800
# A lane's turn sends its due deliveries one after the other, each bounded by OUTGOING_TIMEOUT_SECONDS.
OUTGOING_TIME_LIMIT = int(20 * (settings.outgoing_timeout_seconds + 5)) + 60


@setup_logging.connect
def _logging(**_: Any) -> None:
    configure_logging(settings.log_level)


_relay: tuple[Container, InboxRelay] | None = None


def _consumes_events() -> bool:
    """Whether this worker consumes the events queue (no --queues: it consumes every queue)."""
    chosen = app.amqp.queues.consume_from
    return not chosen or QUEUE_EVENTS in chosen


def _consumes_outgoing() -> bool:
    chosen = app.amqp.queues.consume_from
    return not chosen or QUEUE_OUTGOING in chosen


@worker_ready.connect
def _resume_outgoing(**_: Any) -> None:
    """The outgoing worker, once started: hand on at once what a worker that died left (its lanes' locks are free)."""
    if _consumes_outgoing():
        app.send_task(TASK_SWEEP_OUTGOING, kwargs={"at_start": True})


@worker_ready.connect
def _start_relay(**_: Any) -> None:
    """In the main process of the worker that processes events: queue what the webhooks stored as
    soon as they store it, and re-queue everything undone whenever the broker may have lost its
    messages."""
    global _relay
    if not _consumes_events():
        return
    own = build(settings)  # its own engine, not shared with the pool's processes
    relay = InboxRelay(
        own.engine,
        lambda: inbox.relay_stored(own.uow(), own.publisher, now=own.clock()),
        watch=make_broker_watch(settings),
        recover=lambda: _recover(own),
    )
    _relay = (own, relay.start())


def _recover(c: Container) -> None:
    """The broker lost its messages (or may have): queue again every event, request and CRM write undone."""
    now = c.clock()
    events = inbox.requeue_all(c.uow, c.publisher, now=now)
    requests = provisioning.sweep_requests(c.uow, c.context, c.dispatch_lock, now, stuck_after=timedelta(0))
    writes = crm_write_back.converge_crm(c.uow(), c.context, now) if c.crm is not None else 0
    log.warning("broker_recovered", events_requeued=events, requests_recovered=requests, crm_writes=writes)


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


_building = threading.Lock()


def container() -> Container:
    """Built on first use in each worker process (after the fork), never at import; once, whatever
    the pool's threads."""
    global _container
    with _building:
        if _container is None:
            built = build(settings)
            built.celery = app
            _ = built.dispatch_lock  # built here, not raced for by the pool's threads
            _container = built
    return _container


class DeliveryTask(HoldfastTask):
    """A stored delivery's task: its row notes each transient failure and when the retry is due,
    so the sweep waits for the retry (and takes over if it is lost or the last one fails)."""

    def before_retry(self, error: BaseException, countdown: float, inbox_id: int, *_: Any, **__: Any) -> None:
        c = container()
        next_try_at = None if self.last_try else c.clock() + timedelta(seconds=countdown)
        inbox.record_transient_error(c.uow(), inbox_id, f"{type(error).__name__}: transient, will retry", next_try_at)


@app.task(
    name=TASK_PROCESS_INBOX_EVENT,
    base=DeliveryTask,
    bind=True,
    max_retries=settings.task_max_retries,
    time_limit=EVENT_TIME_LIMIT,
)
def process_inbox_event(self: DeliveryTask, inbox_id: int) -> str:
    """Apply one stored webhook delivery; transient (database) failures are retried.

    A delivery that needs a peer's API first is handed to that peer's queue: no peer is called here.
    """
    c = container()
    return inbox.process_inbox_event(
        c.uow, inbox_id, c.handlers, c.context, c.clock(), self.transient_errors, completions=c.completions
    )


@app.task(
    name=TASK_COMPLETE_INBOX_EVENT,
    base=DeliveryTask,
    bind=True,
    max_retries=settings.task_max_retries,
    time_limit=PEER_TIME_LIMIT,
    honours_retry_after=True,
)
def complete_inbox_event(self: DeliveryTask, inbox_id: int, peer: str) -> str:
    """On the peer's queue: complete a delivery through the peer's API (outside any transaction), then apply it."""
    c = container()
    return inbox.process_inbox_event(
        c.uow,
        inbox_id,
        c.handlers,
        c.context,
        c.clock(),
        self.transient_errors,
        completions=c.completions,
        may_call={peer},
    )


# The sweep and the tick are not retried: beat runs them again within a minute.
@app.task(name=TASK_SWEEP_INBOX, base=HoldfastTask, transient_errors=(), time_limit=HOUSEKEEPING_TIME_LIMIT)
def sweep() -> int:
    """Re-queue what was left behind: deliveries unprocessed, requests overdue or without a living sender, CRM
    writes not confirmed."""
    c = container()
    now = c.clock()
    swept = inbox.sweep(c.uow(), c.publisher, older_than=timedelta(seconds=settings.inbox_sweep_age_seconds), now=now)
    swept += provisioning.sweep_requests(c.uow, c.context, c.dispatch_lock, now)
    if c.crm is not None:
        swept += crm_write_back.converge_crm(c.uow(), c.context, now)
    return swept


@app.task(name=TASK_PURGE_INBOX, base=HoldfastTask, transient_errors=(), time_limit=HOUSEKEEPING_TIME_LIMIT)
def purge_inbox() -> int:
    """Delete processed and ignored deliveries older than INBOX_RETENTION_DAYS, in small batches (not retried:
    beat runs it again)."""
    c = container()
    return retention.purge_inbox(
        c.uow, now=c.clock(), retention_days=settings.inbox_retention_days, budget_seconds=PURGE_BUDGET_SECONDS
    ).rows


@app.task(
    name=TASK_DISPATCH_PROVISIONING,
    base=HoldfastTask,
    max_retries=settings.task_max_retries,
    time_limit=DISPATCH_TIME_LIMIT,
)
def dispatch_provisioning(account_ids: list[str]) -> dict[str, str]:
    """Send these accounts' due requests to the provisioning API, one sender per account, and record each outcome.

    After the last retry the requests stay queued or provisioning: the sweep picks them up."""
    c = container()
    return provisioning.dispatch_accounts(
        c.uow,
        c.context,
        c.provisioner,
        c.dispatch_lock,
        account_ids,
        c.clock,
        threads=settings.provisioning_threads,
    )


@app.task(
    name=TASK_WRITE_BACK_HOLD,
    base=HoldfastTask,
    bind=True,
    max_retries=settings.task_max_retries,
    time_limit=PEER_TIME_LIMIT,
)
def write_back_hold(self: HoldfastTask, account_id: str) -> str:
    """Make the CRM's creditonhold show the account's effective hold (429 and 5xx are retried)."""
    c = container()
    if c.crm is None:
        return "not_configured"
    result = crm_write_back.write_back_hold(c.uow, c.context, c.crm, account_id, c.clock, last_try=self.last_try)
    if result.outcome == "retry":
        if self.last_try:
            return "gave_up"  # on the timeline; the sweep sends it again later
        delay = result.retry_after_seconds if result.retry_after_seconds is not None else self.backoff()
        raise self.retry(countdown=delay)
    return result.outcome


@app.task(name=TASK_TICK, base=HoldfastTask, transient_errors=(), time_limit=HOUSEKEEPING_TIME_LIMIT)
def clock_tick() -> int:
    """Re-evaluate the accounts whose next evaluation time has come."""
    c = container()
    return tick.tick(c.uow(), c.context, c.clock())


@app.task(
    name=TASK_RECONCILE_STRIPE,
    base=HoldfastTask,
    transient_errors=(StripeUnavailable,),
    max_retries=3,
    time_limit=RECONCILE_TIME_LIMIT,
)
def reconcile_stripe() -> int:
    """Store and process every Stripe event the inbox lacks (missed webhooks); Stripe's API down is retried."""
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
    except StripeLookupFailed as error:
        log.warning("stripe_reconcile_refused", error=str(error))
        return 0
    return result.stored


@app.task(
    name=TASK_SEND_OUTGOING, base=HoldfastTask, max_retries=settings.task_max_retries, time_limit=OUTGOING_TIME_LIMIT
)
def send_outgoing(subscription_id: str, account_id: str) -> str:
    """On the outgoing queue: send a subscription's due deliveries of one account, in order (retries are its own)."""
    c = container()
    return outgoing.send_lane(c.uow, c.context, c.subscriber, c.dispatch_lock, (subscription_id, account_id), c.clock)


@app.task(name=TASK_SWEEP_OUTGOING, base=HoldfastTask, transient_errors=(), time_limit=HOUSEKEEPING_TIME_LIMIT)
def sweep_outgoing(at_start: bool = False) -> int:
    """Hand on the lanes left behind (a lost task, a retry further off than a delayed task, a sender that died)."""
    c = container()
    older_than = timedelta(0) if at_start else timedelta(seconds=settings.inbox_sweep_age_seconds)
    return outgoing.sweep_outgoing(c.uow, c.context, c.clock(), older_than=older_than)
