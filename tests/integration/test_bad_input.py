"""Bad input gets a clear answer: a 4xx with a sentence, never a 500, and nothing changes.

PRODUCT.md's promise, case by case, on ``POST /webhooks/stripe`` and on every ``/api`` route.
Each refusal is checked three ways: the status code, the error shape
(``{"error": <code>, "message": <sentence>}``) and that no row of any table changed and no
task was queued.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from adapters.db.tables import metadata
from bootstrap import Container
from services.inbox import relay_stored
from tests.conftest import OLD_WEBHOOK_SECRET, WEBHOOK_SECRET, post_stripe, sign, stripe_fixture

TWO_MIB = 2 * 1024 * 1024
FAILED_EVENT_ID = "evt_failed_0001"

NothingChanges = Callable[[], AbstractContextManager[None]]


# --- helpers ------------------------------------------------------------------------------


def database_state(container: Container) -> dict[str, tuple[int, list[str]]]:
    """Every table's row count and rows (as sortable text), to compare before and after."""
    state: dict[str, tuple[int, list[str]]] = {}
    with container.engine.connect() as connection:
        for table in metadata.sorted_tables:
            count = connection.execute(select(func.count()).select_from(table)).scalar_one()
            rows = sorted(repr(tuple(row)) for row in connection.execute(select(table)))
            state[table.name] = (count, rows)
    return state


def inbox_count(container: Container) -> int:
    inbox = metadata.tables["inbox_events"]
    with container.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(inbox)).scalar_one())


