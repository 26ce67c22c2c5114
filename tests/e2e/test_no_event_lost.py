"""No event lost: an event stored while nothing processes it is processed once a worker runs; logs are JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import ADMIN_TOKEN, WEBHOOK_SECRET, inbox_rows, post_stripe, stripe_fixture, wait_for
from tests.workers import start_worker

pytestmark = pytest.mark.e2e


def test_an_event_stored_while_no_worker_runs_is_processed_when_one_starts(
    container: Any, client: Any, admin: dict[str, str], worker_env: dict[str, str]
) -> None:
    assert client.put("/api/accounts/acme", json={"stripe_customer_id": "cus_down"}, headers=admin).status_code == 201
    event = stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_down")
    answer = post_stripe(client, event)
    assert answer.status_code == 200 and answer.json == {"received": True, "duplicate": False}
    assert [r.status for r in inbox_rows(container)] == ["received"]

    worker = start_worker(worker_env)
    try:
        wait_for(lambda: [r.status for r in inbox_rows(container)] == ["processed"], what="the stored event")
    finally:
        worker.stop()
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
