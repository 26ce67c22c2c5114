"""When the database cannot store an event, the webhook answers 503 (the sender retries) and acknowledges nothing."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from adapters.db.engine import make_engine, make_session_factory
from tests.conftest import DYNAMICS_KEY, inbox_rows, post_stripe, stripe_fixture
from tests.crm_bodies import account_create, encode
from webhooks import create_app


def app_without_database(container: Any) -> Any:
    dead = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere", connect_args={"connect_timeout": 1})
    return create_app(
        container=dataclasses.replace(container, engine=dead, session_factory=make_session_factory(dead))
    ).test_client()


def test_a_stripe_event_that_cannot_be_stored_gets_503(container: Any) -> None:
    response = post_stripe(app_without_database(container), stripe_fixture("invoice.paid.stripe-ruby-mock.json"))
    assert response.status_code == 503
    assert response.json["error"] == "storage_unavailable" and "retry" in response.json["message"]
    assert inbox_rows(container) == []


def test_a_dynamics_event_that_cannot_be_stored_gets_503(container: Any) -> None:
    response = app_without_database(container).post(
        f"/webhooks/dynamics?code={DYNAMICS_KEY}",
        data=encode(account_create(str(uuid.uuid4()))),
        content_type="application/json",
    )
    assert response.status_code == 503 and response.json["error"] == "storage_unavailable"
    assert inbox_rows(container) == []


def test_readiness_reports_the_database_unreachable(container: Any) -> None:
    response = app_without_database(container).get("/readyz")
    assert response.status_code == 503 and response.json["checks"]["database"] == "unreachable"
