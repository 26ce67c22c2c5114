"""Sending work to the Celery workers (by task name, so the web never imports the tasks).

Queue and task names live here, in one place. Each peer has a queue of its own, so that a slow
or failing peer (Stripe's API, the Dataverse Web API, the provisioning API) only ever holds up
work that needs it: events are processed on ``holdfast.events`` whatever the peers do.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import redis
from celery import Celery

QUEUE_EVENTS = "holdfast.events"  # inbox events, the sweep, the purge, the clock tick
QUEUE_PROVISIONING = "holdfast.provisioning"  # calls to the provisioning API
QUEUE_CRM = "holdfast.crm"  # the Dataverse Web API: write-backs, rows read to complete an event
QUEUE_STRIPE = "holdfast.stripe"  # Stripe's API: dispute look-ups, reconciliation
QUEUE_OUTGOING = "holdfast.outgoing"  # Holdfast's own events to subscribers (a worker process of its own)
QUEUES = (QUEUE_EVENTS, QUEUE_PROVISIONING, QUEUE_CRM, QUEUE_STRIPE, QUEUE_OUTGOING)

TASK_PROCESS_INBOX_EVENT = "holdfast.inbox.process_event"
TASK_COMPLETE_INBOX_EVENT = "holdfast.inbox.complete_event"  # sent to the queue of the peer it needs
TASK_SWEEP_INBOX = "holdfast.inbox.sweep"
TASK_PURGE_INBOX = "holdfast.inbox.purge"  # retention: deliveries that ended, once old
TASK_DISPATCH_PROVISIONING = "holdfast.provisioning.dispatch"
TASK_WRITE_BACK_HOLD = "holdfast.crm.write_back_hold"
TASK_TICK = "holdfast.clock.tick"
TASK_RECONCILE_STRIPE = "holdfast.stripe.reconcile"
TASK_SEND_OUTGOING = "holdfast.outgoing.send"
TASK_SWEEP_OUTGOING = "holdfast.outgoing.sweep"

TASK_QUEUES = {
    TASK_PROCESS_INBOX_EVENT: QUEUE_EVENTS,
    TASK_SWEEP_INBOX: QUEUE_EVENTS,
    TASK_PURGE_INBOX: QUEUE_EVENTS,
    TASK_TICK: QUEUE_EVENTS,
    TASK_DISPATCH_PROVISIONING: QUEUE_PROVISIONING,
    TASK_WRITE_BACK_HOLD: QUEUE_CRM,
    TASK_RECONCILE_STRIPE: QUEUE_STRIPE,
    TASK_SEND_OUTGOING: QUEUE_OUTGOING,
    TASK_SWEEP_OUTGOING: QUEUE_OUTGOING,
}
PEER_QUEUES = {"stripe": QUEUE_STRIPE, "crm": QUEUE_CRM}  # the peers an event may need before it applies


class CeleryPublisher:
    def __init__(self, celery: Celery, batch_size: int = 50) -> None:
        self.celery = celery
        self.batch_size = batch_size

    def process_inbox_event(self, inbox_id: int) -> None:
        self.celery.send_task(TASK_PROCESS_INBOX_EVENT, args=[inbox_id])

    def complete_inbox_event(self, inbox_id: int, peer: str, countdown: float | None = None) -> None:
        """Have a worker of the peer's queue complete the event through the peer's API, then apply it."""
        self.celery.send_task(
            TASK_COMPLETE_INBOX_EVENT, args=[inbox_id, peer], queue=PEER_QUEUES[peer], countdown=countdown
        )

    def write_back_hold(self, account_id: str, countdown: float | None = None) -> None:
        self.celery.send_task(TASK_WRITE_BACK_HOLD, args=[account_id], countdown=countdown)

    def send_outgoing(self, lanes: Sequence[tuple[str, str]], countdown: float | None = None) -> None:
        """One task per lane (subscription, account): its sender sends the lane's deliveries in order."""
        for subscription_id, account_id in dict.fromkeys(lanes):
            self.celery.send_task(TASK_SEND_OUTGOING, args=[subscription_id, account_id], countdown=countdown)

    def sweep(self) -> None:
        self.celery.send_task(TASK_SWEEP_INBOX)

    def tick(self) -> None:
        self.celery.send_task(TASK_TICK)

    def reconcile(self) -> None:
        self.celery.send_task(TASK_RECONCILE_STRIPE)

    def dispatch_provisioning(self, account_ids: Sequence[str], countdown: float | None = None) -> None:
        """Send account ids in batches; one task sends each account's due requests (accounts in parallel)."""
        ids = list(dict.fromkeys(account_ids))
        for start in range(0, len(ids), self.batch_size):
            self.celery.send_task(
                TASK_DISPATCH_PROVISIONING, args=[ids[start : start + self.batch_size]], countdown=countdown
            )


class RedisBrokerWatch:
    """Tells when Redis may have lost queued messages: it was unreachable, or restarted empty.

    A key it sets (``SET NX``) is gone after a restart without persistence; a failed look
    means an outage. Either way the caller re-queues what is still undone.
    """

    KEY = "holdfast:broker-epoch"

    def __init__(self, url: str, *, verify_tls: bool = True) -> None:
        options: dict[str, object] = {"socket_timeout": 2, "socket_connect_timeout": 2}
        if url.startswith("rediss://") and not verify_tls:
            options["ssl_cert_reqs"] = "none"
        self.client = redis.Redis.from_url(url, **options)
        self.marker = uuid.uuid4().hex
        self.unreachable = False

    def lost_messages(self) -> bool:
        """True when messages may have been lost since the last look. Raises while Redis is down."""
        try:
            fresh = bool(self.client.set(self.KEY, self.marker, nx=True))
        except redis.RedisError:
            self.unreachable = True
            raise
        came_back, self.unreachable = self.unreachable, False
        return fresh or came_back


class DurableBrokerWatch:
    """The filesystem broker keeps its messages on disk: nothing is lost by a restart."""

    def lost_messages(self) -> bool:
        return False
