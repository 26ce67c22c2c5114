"""No event lost: an event stored while the broker is down is processed once the sweep finds it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from adapters.broker import CeleryPublisher
from bootstrap.celery_app import create_celery
from tests.conftest import ADMIN_TOKEN, WEBHOOK_SECRET, inbox_rows, post_stripe, stripe_fixture, wait_for
from webhooks import create_app

pytestmark = pytest.mark.e2e


def test_an_event_stored_while_the_broker_is_down_is_processed_after_the_sweep(
    container: Any, client: Any, admin: dict[str, str], worker: Any
) -> None:
    assert client.put("/api/accounts/acme", json={"stripe_customer_id": "cus_down"}, headers=admin).status_code == 201
    broker_down = create_celery(dataclasses.replace(container.settings, broker_url="redis://127.0.0.1:1/0"))
    broker_down.conf.broker_connection_timeout = 1
    broker_down.conf.task_publish_retry = False
    web_without_broker = create_app(container=dataclasses.replace(container, publisher=CeleryPublisher(broker_down)))

    event = stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_down")
    answer = post_stripe(web_without_broker.test_client(), event)
    assert answer.status_code == 200 and answer.json == {"received": True, "duplicate": False}
    assert [r.status for r in inbox_rows(container)] == ["received"]

    def swept_and_processed() -> bool:
        assert client.post("/api/ops/sweep", headers=admin).status_code == 202
        return [r.status for r in inbox_rows(container)] == ["processed"]

    wait_for(swept_and_processed, timeout=60, interval=1.0, what="the sweep to re-queue the stored event")
    holds = client.get("/api/accounts/acme", headers=admin).json["holds"]
    assert [h["reason"] for h in holds] == ["non_payment"]


def test_worker_logs_are_json_lines_with_event_and_account_and_no_secrets(
    container: Any, client: Any, admin: dict[str, str], worker: Any
) -> None:
    client.put("/api/accounts/acme", json={"stripe_customer_id": "cus_log"}, headers=admin)
    event = stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_log")
    post_stripe(client, event)
    wait_for(lambda: [r.status for r in inbox_rows(container)] == ["processed"], what="the event to be processed")
    wait_for(lambda: any(event["id"] in line and "hold_placed" in line for line in worker.lines), what="log line")
    records = [json.loads(line) for line in worker.lines if line.startswith("{")]
    assert records, "the worker logs JSON lines"
    placed = [r for r in records if r.get("event") == "hold_placed"]
    assert placed and placed[0]["account_id"] == "acme" and placed[0]["event_id"] == event["id"]
    output = "\n".join(worker.lines)
    assert WEBHOOK_SECRET not in output and ADMIN_TOKEN not in output