@pytest.fixture
def queued(container: Container, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Every task the web process sends to the broker in this test (recorded, not sent)."""
    sent: list[tuple[str, Any]] = []
    monkeypatch.setattr(
        container.celery, "send_task", lambda name, *args, **kwargs: sent.append((name, kwargs.get("args")))
    )
    return sent


@pytest.fixture
def nothing_changes(container: Container, queued: list[tuple[str, Any]]) -> NothingChanges:
    """``with nothing_changes(): ...`` fails if any table's rows changed or a task was queued inside."""

    @contextmanager
    def check() -> Iterator[None]:
        before, tasks_before = database_state(container), len(queued)
        yield
        after = database_state(container)
        for table, (count, rows) in before.items():
            assert after[table][0] == count, f"{table} had {count} rows and now has {after[table][0]}"
            assert after[table][1] == rows, f"rows of {table} changed"
        assert queued[tasks_before:] == [], f"tasks were queued: {queued[tasks_before:]}"

    return check


def refused(response: Any, status: int, error: str | None = None) -> dict[str, Any]:
    """Assert a refusal: the status, a JSON body with an error code and a message that is a sentence."""
    text = response.get_data(as_text=True)
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {text[:500]}"
    assert response.is_json, f"the answer is not JSON: {text[:200]}"
    body = response.get_json()
    assert isinstance(body, dict), body
    code, message = body.get("error"), body.get("message")
    assert isinstance(code, str) and re.fullmatch(r"[a-z][a-z_]*", code), f"error is not a code: {code!r}"
    if error is not None:
        assert code == error, f"expected error {error!r}, got {code!r}: {message}"
    assert isinstance(message, str) and message.strip(), f"message is empty: {body}"
    assert len(message.split()) >= 3 and message.rstrip()[-1] in ".!?", f"message is not a sentence: {message!r}"
    assert "Traceback" not in message
    return body


def raw_signature(body: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature over raw bytes (stripe-python's helper only signs text)."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def post_webhook(client: Any, body: str | bytes, signature: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return client.post("/webhooks/stripe", data=body, headers=headers)


def an_event(**top_level: Any) -> dict[str, Any]:
    event = stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_bad", id="in_bad")
    event.update(top_level)
    return event


# --- POST /webhooks/stripe: who sent it -----------------------------------------------------


def test_a_webhook_with_a_wrong_signature_is_refused(client: Any, nothing_changes: NothingChanges) -> None:
    body = json.dumps(an_event())
    with nothing_changes():
        response = post_webhook(client, body, f"t={int(time.time())},v1={'0' * 64}")
    assert "does not sign this body" in refused(response, 400, "invalid_signature")["message"]


def test_a_webhook_whose_body_was_changed_after_signing_is_refused(
    client: Any, nothing_changes: NothingChanges
) -> None:
    event = an_event()
    signature = sign(json.dumps(event))
    event["data"]["object"]["amount_due"] = 1
    with nothing_changes():
        response = post_webhook(client, json.dumps(event), signature)
    refused(response, 400, "invalid_signature")


def test_a_webhook_without_a_signature_header_is_refused(client: Any, nothing_changes: NothingChanges) -> None:
    with nothing_changes():
        response = post_webhook(client, json.dumps(an_event()), None)
    assert "missing" in refused(response, 400, "invalid_signature")["message"]


@pytest.mark.parametrize("header", ["", "nonsense", "t=123", "v1=abc", "t=abc,v1=def", "t=,v1="])
def test_a_webhook_with_a_garbled_signature_header_is_refused(
    client: Any, nothing_changes: NothingChanges, header: str
) -> None:
    with nothing_changes():
        response = post_webhook(client, json.dumps(an_event()), header)
    refused(response, 400, "invalid_signature")


def test_a_webhook_signed_with_an_unknown_secret_is_refused(client: Any, nothing_changes: NothingChanges) -> None:
    body = json.dumps(an_event())
    with nothing_changes():
        response = post_webhook(client, body, sign(body, secret="whsec_someone_else"))
    refused(response, 400, "invalid_signature")


def test_a_webhook_signed_with_the_second_secret_during_a_rotation_is_accepted(
    client: Any, container: Container, queued: list[tuple[str, Any]]
) -> None:
    body = json.dumps(an_event())
    response = post_webhook(client, body, sign(body, secret=OLD_WEBHOOK_SECRET))
    assert response.status_code == 200, response.json
    assert response.json == {"received": True, "duplicate": False}
    assert inbox_count(container) == 1
    assert relayed(container) == 1


@pytest.mark.parametrize("age", [301, 3600, 10**6])
def test_a_webhook_with_a_stale_timestamp_is_refused_as_a_replay(
    client: Any, nothing_changes: NothingChanges, age: int
) -> None:
    body = json.dumps(an_event())
    with nothing_changes():
        response = post_webhook(client, body, sign(body, timestamp=int(time.time()) - age))
    assert "300 seconds old" in refused(response, 400, "invalid_signature")["message"]


def test_a_stale_webhook_is_refused_even_when_signed_with_the_second_secret(
    client: Any, nothing_changes: NothingChanges
) -> None:
    body = json.dumps(an_event())
    with nothing_changes():
        response = post_webhook(client, body, sign(body, secret=OLD_WEBHOOK_SECRET, timestamp=int(time.time()) - 400))
    assert "seconds old" in refused(response, 400, "invalid_signature")["message"]


def test_a_stale_signature_behind_a_fresh_t_is_refused(client: Any, nothing_changes: NothingChanges) -> None:
    """Reproduced before: the age check read the last ``t`` while stripe-python verified the first."""
    body = json.dumps(an_event())
    old = int(time.time()) - 3600
    signed_an_hour_ago = sign(body, timestamp=old).split(",")[1]  # v1=<signature over the old t>
    header = f"{signed_an_hour_ago}, t={int(time.time())},t={old}"
    with nothing_changes():
        response = post_webhook(client, body, header)
    assert "300 seconds old" in refused(response, 400, "invalid_signature")["message"]


def test_a_t_stripe_python_does_not_read_is_not_a_500(client: Any, nothing_changes: NothingChanges) -> None:
    """Reproduced before: ``v1=..., t=abc,t=<now>`` was a 500 (" t" is not the key stripe-python reads)."""
    body = json.dumps(an_event())
    now = int(time.time())
    signature = sign(body, timestamp=now).split(",")[1]
    with nothing_changes():
        response = post_webhook(client, body, f"{signature}, t=abc,t={now}x")
    refused(response, 400, "invalid_signature")
    accepted = post_webhook(client, body, f"{signature}, t=abc,t={now}")  # what stripe-python verifies: fine
    assert accepted.status_code == 200, accepted.json


@pytest.mark.parametrize("garbage", ["é", "\u00ff" * 64, "ñ" + "0" * 63], ids=["one-char", "64-chars", "hex-length"])
def test_a_signature_that_is_not_ascii_is_refused_not_a_500(
    client: Any, nothing_changes: NothingChanges, garbage: str
) -> None:
    """Reproduced before: a 500 (stripe-python's hmac.compare_digest raises TypeError on non-ASCII text).

    Header bytes arrive decoded as Latin-1, so any byte above 0x7F in ``v1=`` made one.
    """
    body = json.dumps(an_event())
    now = int(time.time())
    good = sign(body, timestamp=now).split(",")[1]
    for header in (f"t={now},v1={garbage}", f"t={now},v1={garbage},{good}"):  # stripe-python accepts neither
        with nothing_changes():
            response = post_webhook(client, body, header)
        refused(response, 400, "invalid_signature")


@pytest.mark.parametrize(
    ("header", "says"),
    [
        ("v1=abc", "no timestamp"),
        ("t", "without a value"),
        ("t=1,v1", "without a value"),
        ("t=abc,v1=def", "not a whole number"),
        pytest.param(f"t={'9' * 5000},v1=def", "not a whole number", id="t=<5000 digits>,v1=def"),
        ("t=123", "no v1 signature"),
        ("t=123,v0=abc", "no v1 signature"),
    ],
)
def test_a_malformed_signature_header_is_refused_saying_what_is_wrong(
    client: Any, nothing_changes: NothingChanges, header: str, says: str
) -> None:
    with nothing_changes():
        response = post_webhook(client, json.dumps(an_event()), header)
    assert says in refused(response, 400, "invalid_signature")["message"]


@pytest.mark.parametrize("ahead", [301, 3600])
def test_a_webhook_signed_in_the_future_is_refused(client: Any, nothing_changes: NothingChanges, ahead: int) -> None:
    body = json.dumps(an_event())
    with nothing_changes():
        response = post_webhook(client, body, sign(body, timestamp=int(time.time()) + ahead))
    assert "in the future" in refused(response, 400, "invalid_signature")["message"]


# --- POST /webhooks/stripe: what it says ----------------------------------------------------


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


# --- /api: the state the refusals must leave alone ------------------------------------------


def relayed(container: Container) -> int:
    """How many stored deliveries the relay hands to the broker now (the web itself queues nothing)."""
    sent: list[int] = []

    class Recording:
        def process_inbox_event(self, inbox_id: int) -> None:
            sent.append(inbox_id)

    count = relay_stored(container.uow(), Recording(), now=datetime.now(UTC))  # type: ignore[arg-type]
    assert count == len(sent)
    return count


@pytest.fixture
def seeded(client: Any, admin: dict[str, str], container: Container, queued: list[tuple[str, Any]]) -> None:
    """acme (cus_acme, a manual hold), globex (no hold), a failed and a processed delivery."""
    assert client.put("/api/accounts/acme", json={"name": "Acme", "stripe_customer_id": "cus_acme"}, headers=admin)
    assert client.post("/api/accounts/acme/holds", json={"reason": "manual", "note": "first"}, headers=admin)
    assert client.put("/api/accounts/globex", json={"name": "Globex", "credit_limit": "100.00"}, headers=admin)
    now = datetime.now(UTC)
    failed = container.deliveries.add("stripe", FAILED_EVENT_ID, "invoice.paid", "{}", now)
    done = container.deliveries.add("stripe", "evt_done_0001", "invoice.paid", "{}", now)
    assert failed is not None and done is not None
    with container.uow() as uow:
        uow.inbox.record_outcome(failed, "failed", now, error="ValueError: test")
        uow.inbox.record_outcome(done, "processed", now)
        uow.commit()
    queued.clear()


def get_account(client: Any, admin: dict[str, str], account_id: str) -> dict[str, Any]:
    response = client.get(f"/api/accounts/{account_id}", headers=admin)
    assert response.status_code == 200, response.json
    return dict(response.json)


ROUTES = [
    pytest.param("PUT", "/api/accounts/globex", {"name": "Renamed"}, id="put-account"),
    pytest.param("GET", "/api/accounts/acme", None, id="get-account"),
    pytest.param("GET", "/api/accounts?on_hold=true&limit=1", None, id="list-accounts"),
    pytest.param("POST", "/api/accounts/globex/holds", {"reason": "manual"}, id="place-hold"),
    pytest.param("DELETE", "/api/accounts/acme/holds/manual", None, id="lift-hold"),
    pytest.param("GET", "/api/accounts/acme/timeline", None, id="timeline"),
    pytest.param("GET", "/api/events?status=failed", None, id="list-events"),
    pytest.param("POST", f"/api/events/stripe/{FAILED_EVENT_ID}/replay", None, id="replay"),
    pytest.param("POST", "/api/ops/sweep", None, id="sweep"),
]


def call(client: Any, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    return client.open(url, method=method, json=body, headers=headers or {})


# --- /api: who asks -------------------------------------------------------------------------

BAD_CREDENTIALS = [
    pytest.param(None, id="no-header"),
    pytest.param("", id="empty-header"),
    pytest.param("Bearer", id="bearer-without-token"),
    pytest.param("Bearer ", id="bearer-empty-token"),
    pytest.param("Bearer not-the-admin-token-at-all", id="wrong-token"),
    pytest.param("Bearer {token}x", id="token-with-an-extra-character"),
    pytest.param("Bearer {short}", id="token-prefix"),
    pytest.param("Basic {token}", id="basic-scheme"),
    pytest.param("Token {token}", id="token-scheme"),
    pytest.param("{token}", id="token-without-scheme"),
    pytest.param("Bearer t\u00f6ken", id="non-ascii-token"),
]


@pytest.mark.parametrize(("method", "url", "body"), ROUTES)
@pytest.mark.parametrize("credential", BAD_CREDENTIALS)
def test_every_api_route_refuses_a_caller_without_the_admin_token(
    client: Any,
    admin: dict[str, str],
    seeded: None,
    nothing_changes: NothingChanges,
    method: str,
    url: str,
    body: Any,
    credential: str | None,
) -> None:
    token = admin["Authorization"].removeprefix("Bearer ")
    headers = {} if credential is None else {"Authorization": credential.format(token=token, short=token[:-1])}
    with nothing_changes():
        response = call(client, method, url, body, headers)
    assert "Authorization: Bearer" in refused(response, 401, "unauthorized")["message"]


def test_an_unauthorized_caller_learns_nothing_about_an_account(client: Any, seeded: None) -> None:
    known = client.get("/api/accounts/acme")
    unknown = client.get("/api/accounts/nobody")
    assert known.status_code == unknown.status_code == 401
    assert known.json == unknown.json


# --- /api: bodies ---------------------------------------------------------------------------

JSON_ROUTES = [
    pytest.param("PUT", "/api/accounts/globex", id="put-account"),
    pytest.param("PUT", "/api/accounts/newcomer", id="put-new-account"),
    pytest.param("POST", "/api/accounts/globex/holds", id="place-hold"),
]


@pytest.mark.parametrize(("method", "url"), JSON_ROUTES)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"name": "Trunc', id="truncated"),
        pytest.param("{'name': 'x'}", id="python-repr"),
        pytest.param('{"name": "x"} {"name": "y"}', id="two-documents"),
        pytest.param("[" * 100_000 + "]" * 100_000, id="nested-too-deep"),
        pytest.param(b'{"name": "B\xe4d"}', id="not-utf8"),
    ],
)
def test_a_body_that_is_not_json_is_refused(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, method: str, url: str, body: Any
) -> None:
    with nothing_changes():
        response = client.open(url, method=method, data=body, content_type="application/json", headers=admin)
    assert "JSON" in refused(response, 400, "malformed_json")["message"]


@pytest.mark.parametrize(("method", "url"), JSON_ROUTES)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param([{"name": "x"}], id="an-array"),
        pytest.param("name", id="a-string"),
        pytest.param(12, id="a-number"),
        pytest.param(None, id="null"),
        pytest.param(True, id="true"),
    ],
)
def test_a_json_body_that_is_not_an_object_is_refused(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, method: str, url: str, body: Any
) -> None:
    with nothing_changes():
        response = client.open(
            url, method=method, data=json.dumps(body), content_type="application/json", headers=admin
        )
    refused(response, 400, "validation_error")


