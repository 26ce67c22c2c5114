"""Reconciliation with Stripe's events list: a real database, a real local stand-in for Stripe's API."""

from __future__ import annotations

import dataclasses
import json
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from stripe import APIError, InvalidRequestError

from adapters.broker import TASK_RECONCILE_STRIPE
from adapters.stripe_api import StripeApi, StripeLookupFailed, StripeUnavailable
from adapters.stripe_parser import HANDLED_EVENT_TYPES, parse_event
from services import reconciliation
from services.reconciliation import RETENTION, RETENTION_MARGIN, ReconcileResult, StripeEventList, reconcile_stripe
from tests.bad_input import NothingChanges, refused
from tests.conftest import inbox_rows, post_stripe, process_pending, stripe_fixture
from tests.stripe_api_server import StripeApiServer, running_stripe_api
from webhooks import create_app

API_KEY = "sk_test_reconcile_" + uuid.uuid4().hex[:8]
TYPES = sorted(HANDLED_EVENT_TYPES | {"charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed"})
LOOKBACK = timedelta(seconds=900)
FAILED = "invoice.payment_failed.stripe-ruby-mock.json"
PAID = "invoice.paid.stripe-ruby-mock.json"


@pytest.fixture(scope="module")
def stripe_server() -> Iterator[StripeApiServer]:
    with running_stripe_api(API_KEY) as server:
        yield server


@pytest.fixture
def stripe_api(stripe_server: StripeApiServer) -> Iterator[StripeApiServer]:
    """The stand-in, emptied, serving at most 3 events a page (pagination on small numbers)."""
    stripe_server.reset()
    stripe_server.page_limit = 3
    yield stripe_server
    stripe_server.reset()


@pytest.fixture
def api(stripe_api: StripeApiServer) -> StripeApi:
    return StripeApi(API_KEY, stripe_api.url, max_network_retries=0)


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def at(moment: datetime) -> int:
    return int(moment.timestamp())


def event(name: str, created: datetime, **changes: Any) -> dict[str, Any]:
    """A recorded event as a template: a fresh id, this created time, these data.object keys."""
    body = stripe_fixture(name, **changes)
    body["created"] = at(created)
    return body


