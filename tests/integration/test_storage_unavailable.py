"""When the database cannot store an event, the webhook answers 503 (the sender retries) and acknowledges nothing."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest

from adapters.db.engine import make_engine, make_session_factory
from tests.conftest import DYNAMICS_KEY, inbox_rows, post_stripe, stripe_fixture
from tests.dynamics_bodies import account_create, encode
from webhooks import create_app


def app_without_database(container: Any) -> Any:
    nowhere = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=1"
    dead = make_engine(nowhere)
    settings = dataclasses.replace(container.settings, database_url=nowhere)
    return create_app(
        container=dataclasses.replace(
            container, settings=settings, engine=dead, session_factory=make_session_factory(dead)
        )
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


def test_a_pooled_connection_the_server_dropped_is_replaced_and_the_event_stored(container: Any) -> None:
    """The webhook's store has no pre-ping: it retries once on a dropped connection instead."""
    from sqlalchemy import text

    store = container.deliveries
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server that drops connections; the PostgreSQL run covers this")
    assert store.add("stripe", "evt_before_drop", "invoice.paid", "{}", container.clock()) is not None
    with store.engine.connect() as pooled:  # the connection the next store will reuse
        backend = pooled.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with container.engine.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
    assert store.add("stripe", "evt_after_drop", "invoice.paid", "{}", container.clock()) is not None
    assert sorted(r.external_id for r in inbox_rows(container)) == ["evt_after_drop", "evt_before_drop"]