@pytest.mark.parametrize(("method", "url"), JSON_ROUTES)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_not_sent_as_json_is_refused_rather_than_ignored(
    client: Any,
    admin: dict[str, str],
    seeded: None,
    nothing_changes: NothingChanges,
    method: str,
    url: str,
    content_type: str | None,
) -> None:
    body = json.dumps({"reason": "manual", "name": "Sent as text"})
    with nothing_changes():
        response = client.open(url, method=method, data=body, content_type=content_type, headers=admin)
    assert "JSON" in refused(response, 415, "unsupported_media_type")["message"]


@pytest.mark.parametrize(
    ("method", "url"),
    [
        *JSON_ROUTES,
        pytest.param("DELETE", "/api/accounts/acme/holds/manual", id="lift-hold"),
        pytest.param("POST", f"/api/events/stripe/{FAILED_EVENT_ID}/replay", id="replay"),
        pytest.param("POST", "/api/ops/sweep", id="sweep"),
    ],
)
def test_a_two_mebibyte_body_to_an_api_route_is_refused_as_too_large(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, method: str, url: str
) -> None:
    body = json.dumps({"reason": "manual", "name": "x" * TWO_MIB})
    with nothing_changes():
        response = client.open(url, method=method, data=body, content_type="application/json", headers=admin)
    refused(response, 413, "payload_too_large")


