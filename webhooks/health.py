"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint
from sqlalchemy import text

from webhooks.context import container
from webhooks.schemas import HealthSchema, ReadinessSchema

blp = Blueprint("health", __name__, description="Liveness and readiness, for the platform's checks (no token)")


@blp.route("/healthz", methods=["GET"])
@blp.doc(security=[])
@blp.alt_response(200, schema=HealthSchema, description="The process answers.", success=True)
def healthz() -> dict[str, Any]:
    """Liveness: the web process answers."""
    return {"status": "ok"}


@blp.route("/readyz", methods=["GET"])
@blp.doc(security=[])
@blp.alt_response(200, schema=ReadinessSchema, description="The database and the broker answer.", success=True)
@blp.alt_response(503, schema=ReadinessSchema, description="The database or the broker does not answer.")
def readyz() -> tuple[dict[str, Any], int]:
    """Readiness: the database and the broker are reachable."""
    c = container()
    checks: dict[str, str] = {}
    try:
        with c.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as error:
        current_app.logger.warning("readiness: database unreachable: %s", type(error).__name__)
        checks["database"] = "unreachable"
    try:
        with c.celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as error:
        current_app.logger.warning("readiness: broker unreachable: %s", type(error).__name__)
        checks["broker"] = "unreachable"
    ready = all(v == "ok" for v in checks.values())
    return {"status": "ready" if ready else "not_ready", "checks": checks}, 200 if ready else 503
