"""Holdfast's own events: subscriptions through the admin API, and the outbox written with the change.

The outbox row is written in the transaction of the change that causes it: a change rolled back
writes none, and an outbox that cannot be written stops the change from being stored.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from adapters.broker import TASK_SEND_OUTGOING
from adapters.db.tables import HoldRow, OutgoingDeliveryRow, OutgoingEventRow
from bootstrap import Container
from domain.outgoing import EVENT_TYPES
from domain.timeline import Change
from services import outgoing
from services.evaluation import reevaluate_account
from services.ports import SendOutcome
from tests.bad_input import refused


def subscribe(client: Any, admin: dict[str, str], events: list[str] | None = None, url: str | None = None) -> Any:
    body = {"url": url or "https://subscriber.example/holdfast", "events": events or list(EVENT_TYPES)}
    response = client.post("/api/subscriptions", json=body, headers=admin)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.json


def events(container: Container) -> list[dict[str, Any]]:
    with container.session_factory() as session:
        rows = session.execute(select(OutgoingEventRow).order_by(OutgoingEventRow.id)).scalars()
        return [json.loads(row.body) for row in rows]


def types(container: Container) -> list[str]:
    return [event["type"] for event in events(container)]


@pytest.fixture
def acme(client: Any, admin: dict[str, str], queued: list[Any]) -> str:
    assert client.put("/api/accounts/acme", json={"name": "Acme"}, headers=admin).status_code == 201
    return "acme"


def test_a_subscription_gets_a_secret_once_that_signs_and_is_never_listed(client: Any, admin: dict[str, str]) -> None:
    created = subscribe(client, admin, ["account.hold_placed", "order.refused"])
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["account.hold_placed", "order.refused"]
    Webhook(created["secret"]).sign("msg_1", datetime.now(UTC), "{}")  # a secret the library takes
    listed = client.get("/api/subscriptions", headers=admin).json
    assert [s["subscription_id"] for s in listed["items"]] == [created["subscription_id"]]
    assert "secret" not in json.dumps(listed)
    assert client.delete(f"/api/subscriptions/{created['subscription_id']}", headers=admin).status_code == 200
    assert client.get("/api/subscriptions", headers=admin).json["items"] == []


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("not a url", "printable characters without spaces"),
        ("ftp://subscriber.example/x", "absolute https URL"),
        ("https://", "absolute https URL"),
        ("https://user:pw@subscriber.example/x", "no credentials"),
    ],
)
def test_a_bad_url_is_refused_with_a_sentence(client: Any, admin: dict[str, str], url: str, words: str) -> None:
    response = client.post("/api/subscriptions", json={"url": url, "events": ["order.failed"]}, headers=admin)
    assert words in refused(response, 400, "validation_error")["message"]
    assert client.get("/api/subscriptions", headers=admin).json["items"] == []


def test_http_is_refused_unless_outgoing_allow_http_is_true(
    client: Any, admin: dict[str, str], container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {"url": "http://127.0.0.1:9/events", "events": ["order.failed"]}
    monkeypatch.setattr(container, "settings", dataclasses.replace(container.settings, outgoing_allow_http=False))
    message = refused(client.post("/api/subscriptions", json=body, headers=admin), 400, "validation_error")["message"]
    assert "OUTGOING_ALLOW_HTTP=true" in message
    monkeypatch.setattr(container, "settings", dataclasses.replace(container.settings, outgoing_allow_http=True))
    assert client.post("/api/subscriptions", json=body, headers=admin).status_code == 201


def test_an_unknown_event_type_is_refused_naming_the_types_there_are(client: Any, admin: dict[str, str]) -> None:
    body = {"url": "https://subscriber.example/x", "events": ["account.hold_placed", "account.deleted"]}
    message = refused(client.post("/api/subscriptions", json=body, headers=admin), 400, "validation_error")["message"]
    assert "'account.deleted'" in message and "order.provisioned" in message
    body["events"] = []
    refused(client.post("/api/subscriptions", json=body, headers=admin), 400, "validation_error")


def test_an_unknown_subscription_is_not_found(client: Any, admin: dict[str, str]) -> None:
    refused(client.delete("/api/subscriptions/sub_nope", headers=admin), 404, "subscription_not_found")
    refused(client.get("/api/subscriptions/sub_nope/deliveries", headers=admin), 404, "subscription_not_found")
    gone = subscribe(client, admin)["subscription_id"]
    client.delete(f"/api/subscriptions/{gone}", headers=admin)
    refused(client.delete(f"/api/subscriptions/{gone}", headers=admin), 404, "subscription_not_found")


def test_a_hold_placed_writes_its_events_with_the_account_as_the_api_shows_it(
    client: Any, admin: dict[str, str], container: Container, acme: str
) -> None:
    subscribe(client, admin)
    placed = client.post("/api/accounts/acme/holds", json={"reason": "manual", "note": "why"}, headers=admin)
    assert placed.status_code == 201
    written = events(container)
    assert [e["type"] for e in written] == ["account.hold_placed", "account.enforcement_changed"]
    data = written[0]["data"]
    assert data.pop("reason") == "manual" and data.pop("cause") == "api"
    assert data == client.get("/api/accounts/acme", headers=admin).json
    change = written[1]["data"]
    assert change["blocks_changes"] is True and change["before"]["blocks_changes"] is False
    with container.session_factory() as session:
        deliveries = session.execute(select(OutgoingDeliveryRow)).scalars().all()
    assert len(deliveries) == 2 and {d.status for d in deliveries} == {"pending"}


def test_no_event_is_written_without_a_subscription_that_wants_it(
    client: Any, admin: dict[str, str], container: Container, acme: str
) -> None:
    subscribe(client, admin, ["order.failed"])
    client.post("/api/accounts/acme/holds", json={"reason": "manual", "note": "why"}, headers=admin)
    assert events(container) == []


def test_a_pause_and_its_end_change_enforcement(
    client: Any, admin: dict[str, str], container: Container, acme: str
) -> None:
    client.post("/api/accounts/acme/holds", json={"reason": "manual", "note": "why"}, headers=admin)
    subscribe(client, admin, ["account.enforcement_changed"])
    until = "2099-01-01T00:00:00Z"
    assert client.put("/api/accounts/acme/enforcement-pause", json={"until": until, "note": "n"}, headers=admin)
    assert client.delete("/api/accounts/acme/enforcement-pause?note=back", headers=admin).status_code == 200
    written = events(container)
    assert [e["data"]["reason"] for e in written] == ["enforcement_paused", "enforcement_resumed"]
    assert [e["data"]["blocks_changes"] for e in written] == [False, True]


def test_an_order_the_api_refuses_is_still_announced(
    client: Any, admin: dict[str, str], container: Container, acme: str
) -> None:
    client.post("/api/accounts/acme/holds", json={"reason": "manual", "note": "why"}, headers=admin)
    subscribe(client, admin, ["order.refused"])
    response = client.post("/api/accounts/acme/orders", json={"order_id": "o-1", "amount": "10.00"}, headers=admin)
    assert response.status_code == 409
    assert [e["data"] for e in events(container)] == [{"account_id": "acme", "order_id": "o-1", "reasons": ["manual"]}]


def test_a_change_rolled_back_writes_no_event(
    client: Any, admin: dict[str, str], container: Container, acme: str
) -> None:
    subscribe(client, admin)
    change = Change(datetime.now(UTC), "user:test", "api")
    uow = container.uow()
    with uow:
        account = uow.accounts.get("acme", lock=True)
        assert account is not None
        uow.timeline.append("acme", account.place_manual_hold("n", change))
        reevaluate_account(uow, "acme", container.context, change, account=account)
        uow.rollback()
    assert events(container) == []
    with uow:  # the same change committed: its events come with it
        account = uow.accounts.get("acme", lock=True)
        assert account is not None
        uow.timeline.append("acme", account.place_manual_hold("n", change))
        reevaluate_account(uow, "acme", container.context, change, account=account)
        uow.commit()
    assert types(container) == ["account.hold_placed", "account.enforcement_changed"]


def test_a_change_whose_events_cannot_be_written_is_not_stored(
    client: Any, admin: dict[str, str], container: Container, acme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscribe(client, admin)

    def broken(*_: Any) -> int:
        raise RuntimeError("the outbox is unwritable")

    monkeypatch.setattr("adapters.db.outgoing.SqlOutboxRepository.add_event", broken)
    response = client.post("/api/accounts/acme/holds", json={"reason": "manual", "note": "why"}, headers=admin)
    assert response.status_code == 500
    with container.session_factory() as session:
        assert session.execute(select(HoldRow)).scalars().all() == []


class Unanswered:
    """A subscriber that never answers in time (what the HTTP sender reports for a hang)."""

    def __init__(self) -> None:
        self.calls = 0

    def send(self, url: str, secret: str, webhook_id: str, body: str) -> SendOutcome:
        self.calls += 1
        return SendOutcome(None, "The subscriber did not answer in time.", 10_000)


def test_a_lane_whose_subscriber_has_every_sending_place_taken_waits_and_sends_nothing(
    client: Any, admin: dict[str, str], container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[str, Any, Any]] = []
    monkeypatch.setattr(
        container.celery,
        "send_task",
        lambda name, *args, **kwargs: sent.append((name, kwargs.get("args"), kwargs.get("countdown"))),
    )
    subscription = subscribe(client, admin, ["account.hold_placed"])["subscription_id"]
    assert client.put("/api/accounts/acme", json={"name": "Acme"}, headers=admin).status_code == 201
    held = client.post("/api/accounts/acme/holds", json={"reason": "manual", "note": "n"}, headers=admin)
    assert held.status_code == 201
    lane = (subscription, "acme")
    one_place = dataclasses.replace(
        container.context, outgoing=dataclasses.replace(container.context.outgoing, sends_per_subscriber=1)
    )
    hanging = Unanswered()

    def send_lane(ctx: Any) -> str:
        return outgoing.send_lane(container.uow, ctx, hanging, container.dispatch_lock, lane, container.clock)

    sent.clear()
    with container.dispatch_lock.hold(outgoing.subscriber_slot_key(subscription, 0)) as taken:
        assert taken is not None  # another lane of this subscriber is sending
        assert send_lane(one_place) == "crowded"
    assert hanging.calls == 0
    assert client.get(f"/api/subscriptions/{subscription}/deliveries", headers=admin).json["items"] == []
    [(task, args, countdown)] = sent
    assert (task, args) == (TASK_SEND_OUTGOING, list(lane))
    assert outgoing.CROWDED_WAIT_SECONDS / 2 <= countdown <= outgoing.CROWDED_WAIT_SECONDS  # a burst: soon

    assert send_lane(one_place) == "retry"  # the place is free: it sends, and the subscriber hangs
    assert hanging.calls == 1
    slow_backoff = dataclasses.replace(one_place, outgoing=dataclasses.replace(one_place.outgoing, backoff_seconds=30))
    sent.clear()
    with container.dispatch_lock.hold(outgoing.subscriber_slot_key(subscription, 0)) as taken:
        assert taken is not None
        assert send_lane(slow_backoff) == "crowded"
    [(_, _, countdown)] = sent
    assert 15 <= countdown <= 30  # the subscriber's latest attempt went unanswered: about a backoff
    assert hanging.calls == 1


def test_a_new_subscription_hears_only_of_changes_made_after_it(
    client: Any, admin: dict[str, str], container: Container, acme: str
) -> None:
    assert client.post(f"/api/accounts/{acme}/holds", json={"reason": "manual", "note": "n"}, headers=admin).status_code
    subscribe(client, admin, ["account.hold_placed", "account.hold_released"])
    assert types(container) == []  # the hold placed before it is not sent
    assert client.delete(f"/api/accounts/{acme}/holds/manual?note=paid", headers=admin).status_code == 200
    assert types(container) == ["account.hold_released"]
