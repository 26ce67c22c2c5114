"""Bad input on ``POST /webhooks/stripe``, what it says: a signed body that is not a Stripe event is refused.

Not JSON, not an event, not UTF-8, too large, another method: a 4xx with a sentence; a replayed
event id is acknowledged as a duplicate and stored once.

Each refusal is checked three ways: the status code, the error shape
(``{"error": <code>, "message": <sentence>}``) and that no row of any table changed and no
task was queued (``refused``: tests/bad_input.py; the fixtures ``nothing_changes`` and
``seeded``: tests/integration/conftest.py).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from bootstrap import Container
from tests.bad_input import (
    TWO_MIB,
    NothingChanges,
    an_event,
    inbox_count,
    post_webhook,
    raw_signature,
    refused,
    relayed,
)
from tests.conftest import post_stripe, sign


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"id": "evt_1", "type": "invoice.paid", "data": {"obj', id="truncated"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("{'id': 'evt_1'}", id="python-repr"),
        pytest.param('{"id": "evt_1"} trailing', id="trailing-garbage"),
        pytest.param("[" * 100_000 + "]" * 100_000, id="nested-too-deep"),
    ],
)
def test_a_signed_webhook_whose_body_is_not_json_is_refused(
    client: Any, nothing_changes: NothingChanges, body: str
) -> None:
    with nothing_changes():
        response = post_webhook(client, body, sign(body))
    refused(response, 400, "malformed_event")


def _without(path: str) -> dict[str, Any]:
    event = an_event()
    *parents, last = path.split(".")
    node = event
    for key in parents:
        node = node[key]
    del node[last]
    return event


NOT_EVENTS: list[Any] = [
    pytest.param([an_event()], id="a-list"),
    pytest.param("evt_1", id="a-string"),
    pytest.param(42, id="a-number"),
    pytest.param(None, id="null"),
    pytest.param(True, id="true"),
    pytest.param({}, id="an-empty-object"),
    pytest.param(_without("id"), id="no-id"),
    pytest.param(_without("type"), id="no-type"),
    pytest.param(_without("created"), id="no-created"),
    pytest.param(_without("data"), id="no-data"),
    pytest.param(_without("data.object"), id="no-data-object"),
    pytest.param(an_event(id=""), id="empty-id"),
    pytest.param(an_event(id=123), id="id-a-number"),
    pytest.param(an_event(id=None), id="id-null"),
    pytest.param(an_event(id="evt_" + "x" * 300), id="id-too-long"),
    pytest.param(an_event(id="evt_\u0000nul"), id="id-with-a-nul"),
    pytest.param(an_event(id="evt_\ud800"), id="id-with-a-lone-surrogate"),
    pytest.param(an_event(id="evt_a\nb"), id="id-with-a-newline"),
    pytest.param(an_event(type=""), id="empty-type"),
    pytest.param(an_event(type=["invoice.paid"]), id="type-a-list"),
    pytest.param(an_event(type="invoice." + "x" * 200), id="type-too-long"),
    pytest.param(an_event(type="invoice.\u0000paid"), id="type-with-a-nul"),
    pytest.param(an_event(created="1648320009"), id="created-a-string"),
    pytest.param(an_event(created=1648320009.5), id="created-a-fraction"),
    pytest.param(an_event(created=True), id="created-a-boolean"),
    pytest.param(an_event(created=-1), id="created-negative"),
    pytest.param(an_event(created=10**20), id="created-beyond-any-date"),
    pytest.param(an_event(created=None), id="created-null"),
    pytest.param(an_event(data=[]), id="data-a-list"),
    pytest.param(an_event(data="x"), id="data-a-string"),
    pytest.param(an_event(data={"object": []}), id="data-object-a-list"),
    pytest.param(an_event(data={"object": "in_1"}), id="data-object-a-string"),
    pytest.param(an_event(data={"object": None}), id="data-object-null"),
    pytest.param(an_event(object="invoice"), id="object-not-event"),
    pytest.param(an_event(api_version=20200827), id="api-version-a-number"),
]


@pytest.mark.parametrize("document", NOT_EVENTS)
def test_a_signed_webhook_whose_json_is_not_a_stripe_event_is_refused(
    client: Any, nothing_changes: NothingChanges, document: Any
) -> None:
    body = json.dumps(document)
    with nothing_changes():
        response = post_webhook(client, body, sign(body))
    assert refused(response, 400, "malformed_event")["message"].startswith("The body is not")


def test_a_webhook_whose_body_is_not_utf8_is_refused_whether_signed_or_not(
    client: Any, nothing_changes: NothingChanges
) -> None:
    body = json.dumps(an_event(), ensure_ascii=False).replace("Bad", "B\u00e4d").encode("latin-1") + b"\xff\xfe"
    with nothing_changes():
        signed = post_webhook(client, body, raw_signature(body))
        unsigned = post_webhook(client, body, f"t={int(time.time())},v1={'0' * 64}")
    assert "UTF-8" in refused(signed, 400, "invalid_signature")["message"]
    refused(unsigned, 400, "invalid_signature")


def test_a_webhook_of_two_mebibytes_is_refused_as_too_large(client: Any, nothing_changes: NothingChanges) -> None:
    event = an_event()
    event["data"]["object"]["description"] = "x" * TWO_MIB
    body = json.dumps(event)
    with nothing_changes():
        response = post_webhook(client, body, sign(body))
    assert "bytes" in refused(response, 413, "payload_too_large")["message"]


def test_a_webhook_one_byte_over_the_limit_is_refused_as_too_large(
    client: Any, container: Container, nothing_changes: NothingChanges
) -> None:
    body = b"x" * (container.settings.max_body_bytes + 1)
    with nothing_changes():
        response = post_webhook(client, body, raw_signature(body))
    refused(response, 413, "payload_too_large")


def test_a_replayed_event_is_acknowledged_as_a_duplicate_and_stored_once(
    client: Any, container: Container, nothing_changes: NothingChanges, queued: list[tuple[str, Any]]
) -> None:
    event = an_event()
    assert post_stripe(client, event).json == {"received": True, "duplicate": False}
    with nothing_changes():
        again = post_stripe(client, event)
        changed = post_stripe(client, {**event, "type": "invoice.paid"})  # same id, another body
    assert again.status_code == 200 and again.json == {"received": True, "duplicate": True}
    assert changed.status_code == 200 and changed.json == {"received": True, "duplicate": True}
    assert inbox_count(container) == 1
    assert relayed(container) == 1


def test_the_webhook_answers_other_methods_with_405(client: Any, nothing_changes: NothingChanges) -> None:
    with nothing_changes():
        response = client.get("/webhooks/stripe")
    refused(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]