BAD_ACCOUNT_FIELDS = [
    pytest.param({"credit_limit": [100]}, "credit_limit", id="credit-limit-a-list"),
    pytest.param({"credit_limit": {"amount": 1}}, "credit_limit", id="credit-limit-an-object"),
    pytest.param({"credit_limit": True}, "credit_limit", id="credit-limit-true"),
    pytest.param({"credit_limit": False}, "credit_limit", id="credit-limit-false"),
    pytest.param({"credit_limit": "abc"}, "credit_limit", id="credit-limit-abc"),
    pytest.param({"credit_limit": ""}, "credit_limit", id="credit-limit-empty"),
    pytest.param({"credit_limit": "-1"}, "credit_limit", id="credit-limit-negative-string"),
    pytest.param({"credit_limit": -0.01}, "credit_limit", id="credit-limit-negative-number"),
    pytest.param({"credit_limit": "NaN"}, "credit_limit", id="credit-limit-nan-string"),
    pytest.param({"credit_limit": "sNaN"}, "credit_limit", id="credit-limit-signalling-nan"),
    pytest.param({"credit_limit": "Infinity"}, "credit_limit", id="credit-limit-infinity-string"),
    pytest.param({"credit_limit": "-Infinity"}, "credit_limit", id="credit-limit-minus-infinity"),
    pytest.param({"credit_limit": "1e400"}, "credit_limit", id="credit-limit-huge-exponent"),
    pytest.param({"credit_limit": "1e-400"}, "credit_limit", id="credit-limit-tiny-exponent"),
    pytest.param({"credit_limit": "1000000000000000"}, "credit_limit", id="credit-limit-too-large"),
    pytest.param({"credit_limit": "1.00001"}, "credit_limit", id="credit-limit-too-many-places"),
    pytest.param({"name": 42}, "name", id="name-a-number"),
    pytest.param({"name": ["Acme"]}, "name", id="name-a-list"),
    pytest.param({"name": "x" * 401}, "name", id="name-too-long"),
    pytest.param({"stripe_customer_id": "acme"}, "stripe_customer_id", id="customer-not-cus"),
    pytest.param({"stripe_customer_id": "cus_"}, "stripe_customer_id", id="customer-cus-only"),
    pytest.param({"stripe_customer_id": "cus_a-b"}, "stripe_customer_id", id="customer-bad-character"),
    pytest.param({"stripe_customer_id": "cus_a\n"}, "stripe_customer_id", id="customer-trailing-newline"),
    pytest.param({"stripe_customer_id": "cus_" + "a" * 251}, "stripe_customer_id", id="customer-too-long"),
    pytest.param({"stripe_customer_id": None}, "stripe_customer_id", id="customer-null"),
    pytest.param({"stripe_customer_id": 123}, "stripe_customer_id", id="customer-a-number"),
    pytest.param({"currency": "dollars"}, "currency", id="currency-not-three-letters"),
    pytest.param({"currency": 978}, "currency", id="currency-a-number"),
    pytest.param({"currency": "e\u00fcr"}, "currency", id="currency-non-ascii"),
    pytest.param({"currency": "eur\n"}, "currency", id="currency-trailing-newline"),
    pytest.param({"colour": "red"}, "colour", id="an-unknown-field"),
    pytest.param({"account_id": "other"}, "account_id", id="account-id-in-the-body"),
]


