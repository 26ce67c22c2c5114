"""Inbox retention: deliveries that ended go once they are old, in bounded batches; everything else stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.retention import purge_inbox
from tests.conftest import inbox_rows, post_stripe, process_pending, stripe_fixture

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=91)
RECENT = NOW - timedelta(days=89)


def stored(container: Any, event_id: str, received_at: datetime, status: str) -> int:
    """A delivery stored by the webhook's own store at ``received_at``, then ended as ``status``."""
    inbox_id = container.deliveries.add("stripe", event_id, "invoice.paid", "{}", received_at)
    assert inbox_id is not None
    if status != "received":
        with container.uow() as uow:
            uow.inbox.record_outcome(inbox_id, status, received_at, error="ValueError: test")
            uow.commit()
    return inbox_id


def remaining(container: Any) -> list[str]:
    return sorted(row.external_id for row in inbox_rows(container))


def purge(container: Any, now: datetime = NOW, days: int = 90, **options: Any) -> Any:
    return purge_inbox(container.uow, now=now, retention_days=days, **options)


def test_old_processed_and_ignored_deliveries_go_and_failed_waiting_and_recent_ones_stay(container: Any) -> None:
    stored(container, "evt_old_processed", OLD, "processed")
    stored(container, "evt_old_ignored", OLD, "ignored")
    stored(container, "evt_old_failed", OLD, "failed")
    stored(container, "evt_old_waiting", OLD, "received")
    stored(container, "evt_recent_processed", RECENT, "processed")
    stored(container, "evt_recent_ignored", RECENT, "ignored")

    purged = purge(container)

    assert (purged.rows, purged.finished) == (2, True)
    assert remaining(container) == [
        "evt_old_failed",
        "evt_old_waiting",
        "evt_recent_ignored",
        "evt_recent_processed",
    ]


def test_the_purge_deletes_in_batches_of_the_size_given_oldest_first(container: Any) -> None:
    for n in range(5):
        stored(container, f"evt_old_{n}", OLD - timedelta(days=5 - n), "processed")

    purged = purge(container, batch=2)

    assert (purged.rows, purged.batches, purged.finished) == (5, 3, True)
    assert remaining(container) == []


def test_a_purge_whose_time_is_spent_stops_after_the_batch_under_way_and_the_next_run_goes_on(
    container: Any,
) -> None:
    for n in range(5):
        stored(container, f"evt_old_{n}", OLD - timedelta(days=5 - n), "processed")
    clock = iter([0.0, 100.0])  # the budget is spent once the first batch is done

    first = purge(container, batch=2, budget_seconds=10, monotonic=lambda: next(clock))

    assert (first.rows, first.batches, first.finished) == (2, 1, False)
    assert remaining(container) == ["evt_old_2", "evt_old_3", "evt_old_4"]  # the oldest went first
    assert purge(container, batch=2).rows == 3


def test_running_the_purge_twice_is_harmless(container: Any) -> None:
    stored(container, "evt_old", OLD, "processed")
    stored(container, "evt_recent", RECENT, "processed")

    assert purge(container).rows == 1
    again = purge(container)

    assert (again.rows, again.finished) == (0, True)
    assert remaining(container) == ["evt_recent"]


def test_a_retention_of_zero_days_keeps_every_delivery(container: Any) -> None:
    stored(container, "evt_ancient", NOW - timedelta(days=3650), "processed")

    assert purge(container, days=0).rows == 0
    assert remaining(container) == ["evt_ancient"]


def test_a_failed_delivery_stays_replayable_after_the_purge(client: Any, admin: dict[str, str], container: Any) -> None:
    stored(container, "evt_old_failed", OLD, "failed")
    purge(container)

    listed = client.get("/api/events?status=failed", headers=admin).json["items"]
    assert [event["event_id"] for event in listed] == ["evt_old_failed"]
    assert client.post("/api/events/stripe/evt_old_failed/replay", headers=admin).status_code == 202


def test_a_purged_event_delivered_again_is_stored_anew_and_changes_nothing(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    assert client.put("/api/accounts/acme", json={"stripe_customer_id": "cus_old"}, headers=admin).status_code == 201
    failed = stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_old", id="in_old")
    paid = stripe_fixture("invoice.paid.stripe-ruby-mock.json", customer="cus_old", id="in_old")
    paid["created"] = failed["created"] + 3600
    for event in (failed, paid):
        post_stripe(client, event)
        assert process_pending(container) == ["processed"]
    account_before = client.get("/api/accounts/acme", headers=admin).json
    timeline_before = client.get("/api/accounts/acme/timeline", headers=admin).json["items"]
    assert account_before["holds"] == []

    assert purge(container, now=NOW + timedelta(days=91)).rows == 2
    assert inbox_rows(container) == []
    answer = post_stripe(client, failed)  # a replay of the old failure, long after its invoice was paid

    assert answer.json == {"received": True, "duplicate": False}  # its id is forgotten: stored as new
    assert process_pending(container) == ["processed"]
    assert client.get("/api/accounts/acme", headers=admin).json == account_before
    assert client.get("/api/accounts/acme/timeline", headers=admin).json["items"] == timeline_before


@pytest.mark.parametrize("days", ["", "90"])
def test_the_retention_is_90_days_unless_set(days: str) -> None:
    from bootstrap.settings import load_settings

    env = {"STRIPE_WEBHOOK_SECRET": "whsec_x", "ADMIN_API_TOKEN": "x" * 16, "INBOX_RETENTION_DAYS": days}
    assert load_settings(env).inbox_retention_days == 90


def test_events_purge_on_the_command_line_deletes_what_the_retention_lets_go(app: Any, container: Any) -> None:
    stored(container, "evt_year_old", NOW - timedelta(days=365), "processed")
    stored(container, "evt_month_old", NOW - timedelta(days=30), "processed")
    runner = app.test_cli_runner()

    default = runner.invoke(args=["events", "purge"])
    shorter = runner.invoke(args=["events", "purge", "--days", "7"])

    assert default.exit_code == 0 and "1 processed or ignored event(s) older than 90 days deleted" in default.output
    assert shorter.exit_code == 0 and "1 processed or ignored event(s) older than 7 days deleted" in shorter.output
    assert remaining(container) == []
