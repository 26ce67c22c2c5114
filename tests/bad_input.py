"""Bad input gets a clear answer: the helpers of tests/integration/test_bad_input_*.py.

PRODUCT.md's promise, case by case, on ``POST /webhooks/stripe`` and on every ``/api`` route:
a 4xx with a sentence, never a 500, and nothing changes. ``refused`` checks the status and the
error shape (``{"error": <code>, "message": <sentence>}``); ``database_state`` is what the
``nothing_changes`` fixture (tests/integration/conftest.py) compares before and after.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from adapters.db.tables import metadata
from bootstrap import Container
from services.inbox import relay_stored
from tests.conftest import WEBHOOK_SECRET, stripe_fixture

TWO_MIB = 2 * 1024 * 1024
FAILED_EVENT_ID = "evt_failed_0001"

NothingChanges = Callable[[], AbstractContextManager[None]]


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


def relayed(container: Container) -> int:
    """How many stored deliveries the relay hands to the broker now (the web itself queues nothing)."""
    sent: list[int] = []

    class Recording:
        def process_inbox_event(self, inbox_id: int) -> None:
            sent.append(inbox_id)

    count = relay_stored(container.uow(), Recording(), now=datetime.now(UTC))  # type: ignore[arg-type]
    assert count == len(sent)
    return count


def get_account(client: Any, admin: dict[str, str], account_id: str) -> dict[str, Any]:
    response = client.get(f"/api/accounts/{account_id}", headers=admin)
    assert response.status_code == 200, response.json
    return dict(response.json)


def call(client: Any, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    return client.open(url, method=method, json=body, headers=headers or {})