@pytest.mark.parametrize("account_id", ["globex", "newcomer"])
@pytest.mark.parametrize(("changes", "field"), BAD_ACCOUNT_FIELDS)
def test_an_account_with_a_field_of_the_wrong_kind_is_refused(
    client: Any,
    admin: dict[str, str],
    seeded: None,
    nothing_changes: NothingChanges,
    changes: dict[str, Any],
    field: str,
    account_id: str,
) -> None:
    with nothing_changes():
        response = client.put(f"/api/accounts/{account_id}", json={"name": "Changed", **changes}, headers=admin)
    assert field in refused(response, 400, "validation_error")["message"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_credit_limit_of_a_bare_nan_or_infinity_literal_is_refused(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, literal: str
) -> None:
    body = f'{{"name": "Changed", "credit_limit": {literal}}}'
    with nothing_changes():
        response = client.put("/api/accounts/globex", data=body, content_type="application/json", headers=admin)
    assert "credit_limit" in refused(response, 400, "validation_error")["message"]


def test_an_account_cannot_take_a_stripe_customer_mapped_to_another(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges
) -> None:
    with nothing_changes():
        response = client.put("/api/accounts/globex", json={"stripe_customer_id": "cus_acme"}, headers=admin)
    assert "acme" in refused(response, 409, "customer_already_mapped")["message"]


# --- /api: addresses and query strings ------------------------------------------------------

ACCOUNT_ROUTES = [
    pytest.param("PUT", "/api/accounts/{id}", {"name": "x"}, id="put-account"),
    pytest.param("GET", "/api/accounts/{id}", None, id="get-account"),
    pytest.param("POST", "/api/accounts/{id}/holds", {"reason": "manual"}, id="place-hold"),
    pytest.param("DELETE", "/api/accounts/{id}/holds/manual", None, id="lift-hold"),
    pytest.param("GET", "/api/accounts/{id}/timeline", None, id="timeline"),
]


@pytest.mark.parametrize(("method", "url", "body"), ACCOUNT_ROUTES)
@pytest.mark.parametrize(
    "account_id",
    [
        pytest.param("a" * 101, id="101-characters"),
        pytest.param("\u00e9" * 101, id="101-accented-characters"),
        pytest.param("%00", id="a-nul"),
        pytest.param("a%0Ab", id="a-newline"),
        pytest.param("%20%20", id="blank"),
    ],
)
def test_an_account_id_that_cannot_be_one_is_refused(
    client: Any,
    admin: dict[str, str],
    seeded: None,
    nothing_changes: NothingChanges,
    method: str,
    url: str,
    body: Any,
    account_id: str,
) -> None:
    with nothing_changes():
        response = call(client, method, url.format(id=account_id), body, admin)
    assert "100" in refused(response, 400, "invalid_account_id")["message"]


def test_an_account_id_of_exactly_100_characters_is_accepted(client: Any, admin: dict[str, str]) -> None:
    account_id = "\u00e9" * 100
    assert client.put(f"/api/accounts/{account_id}", json={"name": "Long"}, headers=admin).status_code == 201
    assert get_account(client, admin, account_id)["account_id"] == account_id


@pytest.mark.parametrize(("method", "url", "body"), [p for p in ACCOUNT_ROUTES if p.id != "put-account"])
def test_an_unknown_account_is_not_found(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, method: str, url: str, body: Any
) -> None:
    with nothing_changes():
        response = call(client, method, url.format(id="nobody"), body, admin)
    assert "nobody" in refused(response, 404, "account_not_found")["message"]


LIST_ROUTES = [
    pytest.param("/api/accounts", id="accounts"),
    pytest.param("/api/accounts/acme/timeline", id="timeline"),
    pytest.param("/api/events", id="events"),
]


@pytest.mark.parametrize("url", LIST_ROUTES)
@pytest.mark.parametrize("limit", ["0", "501", "abc", "-1", "1.5", "", "1e2", "99999999999999999999"])
def test_a_limit_outside_1_to_500_is_refused(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, url: str, limit: str
) -> None:
    with nothing_changes():
        response = client.get(url, query_string={"limit": limit}, headers=admin)
    assert "limit" in refused(response, 400, "validation_error")["message"]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


BAD_CURSORS = [
    pytest.param("!!!", id="not-base64"),
    pytest.param("a", id="one-character"),
    pytest.param("YWJj*", id="base64-with-a-stray-character"),
    pytest.param(_b64(b"\xff\xfe"), id="not-utf8"),
    pytest.param(_b64(b"\x00"), id="a-nul"),
    pytest.param(_b64(b"acme\x00"), id="ends-in-a-nul"),
    pytest.param("", id="empty"),
    pytest.param("a" * 501, id="too-long"),
]
BAD_ROW_CURSORS = [  # the timeline and the inbox page by row id
    pytest.param(_b64(b"acme"), id="not-a-number"),
    pytest.param(_b64(b"-5"), id="a-negative-number"),
    pytest.param(_b64("\u00b2".encode()), id="a-superscript-digit"),
    pytest.param(_b64("\u0661\u0662".encode()), id="arabic-indic-digits"),
    pytest.param(_b64(b"9" * 40), id="a-number-beyond-any-id"),
    pytest.param(_b64(b"9223372036854775808"), id="just-beyond-bigint"),
]


@pytest.mark.parametrize("url", LIST_ROUTES)
@pytest.mark.parametrize("cursor", BAD_CURSORS)
def test_a_cursor_this_api_did_not_give_out_is_refused(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, url: str, cursor: str
) -> None:
    with nothing_changes():
        response = client.get(url, query_string={"cursor": cursor}, headers=admin)
    assert "cursor" in refused(response, 400)["message"]


@pytest.mark.parametrize("url", [p for p in LIST_ROUTES if p.id != "accounts"])
@pytest.mark.parametrize("cursor", BAD_ROW_CURSORS)
def test_a_row_cursor_that_is_not_a_row_id_is_refused(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, url: str, cursor: str
) -> None:
    with nothing_changes():
        response = client.get(url, query_string={"cursor": cursor}, headers=admin)
    refused(response, 400, "invalid_cursor")


def test_a_cursor_that_was_given_out_pages_through_every_list(client: Any, admin: dict[str, str], seeded: None) -> None:
    for url in ("/api/accounts", "/api/accounts/acme/timeline", "/api/events"):
        first = client.get(url, query_string={"limit": 1}, headers=admin)
        assert first.status_code == 200 and first.json["next_cursor"], (url, first.json)
        second = client.get(url, query_string={"limit": 1, "cursor": first.json["next_cursor"]}, headers=admin)
        assert second.status_code == 200 and second.json["items"] != first.json["items"], url


@pytest.mark.parametrize(
    ("url", "query"),
    [
        pytest.param("/api/accounts", {"on_hold": "maybe"}, id="on-hold-not-a-boolean"),
        pytest.param("/api/accounts", {"on_hold": ""}, id="on-hold-empty"),
        pytest.param("/api/accounts", {"colour": "red"}, id="accounts-unknown-parameter"),
        pytest.param("/api/accounts/acme/timeline", {"on_hold": "true"}, id="timeline-unknown-parameter"),
        pytest.param("/api/events", {"status": "lost"}, id="events-unknown-status"),
        pytest.param("/api/events", {"status": ""}, id="events-empty-status"),
        pytest.param("/api/events", {"colour": "red"}, id="events-unknown-parameter"),
    ],
)
def test_a_query_parameter_that_is_unknown_or_of_the_wrong_kind_is_refused(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, url: str, query: dict[str, str]
) -> None:
    with nothing_changes():
        response = client.get(url, query_string=query, headers=admin)
    assert next(iter(query)) in refused(response, 400, "validation_error")["message"]


# --- /api: holds ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"reason": "non_payment"}, id="non-payment"),
        pytest.param({"reason": "dispute"}, id="dispute"),
        pytest.param({"reason": "credit_review"}, id="credit-review"),
        pytest.param({"reason": "MANUAL"}, id="manual-in-capitals"),
        pytest.param({"reason": ""}, id="empty"),
        pytest.param({"reason": None}, id="null"),
        pytest.param({"reason": 1}, id="a-number"),
        pytest.param({"reason": ["manual"]}, id="a-list"),
        pytest.param({}, id="missing"),
        pytest.param({"note": "no reason"}, id="note-only"),
        pytest.param({"reason": "manual", "note": 5}, id="note-a-number"),
        pytest.param({"reason": "manual", "note": "x" * 2001}, id="note-too-long"),
        pytest.param({"reason": "manual", "until": "tomorrow"}, id="an-unknown-field"),
    ],
)
def test_a_hold_other_than_a_well_formed_manual_one_is_refused(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, body: dict[str, Any]
) -> None:
    with nothing_changes():
        response = client.post("/api/accounts/globex/holds", json=body, headers=admin)
    refused(response, 400, "validation_error")


