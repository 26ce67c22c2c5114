"""The baselines the benchmarks compare Holdfast with, measured in the same run.

The ingestion benchmark's two are served by gunicorn with the production configuration
(``bootstrap/gunicorn_conf.py``), exactly like ``webhooks:create_app()``:

- ``bench.baselines:create_bare()``: ``POST /webhooks/stripe`` reads the body and answers 200 ``{}``.
  The cost of gunicorn, Flask and the HTTP exchange alone.
- ``bench.baselines:create_floor()``: ``POST /webhooks/stripe`` verifies the Stripe signature
  (stripe-python, 300 s tolerance), reads the event id and type, and inserts one row into
  ``inbox_events`` with a plain ``INSERT`` through SQLAlchemy on a pooled engine, in its own
  committed transaction. The least an endpoint that stores a verified event durably can do.

Environment: ``DATABASE_URL`` and ``STRIPE_WEBHOOK_SECRET`` (the floor only).

The release benchmark's is ``plain_loop``: the same calls to the provisioning API, one after
another, from one process.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from typing import Any

import stripe
from flask import Flask, request
from sqlalchemy import Engine, create_engine, text

from bench.infra import BenchError
from bootstrap.settings import database_url_for_sqlalchemy

TOLERANCE_SECONDS = 300

_INSERT = text(
    "INSERT INTO inbox_events (source, external_id, event_type, payload, status, attempts, received_at, queued_at) "
    "VALUES ('floor', :external_id, :event_type, :payload, 'received', 0, :now, :now)"
)


def _health(app: Flask) -> None:
    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}


def create_bare() -> Flask:
    """POST /webhooks/stripe -> 200 {} (the body is read, nothing else is done)."""
    app = Flask("bench_bare")
    _health(app)

    @app.post("/webhooks/stripe")
    def receive() -> tuple[dict[str, Any], int]:
        request.get_data(cache=False)
        return {}, 200

    return app


def create_floor() -> Flask:
    """POST /webhooks/stripe -> verify the signature, insert one row, 200."""
    secret = os.environ["STRIPE_WEBHOOK_SECRET"].split(",")[0].strip()
    url = database_url_for_sqlalchemy(os.environ["DATABASE_URL"])
    # A pooled engine sized like the app's (adapters/db/engine.py), built in the worker process.
    engine: Engine = create_engine(url, pool_size=5, max_overflow=10)
    app = Flask("bench_floor")
    _health(app)

    @app.post("/webhooks/stripe")
    def receive() -> tuple[dict[str, Any], int]:
        payload = request.get_data(cache=False).decode("utf-8")
        try:
            stripe.WebhookSignature.verify_header(
                payload, request.headers.get("Stripe-Signature"), secret, tolerance=TOLERANCE_SECONDS
            )
        except stripe.SignatureVerificationError:
            return {"error": "invalid_signature"}, 400
        event = json.loads(payload)
        with engine.begin() as connection:
            connection.execute(
                _INSERT,
                {
                    "external_id": event["id"],
                    "event_type": event["type"],
                    "payload": payload,
                    "now": datetime.now(UTC),
                },
            )
        return {"received": True}, 200

    return app


def plain_loop(url: str, bodies: list[dict[str, Any]]) -> float:
    """The same POSTs the release makes, one process, one ``requests.Session``, one after another;
    the seconds taken."""
    import requests

    with requests.Session() as session:
        started = time.perf_counter()
        for body in bodies:
            response = session.post(
                url, json=body, headers={"Idempotency-Key": body["request_id"]}, timeout=(3.05, 10.0)
            )
            if response.status_code != 200:
                raise BenchError(f"the stand-in answered {response.status_code} to the plain loop")
        return time.perf_counter() - started
