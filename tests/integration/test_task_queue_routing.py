"""Each task reaches its own queue, and only it: peers never share a queue with events."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from adapters.broker import QUEUE_CRM, QUEUE_EVENTS, QUEUE_PROVISIONING, QUEUE_STRIPE, QUEUES, CeleryPublisher


@pytest.fixture
def broker(container: Any) -> Any:
    if container.settings.broker_is_filesystem:
        pytest.skip("Redis routing: the PostgreSQL + Redis run covers it")
    client = redis.Redis.from_url(container.settings.broker_url)
    client.flushdb()
    yield client
    client.flushdb()


def lengths(client: Any) -> dict[str, int]:
    return {queue: int(client.llen(queue)) for queue in QUEUES}


@pytest.mark.parametrize(
    ("send", "queue"),
    [
        (lambda p: p.process_inbox_event(1), QUEUE_EVENTS),
        (lambda p: p.dispatch_provisioning(["acme"]), QUEUE_PROVISIONING),
        (lambda p: p.write_back_hold("acme"), QUEUE_CRM),
        (lambda p: p.complete_inbox_event(1, "stripe"), QUEUE_STRIPE),
        (lambda p: p.complete_inbox_event(1, "crm"), QUEUE_CRM),
    ],
)
def test_a_task_lands_on_its_own_queue_only(container: Any, broker: Any, send: Any, queue: str) -> None:
    with container.celery.connection_for_write() as connection:  # every queue declared, as a worker does
        for declared in container.celery.amqp.queues.values():
            declared.bind(connection.default_channel).declare()
    send(CeleryPublisher(container.celery))
    assert lengths(broker) == {q: int(q == queue) for q in QUEUES}