def test_a_hold_with_another_reason_is_refused_with_the_reason_why(
    client: Any, admin: dict[str, str], seeded: None
) -> None:
    response = client.post("/api/accounts/globex/holds", json={"reason": "non_payment"}, headers=admin)
    assert "Only a manual hold" in refused(response, 400, "validation_error")["message"]


def test_a_second_manual_hold_is_a_conflict_and_keeps_the_first(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges
) -> None:
    before = get_account(client, admin, "acme")
    with nothing_changes():
        response = client.post("/api/accounts/acme/holds", json={"reason": "manual", "note": "second"}, headers=admin)
    refused(response, 409, "hold_exists")
    assert get_account(client, admin, "acme") == before
    assert [h["note"] for h in before["holds"]] == ["first"]


def test_lifting_a_manual_hold_that_does_not_exist_is_not_found(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges
) -> None:
    with nothing_changes():
        response = client.delete("/api/accounts/globex/holds/manual", headers=admin)
    refused(response, 404, "hold_not_found")


@pytest.mark.parametrize("reason", ["non_payment", "credit_review", "bogus"])
def test_only_the_manual_and_dispute_holds_can_be_lifted_through_the_api(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, reason: str
) -> None:
    with nothing_changes():
        response = client.delete(f"/api/accounts/acme/holds/{reason}", headers=admin)
    refused(response, 404, "not_found")