class RecordedLog:
    """Stands in for the module's structlog logger: what was logged, with its fields."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.entries.append({"event": event, "level": "info", **fields})

    def warning(self, event: str, **fields: Any) -> None:
        self.entries.append({"event": event, "level": "warning", **fields})


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> RecordedLog:
    recorded = RecordedLog()
    monkeypatch.setattr(reconciliation, "log", recorded)
    return recorded


def reconcile(container: Any, api: StripeEventList, now: datetime, **options: Any) -> ReconcileResult:
    """What the periodic task runs, without pauses between pages."""
    options = {"lookback": LOOKBACK, "types": TYPES, "pause_between_pages": 0, **options}
    return reconcile_stripe(container.uow, container.deliveries, api, now=now, **options)


def map_account(client: Any, admin: dict[str, str], account_id: str, customer: str) -> None:
    response = client.put(f"/api/accounts/{account_id}", json={"stripe_customer_id": customer}, headers=admin)
    assert response.status_code in (200, 201), response.json


def holds(client: Any, admin: dict[str, str], account_id: str) -> list[str]:
    return [h["reason"] for h in client.get(f"/api/accounts/{account_id}", headers=admin).json["holds"]]


def stored_ids(container: Any) -> list[str]:
    return [row.external_id for row in inbox_rows(container)]  # in the order they were stored


def cursor(container: Any) -> tuple[datetime, str | None] | None:
    with container.uow() as uow:
        return uow.inbox.cursor("stripe")


def test_the_stripe_adapter_is_the_event_list_reconciliation_reads(api: StripeApi) -> None:
    source: StripeEventList = api  # checked by mypy's protocol rules where it is wired
    assert callable(source.events_since)


def test_a_missed_failed_payment_is_stored_once_and_processed_like_a_webhook(
    client: Any,
    admin: dict[str, str],
    container: Any,
    stripe_api: StripeApiServer,
    api: StripeApi,
    now: datetime,
    logged: RecordedLog,
) -> None:
    map_account(client, admin, "acme", "cus_reconmissed")
    missed = event(FAILED, now - timedelta(minutes=10), customer="cus_reconmissed", id="in_recon_missed")
    stripe_api.add_events(missed)

    result = reconcile(container, api, now)

    assert (result.stored, result.seen, result.complete) == (1, 1, True)
    assert result.reached == datetime.fromtimestamp(missed["created"], UTC)
    (row,) = inbox_rows(container)
    assert (row.source, row.external_id, row.event_type, row.status) == (
        "stripe",
        missed["id"],
        missed["type"],
        "received",
    )
    assert json.loads(row.payload) == missed  # the event as Stripe listed it, as a webhook would deliver it
    assert parse_event(row.payload).id == missed["id"]
    assert row.occurred_at == datetime.fromtimestamp(missed["created"], UTC)
    assert process_pending(container) == ["processed"]
    assert holds(client, admin, "acme") == ["non_payment"]

    again = reconcile(container, api, now)
    assert (again.stored, again.seen) == (0, 1)
    assert stored_ids(container) == [missed["id"]]
    assert process_pending(container) == []
    assert [(e["event"], e["stored"], e["seen"]) for e in logged.entries] == [
        ("stripe_reconciled", 1, 1),
        ("stripe_reconciled", 0, 1),
    ]
    assert API_KEY not in repr(logged.entries)


def test_events_already_received_by_webhook_are_not_stored_again(
    client: Any, container: Any, stripe_api: StripeApiServer, api: StripeApi, now: datetime
) -> None:
    first = event(FAILED, now - timedelta(minutes=14), customer="cus_recondup", id="in_recon_dup")
    missed = event(PAID, now - timedelta(minutes=12), customer="cus_recondup", id="in_recon_dup")
    last = event(FAILED, now - timedelta(minutes=10), customer="cus_recondup", id="in_recon_dup2")
    for delivered in (first, last):
        assert post_stripe(client, delivered).json == {"received": True, "duplicate": False}
    stripe_api.add_events(first, missed, last)

    result = reconcile(container, api, now)  # from 15 minutes before the newest event received

    assert (result.stored, result.seen) == (1, 3)
    assert sorted(stored_ids(container)) == sorted([first["id"], missed["id"], last["id"]])
    assert stored_ids(container)[-1] == missed["id"]
    assert process_pending(container) == ["processed"] * 3


def test_events_are_stored_oldest_first_across_pages(
    container: Any, stripe_api: StripeApiServer, api: StripeApi, now: datetime
) -> None:
    events = [
        event(FAILED, now - timedelta(minutes=80 - 7 * i), customer="cus_reconorder", id=f"in_recon_order_{i}")
        for i in range(10)
    ]
    # Two in the same second: Stripe lists the later one first, so it is stored last.
    events[5]["created"] = events[4]["created"]
    stripe_api.add_events(*reversed(events[:5]), *events[5:])
    stripe_api.add_events(event("product.created.stripe-ruby-mock.json", now - timedelta(minutes=50)))

    result = reconcile(container, api, now)

    assert (result.stored, result.seen) == (10, 10)
    order_added = [*reversed(events[:5]), *events[5:]]
    expected = sorted(order_added, key=lambda e: (e["created"], order_added.index(e)))
    assert stored_ids(container) == [e["id"] for e in expected]
    listings = stripe_api.event_listings()
    assert len(listings) > 3  # several pages, fetched one at a time
    assert all(listing.types == TYPES for listing in listings)
    assert listings[-1].ending_before is not None  # the last pages were read toward newer events
    assert cursor(container) == (datetime.fromtimestamp(expected[-1]["created"], UTC), expected[-1]["id"])


def test_the_listing_starts_a_lookback_before_the_newest_event_received(
    client: Any, container: Any, stripe_api: StripeApiServer, api: StripeApi, now: datetime
) -> None:
    older = event(FAILED, now - timedelta(hours=3), customer="cus_reconstart")
    newest = event(FAILED, now - timedelta(hours=2), customer="cus_reconstart")
    for delivered in (newest, older):
        post_stripe(client, delivered)
    stripe_api.add_events(older, newest)

    result = reconcile(container, api, now)

    first = stripe_api.event_listings()[0]
    assert first.created == {"gte": newest["created"] - 900}
    assert first.types == TYPES and len(TYPES) <= 20
    assert result.started_from == datetime.fromtimestamp(newest["created"] - 900, UTC)
    assert (result.stored, result.seen) == (0, 1)


def test_with_nothing_known_the_listing_starts_inside_stripes_30_days(
    container: Any, stripe_api: StripeApiServer, api: StripeApi, now: datetime
) -> None:
    result = reconcile(container, api, now)

    (listing,) = stripe_api.event_listings()
    assert listing.created == {"gte": at(now - RETENTION + RETENTION_MARGIN)}
    assert (result.stored, result.seen, result.reached, result.complete) == (0, 0, None, True)
    assert cursor(container) is None


def test_a_start_point_older_than_30_days_is_held_within_stripes_retention(
    client: Any, container: Any, stripe_api: StripeApiServer, api: StripeApi, now: datetime
) -> None:
    post_stripe(client, event(FAILED, now - timedelta(days=45), customer="cus_reconold"))
    with container.uow() as uow:
        uow.inbox.save_cursor("stripe", now - timedelta(days=40), "evt_long_gone", now - timedelta(days=40))
        uow.commit()

    reconcile(container, api, now)

    assert stripe_api.event_listings()[0].created == {"gte": at(now - RETENTION + RETENTION_MARGIN)}


def test_an_interrupted_run_records_how_far_it_got_and_the_next_run_resumes_there(
    client: Any, admin: dict[str, str], container: Any, stripe_api: StripeApiServer, api: StripeApi, now: datetime
) -> None:
    map_account(client, admin, "acme", "cus_reconresume")
    events = [
        event(FAILED, now - timedelta(minutes=200 - 20 * i), customer="cus_reconresume", id=f"in_recon_resume_{i}")
        for i in range(9)
    ]
    stripe_api.add_events(*events)
    # Down to the oldest page takes four listings (the newest page, a look for an older event, two
    # more pages); one page up is read, and the next listing fails.
    stripe_api.fail_events(500, after=5)

    with pytest.raises(StripeUnavailable, match="Stripe did not answer the listing of events"):
        reconcile(container, api, now)

    assert stored_ids(container) == [e["id"] for e in events[:6]]
    reached = datetime.fromtimestamp(events[5]["created"], UTC)
    assert cursor(container) == (reached, events[5]["id"])

    # Meanwhile a webhook brings a newer event: the next run still resumes where the last one stopped.
    later = event(PAID, now - timedelta(minutes=5), customer="cus_reconresume", id="in_recon_resume_0")
    post_stripe(client, later)
    stripe_api.add_events(later)
    stripe_api.fail_events(None)
    stripe_api.requests.clear()

    result = reconcile(container, api, now)

    listings = stripe_api.event_listings()
    assert listings[0].created == {"gte": at(reached - LOOKBACK)}
    # Paged up from event 4, the newest one before the start point.
    assert next(listing.ending_before for listing in listings if listing.ending_before) == events[4]["id"]
    assert result.started_from == reached - LOOKBACK
    assert (result.stored, result.seen, result.complete) == (3, 5, True)  # events 5 to 8, and the webhook's
    assert stored_ids(container) == [e["id"] for e in events[:6]] + [later["id"]] + [e["id"] for e in events[6:]]
    assert cursor(container) == (datetime.fromtimestamp(later["created"], UTC), later["id"])
    assert process_pending(container) == ["processed"] * 10
    assert holds(client, admin, "acme") == ["non_payment"]  # in_recon_resume_1 to 8 are still unpaid


def test_a_resumed_run_that_stops_early_never_moves_the_cursor_back(
    container: Any, stripe_api: StripeApiServer, api: StripeApi, now: datetime
) -> None:
    before, reached, after = (
        event(FAILED, now - timedelta(minutes=minutes), customer="cus_reconback") for minutes in (70, 60, 50)
    )
    stripe_api.add_events(before, reached, after)
    with container.uow() as uow:
        uow.inbox.save_cursor("stripe", datetime.fromtimestamp(reached["created"], UTC), reached["id"], now)
        uow.commit()
    stripe_api.page_limit = 1
    stripe_api.fail_events(500, after=4)  # the newest page, a look for an older event, two more pages down

    with pytest.raises(StripeUnavailable):
        reconcile(container, api, now)

    assert stored_ids(container) == [before["id"]]  # within the lookback, older than the cursor
    assert cursor(container) == (datetime.fromtimestamp(reached["created"], UTC), reached["id"])


def test_a_bounded_run_stops_after_max_events_and_the_next_one_goes_on(
    container: Any, stripe_api: StripeApiServer, api: StripeApi, now: datetime
) -> None:
    events = [event(FAILED, now - timedelta(minutes=60 - 5 * i), customer="cus_reconmax") for i in range(7)]
    stripe_api.add_events(*events)

    first = reconcile(container, api, now, max_events=4)
    assert (first.stored, first.seen, first.complete) == (4, 4, False)
    assert cursor(container) == (datetime.fromtimestamp(events[3]["created"], UTC), events[3]["id"])

    second = reconcile(container, api, now, max_events=100)
    assert (second.stored, second.complete) == (3, True)
    assert stored_ids(container) == [e["id"] for e in events]


def test_only_the_types_we_act_on_are_asked_for(
    container: Any, stripe_api: StripeApiServer, api: StripeApi, now: datetime
) -> None:
    wanted = event(FAILED, now - timedelta(minutes=9), customer="cus_recontypes")
    other = [
        event(name, now - timedelta(minutes=8))
        for name in ("payout.paid.stripe-ruby-mock.json", "charge.refunded.stripe-ruby-mock.json")
    ]
    stripe_api.add_events(wanted, *other)

    result = reconcile(container, api, now)

    assert (result.stored, result.seen) == (1, 1)
    assert stored_ids(container) == [wanted["id"]]
    (listing,) = stripe_api.event_listings()
    assert listing.types == TYPES
    assert [k for k in listing.raw if k.startswith("types")] == [f"types[{i}]" for i in range(len(TYPES))]


def test_more_than_twenty_types_are_listed_twenty_at_a_time_and_merged_oldest_first(
    container: Any, stripe_api: StripeApiServer, api: StripeApi, now: datetime
) -> None:
    extra = [f"holdfast.test.kind_{i:02d}" for i in range(10)]
    types = sorted([*TYPES, *extra])
    assert len(types) > 20
    events = []
    for i in range(12):
        body = event(FAILED, now - timedelta(minutes=40 - 3 * i), customer="cus_reconmany")
        body["type"] = extra[i % len(extra)] if i % 2 else "invoice.payment_failed"
        events.append(body)
    stripe_api.add_events(*events)

    result = reconcile(container, api, now, types=types)

    assert (result.stored, result.seen) == (12, 12)
    assert stored_ids(container) == [e["id"] for e in events]
    listings = stripe_api.event_listings()
    assert all(len(listing.types) <= 20 for listing in listings)
    assert {t for listing in listings for t in listing.types} == set(types)


def test_pages_are_paced_by_the_pause_between_them(
    container: Any, stripe_api: StripeApiServer, api: StripeApi, now: datetime
) -> None:
    stripe_api.add_events(*[event(FAILED, now - timedelta(minutes=30 - i), customer="cus_reconpace") for i in range(8)])
    pauses: list[float] = []

    reconcile(container, api, now, pause_between_pages=0.5, sleep=pauses.append)

    assert len(stripe_api.event_listings()) > 1
    assert pauses == [0.5] * (len(stripe_api.event_listings()) - 1)


def test_a_refused_api_key_fails_with_a_sentence_and_stores_nothing(
    container: Any, stripe_api: StripeApiServer, now: datetime
) -> None:
    stripe_api.add_events(event(FAILED, now - timedelta(minutes=5), customer="cus_recon401"))
    wrong = StripeApi("sk_test_not_the_right_key", stripe_api.url, max_network_retries=0)

    with pytest.raises(StripeLookupFailed) as refused:
        reconcile(container, wrong, now)

    message = str(refused.value)
    assert message.startswith("Stripe refused the listing of events (HTTP 401): Invalid API Key provided")
    assert "sk_test_not_the_right_key" not in message
    assert inbox_rows(container) == [] and cursor(container) is None


def test_stripe_out_of_reach_is_a_transient_failure(container: Any, now: datetime) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once closed
    unreachable = StripeApi(API_KEY, f"http://127.0.0.1:{port}", max_network_retries=0)

    with pytest.raises(StripeUnavailable, match="APIConnectionError"):
        reconcile(container, unreachable, now)
    assert cursor(container) is None


def test_the_stand_in_serves_charges_and_payment_intents_as_stripe_does(
    stripe_api: StripeApiServer, api: StripeApi
) -> None:
    stripe_api.add_charge("ch_recon_1", {"customer": "cus_reconcharge"})
    stripe_api.add_charge("ch_recon_down", 500)
    stripe_api.add_payment_intent("pi_recon_1", {"customer": "cus_reconintent"})

    stripe = api.client.v1
    assert stripe.charges.retrieve("ch_recon_1")["customer"] == "cus_reconcharge"
    assert stripe.payment_intents.retrieve("pi_recon_1")["customer"] == "cus_reconintent"
    with pytest.raises(InvalidRequestError) as missing:
        stripe.charges.retrieve("ch_recon_missing")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    with pytest.raises(APIError) as down:
        stripe.charges.retrieve("ch_recon_down")
    assert down.value.http_status == 500
    assert stripe_api.paths() == [
        "/v1/charges/ch_recon_1",
        "/v1/payment_intents/pi_recon_1",
        "/v1/charges/ch_recon_missing",
        "/v1/charges/ch_recon_down",
    ]


def test_reconcile_now_is_queued_when_stripes_api_is_configured(
    client: Any, admin: dict[str, str], queued: list[tuple[str, Any]]
) -> None:
    response = client.post("/api/ops/reconcile", headers=admin)
    assert (response.status_code, response.json) == (202, {"queued": True})
    assert [name for name, _ in queued] == [TASK_RECONCILE_STRIPE]


def test_reconcile_now_without_stripe_api_key_is_refused_with_a_sentence_and_queues_nothing(
    container: Any, admin: dict[str, str], nothing_changes: NothingChanges
) -> None:
    """It answered 202 while only the worker's log said that the run was skipped."""
    client = create_app(container=dataclasses.replace(container, stripe_api=None)).test_client()
    with nothing_changes():
        response = client.post("/api/ops/reconcile", headers=admin)
    body = refused(response, 409, "stripe_api_not_configured")
    assert "STRIPE_API_KEY is not set" in body["message"]
