"""Liveness, readiness against the real database and broker, and the OpenAPI document."""

from __future__ import annotations

import dataclasses
from typing import Any

from bootstrap.celery_app import create_celery
from webhooks import create_app


def test_liveness_answers_without_credentials(client: Any) -> None:
    assert client.get("/healthz").json == {"status": "ok"}


def test_readiness_checks_the_database_and_the_broker(client: Any) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


def test_readiness_fails_when_the_broker_is_unreachable(container: Any) -> None:
    dead = create_celery(dataclasses.replace(container.settings, broker_url="redis://127.0.0.1:1/0"))
    app = create_app(container=dataclasses.replace(container, celery=dead))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"] == {"database": "ok", "broker": "unreachable"}


def test_the_openapi_document_describes_the_api_from_its_schemas(client: Any) -> None:
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.")
    for path in (
        "/api/accounts/{account_id}",
        "/api/accounts",
        "/api/accounts/{account_id}/holds",
        "/api/accounts/{account_id}/holds/manual",
        "/api/accounts/{account_id}/timeline",
        "/api/accounts/{account_id}/orders",
        "/api/provisioning",
        "/api/provisioning/{request_id}",
        "/api/provisioning/{request_id}/retry",
        "/api/ops/sweep",
    ):
        assert path in spec["paths"], path
    schemas = spec["components"]["schemas"]
    assert {"Account", "Hold", "ProvisioningRequest", "Error"} <= set(schemas)
    assert set(schemas["Account"]["properties"]) >= {
        "account_id",
        "name",
        "stripe_customer_id",
        "currency",
        "credit_limit",
        "exposure",
        "on_hold",
        "blocks_changes",
        "parks_provisioning",
        "holds",
        "enforcement_paused_until",
        "awaiting",
    }
    bearer = spec["components"]["securitySchemes"]["bearer"]
    assert {k: v for k, v in bearer.items() if k != "description"} == {"type": "http", "scheme": "bearer"}
    assert "/api/tokens" in bearer["description"] and "403" in bearer["description"]
    hold = spec["paths"]["/api/accounts/{account_id}/holds"]["post"]
    assert (hold["x-required-right"], hold["x-roles"]) == ("manage_holds", ["finance", "admin"])
    assert {"401", "403"} <= set(hold["responses"])