def test_lifting_a_dispute_hold_that_does_not_exist_is_refused(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges
) -> None:
    with nothing_changes():
        response = client.delete("/api/accounts/acme/holds/dispute", headers=admin)
    refused(response, 404, "hold_not_found")


@pytest.mark.parametrize(
    "query",
    [
        pytest.param({"note": "x" * 2001}, id="note-too-long"),
        pytest.param({"reason": "dispute"}, id="an-unknown-parameter"),
    ],
)
def test_lifting_a_hold_with_a_bad_query_is_refused_and_the_hold_stays(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, query: dict[str, str]
) -> None:
    with nothing_changes():
        response = client.delete("/api/accounts/acme/holds/manual", query_string=query, headers=admin)
    refused(response, 400, "validation_error")
    assert get_account(client, admin, "acme")["on_hold"] is True


# --- /api: events and ops -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "event_id"),
    [
        pytest.param("stripe", "evt_unknown", id="unknown-event"),
        pytest.param("dynamics", FAILED_EVENT_ID, id="other-source"),
        pytest.param("bogus", "evt_1", id="unknown-source"),
        pytest.param("stripe", "evt_" + "x" * 300, id="event-id-too-long"),
        pytest.param("s" * 40, "evt_1", id="source-too-long"),
    ],
)
def test_replaying_an_event_that_is_not_stored_is_not_found(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, source: str, event_id: str
) -> None:
    with nothing_changes():
        response = client.post(f"/api/events/{source}/{event_id}/replay", headers=admin)
    refused(response, 404, "event_not_found")


