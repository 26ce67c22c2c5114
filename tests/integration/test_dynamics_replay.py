"""A failed Dynamics delivery can be replayed: its inbox id contains "/", sent raw or percent-encoded.

A Dynamics inbox id is ``<operation>/<stage>/<message>/<entity>/<row>`` (see
adapters.dynamics_deliveries.delivery_key). PRODUCT.md: ids that contain "/" are sent
percent-encoded and work; the raw form works too.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import pytest

from adapters.broker import TASK_PROCESS_INBOX_EVENT
from tests.bad_input import NothingChanges, refused
from tests.conftest import inbox_rows, post_dynamics, process_pending
from tests.dynamics_bodies import account_create, salesorder

ACCOUNT = "53c52f26-a89d-ef11-8a69-000d3a30b0c1"


def raw(event_id: str) -> str:
    return event_id


def encoded(event_id: str) -> str:
    return quote(event_id, safe="")


def encoded_lower_case(event_id: str) -> str:
    return quote(event_id, safe="").replace("%2F", "%2f")


FORMS = [
    pytest.param(raw, id="raw"),
    pytest.param(encoded, id="percent-encoded"),
    pytest.param(encoded_lower_case, id="percent-encoded-lower-case"),
]


def deliver(client: Any, container: Any, body: dict[str, Any]) -> list[str]:
    response = post_dynamics(client, body)
    assert response.status_code == 200, response.json
    return process_pending(container)


@pytest.fixture
def failed_event(client: Any, admin: dict[str, str], container: Any, queued: list[Any]) -> dict[str, Any]:
    """A real Dynamics delivery that failed: a submitted salesorder Create without its customer (no Web API)."""
    order = salesorder(str(uuid.uuid4()), None, state=1, message="Create", post_image=False)
    assert deliver(client, container, order) == ["failed"]
    (event,) = client.get("/api/events", query_string={"status": "failed"}, headers=admin).json["items"]
    assert event["source"] == "dynamics" and event["event_id"].count("/") == 4, event
    queued.clear()
    return dict(event)


@pytest.mark.parametrize("form", FORMS)
def test_a_failed_dynamics_event_is_replayed_by_its_id(
    client: Any, admin: dict[str, str], container: Any, queued: list[Any], failed_event: dict[str, Any], form: Any
) -> None:
    event_id = failed_event["event_id"]
    response = client.post(f"/api/events/dynamics/{form(event_id)}/replay", headers=admin)
    assert response.status_code == 202, response.json
    assert response.json["event_id"] == event_id and response.json["status"] == "received"
    (row,) = inbox_rows(container)
    assert queued == [(TASK_PROCESS_INBOX_EVENT, [row.id])]
    assert process_pending(container) == ["failed"]  # processed again (its customer is still missing)
    (again,) = client.get("/api/events", query_string={"status": "failed"}, headers=admin).json["items"]
    assert again["event_id"] == event_id and again["attempts"] > failed_event["attempts"]


@pytest.mark.parametrize("form", FORMS)
def test_replaying_a_dynamics_event_that_has_not_failed_is_a_conflict(
    client: Any, admin: dict[str, str], container: Any, nothing_changes: NothingChanges, form: Any
) -> None:
    assert deliver(client, container, account_create(ACCOUNT)) == ["processed"]
    (event,) = client.get("/api/events", headers=admin).json["items"]
    assert "/" in event["event_id"]
    with nothing_changes():
        response = client.post(f"/api/events/dynamics/{form(event['event_id'])}/replay", headers=admin)
    assert "processed" in refused(response, 409, "not_replayable")["message"]


@pytest.mark.parametrize("form", FORMS)
def test_replaying_an_unknown_dynamics_id_is_not_found(
    client: Any, admin: dict[str, str], failed_event: dict[str, Any], nothing_changes: NothingChanges, form: Any
) -> None:
    unknown = failed_event["event_id"].replace("/40/", "/20/")
    with nothing_changes():
        response = client.post(f"/api/events/dynamics/{form(unknown)}/replay", headers=admin)
    refused(response, 404, "event_not_found")


def test_a_dynamics_id_is_not_replayed_under_another_source(
    client: Any, admin: dict[str, str], failed_event: dict[str, Any], nothing_changes: NothingChanges
) -> None:
    with nothing_changes():
        response = client.post(f"/api/events/stripe/{encoded(failed_event['event_id'])}/replay", headers=admin)
    refused(response, 404, "event_not_found")


@pytest.mark.parametrize("event_id", ["abc%00/40/create/account/x", "abc/40/create/account/x%00", "abc%2F40%00"])
def test_a_dynamics_id_with_a_nul_is_refused(
    client: Any, admin: dict[str, str], failed_event: dict[str, Any], nothing_changes: NothingChanges, event_id: str
) -> None:
    with nothing_changes():
        response = client.post(f"/api/events/dynamics/{event_id}/replay", headers=admin)
    refused(response, 400, "invalid_event_id")
