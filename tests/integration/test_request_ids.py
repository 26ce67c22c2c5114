"""Every line logged while a request is handled carries its id, and the id goes back in ``X-Request-ID``.

The caller's ``X-Request-ID`` is used when it is a sane token (a router's id, a UUID); anything
else (spaces, quotes, control characters, too long, empty) gets a new id instead. Lines are read
as they leave the process: JSON, through the formatter every Holdfast process uses.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from bootstrap.celery_app import create_celery
from bootstrap.logging import json_formatter
from tests.conftest import post_dynamics
from tests.dynamics_bodies import account_create
from webhooks import create_app


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every log line written while the test runs, as the processes write them (JSON)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def unsigned_stripe_event(client: Any, **headers: str) -> Any:
    """A Stripe webhook with a wrong signature: refused, and the refusal is logged (structlog)."""
    body = json.dumps({"id": "evt_1", "object": "event", "type": "invoice.paid", "data": {"object": {}}})
    signature = f"t={int(time.time())},v1={'0' * 64}"
    return client.post(
        "/webhooks/stripe",
        data=body,
        headers={"Stripe-Signature": signature, "Content-Type": "application/json", **headers},
    )


def test_the_callers_request_id_is_on_every_line_of_the_request_and_in_the_answer(
    client: Any, log_lines: io.StringIO
) -> None:
    given = "5f0c1c1e-8d0e-4c4e-9a53-1f2d3c4b5a69"
    response = post_dynamics(client, account_create(str(uuid.uuid4())), **{"X-Request-ID": given})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == given
    logged = lines(log_lines)
    assert "dynamics_event_received" in [line["event"] for line in logged]
    assert {line.get("request_id") for line in logged} == {given}


def test_lines_from_the_standard_librarys_loggers_carry_it_too(container: Any, log_lines: io.StringIO) -> None:
    """readiness logs through Flask's logger (the standard library), as gunicorn, SQLAlchemy and kombu do."""
    dead = create_celery(dataclasses.replace(container.settings, broker_url="redis://127.0.0.1:1/0"))
    client = create_app(container=dataclasses.replace(container, celery=dead)).test_client()
    response = client.get("/readyz", headers={"X-Request-ID": "router-id-0123456789abcdef"})
    assert response.status_code == 503
    warnings = [line for line in lines(log_lines) if line["event"].startswith("readiness: broker unreachable")]
    assert warnings and all(line["request_id"] == "router-id-0123456789abcdef" for line in warnings)
    assert {line.get("request_id") for line in lines(log_lines)} == {"router-id-0123456789abcdef"}


def test_without_a_request_id_the_request_gets_a_new_one_logged_and_answered(
    client: Any, log_lines: io.StringIO
) -> None:
    first, second = unsigned_stripe_event(client), unsigned_stripe_event(client)
    assert first.status_code == second.status_code == 400
    made = [first.headers["X-Request-ID"], second.headers["X-Request-ID"]]
    assert made[0] != made[1]
    for request_id in made:
        assert str(uuid.UUID(request_id)) == request_id
    refusals = [line for line in lines(log_lines) if line["event"] == "stripe_webhook_refused"]
    assert [line["request_id"] for line in refusals] == made


@pytest.mark.parametrize(
    "given",
    [
        "",
        "has spaces in it",
        'quote"and-more',
        "line\tbreak",
        "-starts-with-a-dash",
        "x" * 201,
        "é-not-ascii",
    ],
    ids=["empty", "spaces", "quote", "tab", "leading-dash", "too-long", "not-ascii"],
)
def test_a_request_id_that_is_not_a_sane_token_is_replaced_by_a_new_one(
    client: Any, log_lines: io.StringIO, given: str
) -> None:
    response = unsigned_stripe_event(client, **{"X-Request-ID": given})
    answered = response.headers["X-Request-ID"]
    assert answered != given and str(uuid.UUID(answered)) == answered
    refusals = [line for line in lines(log_lines) if line["event"] == "stripe_webhook_refused"]
    assert [line["request_id"] for line in refusals] == [answered]


def test_an_error_answer_carries_the_request_id_too(client: Any) -> None:
    """Refused before any route ran (no token; a path that is not there)."""
    assert client.get("/api/accounts", headers={"X-Request-ID": "req-401"}).headers["X-Request-ID"] == "req-401"
    assert client.get("/nowhere", headers={"X-Request-ID": "req-404"}).headers["X-Request-ID"] == "req-404"


def test_nothing_of_a_request_stays_bound_after_it(client: Any, log_lines: io.StringIO) -> None:
    """A thread serves many requests: a line logged after one (by the same thread) has no request id."""
    unsigned_stripe_event(client, **{"X-Request-ID": "req-done"})
    structlog.get_logger("tests").info("after_the_request")
    after = [line for line in lines(log_lines) if line["event"] == "after_the_request"]
    assert len(after) == 1 and "request_id" not in after[0]