@pytest.mark.parametrize(
    ("source", "event_id"),
    [
        pytest.param("stripe", "evt_%00", id="event-id-with-a-nul"),
        pytest.param("str%00ipe", "evt_1", id="source-with-a-nul"),
        pytest.param("stripe", "evt_%0A", id="event-id-with-a-newline"),
    ],
)
def test_replaying_an_event_id_that_cannot_be_one_is_refused(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, source: str, event_id: str
) -> None:
    with nothing_changes():
        response = client.post(f"/api/events/{source}/{event_id}/replay", headers=admin)
    refused(response, 400)


def test_replaying_an_event_that_has_not_failed_is_a_conflict(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges
) -> None:
    with nothing_changes():
        response = client.post("/api/events/stripe/evt_done_0001/replay", headers=admin)
    assert "processed" in refused(response, 409, "not_replayable")["message"]


@pytest.mark.parametrize(
    ("method", "url"),
    [
        pytest.param("PATCH", "/api/accounts/acme", id="patch-account"),
        pytest.param("DELETE", "/api/accounts/acme", id="delete-account"),
        pytest.param("GET", "/api/ops/sweep", id="get-sweep"),
        pytest.param("GET", f"/api/events/stripe/{FAILED_EVENT_ID}/replay", id="get-replay"),
    ],
)
def test_a_method_a_route_does_not_accept_is_refused(
    client: Any, admin: dict[str, str], seeded: None, nothing_changes: NothingChanges, method: str, url: str
) -> None:
    with nothing_changes():
        response = client.open(url, method=method, headers=admin)
    refused(response, 405, "method_not_allowed")


@pytest.mark.parametrize("url", ["/api/nothing-here", "/api/accounts/acme/holds/manual/extra", "/api/ops/nap"])
def test_an_address_that_is_not_a_route_is_not_found(
    client: Any, admin: dict[str, str], nothing_changes: NothingChanges, url: str
) -> None:
    with nothing_changes():
        response = client.post(url, headers=admin)
    refused(response, 404, "not_found")
