"""Test wiring: real databases and brokers, chosen by HOLDFAST_TEST_BACKEND.

- ``sqlite`` (default): a SQLite file and kombu's filesystem broker, as the embedded default.
- ``postgres``: a fresh PostgreSQL database built by the Alembic migrations, and Redis.

In CI (CI=true) the postgres backend must be reachable: the tests fail instead of skipping.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import stripe
from sqlalchemy import create_engine, delete, select, text

from adapters.db.tables import metadata
from bootstrap import Container, build
from bootstrap.settings import Settings, load_settings
from webhooks import create_app

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "fixtures"
if not FIXTURES.exists():  # a clone elsewhere: shared/ beside the repository
    FIXTURES = Path(os.environ.get("HOLDFAST_FIXTURES", ROOT / "shared" / "fixtures"))

WEBHOOK_SECRET = "whsec_test_" + secrets.token_hex(8)
OLD_WEBHOOK_SECRET = "whsec_old_" + secrets.token_hex(8)
ADMIN_TOKEN = "admin-" + secrets.token_hex(16)
DYNAMICS_KEY = "dyn-key-" + secrets.token_hex(8)
STRIPE_API_KEY = "sk_test_" + secrets.token_hex(12)
DYNAMICS_HEADER = ("X-Holdfast-Key", "dyn-header-" + secrets.token_hex(8))
BACKEND = os.environ.get("HOLDFAST_TEST_BACKEND", "sqlite")
PG_ADMIN_URL = os.environ.get("HOLDFAST_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("HOLDFAST_TEST_REDIS", "redis://127.0.0.1:6379/14")


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} is not reachable ({type(error).__name__}: {error})"
    if os.environ.get("CI") == "true":
        pytest.fail(message + "; in CI it must run, not skip.")
    pytest.skip(message)


@pytest.fixture(scope="session")
def provisioning_api() -> Iterator[Any]:
    """The stand-in provisioning API, for the whole session (workers are told its URL)."""
    from tests.provisioning_server import running_server

    with running_server() as server:
        yield server


@pytest.fixture
def provisioning(provisioning_api: Any) -> Any:
    """The stand-in provisioning API, answering 200 with no calls recorded."""
    provisioning_api.reset()
    yield provisioning_api
    provisioning_api.reset()


@pytest.fixture(scope="session")
def stripe_api_server() -> Iterator[Any]:
    """The stand-in for Stripe's API (dispute look-ups, the events list), for the whole session."""
    from tests.stripe_api_server import running_stripe_api

    with running_stripe_api(STRIPE_API_KEY) as server:
        yield server


@pytest.fixture
def stripe_api_stub(stripe_api_server: Any) -> Any:
    """Stripe's API stand-in with nothing configured and no requests recorded."""
    stripe_api_server.reset()
    yield stripe_api_server
    stripe_api_server.reset()


@pytest.fixture(scope="session")
def backend_env(
    tmp_path_factory: pytest.TempPathFactory, provisioning_api: Any, stripe_api_server: Any
) -> Iterator[dict[str, str]]:
    """The environment a Holdfast process gets in these tests (also given to worker processes)."""
    instance = tmp_path_factory.mktemp("instance")
    env = {
        "DYNAMICS_WEBHOOK_KEY": DYNAMICS_KEY,
        "DYNAMICS_WEBHOOK_HEADER": f"{DYNAMICS_HEADER[0]}: {DYNAMICS_HEADER[1]}",
        "DYNAMICS_STRIPE_CUSTOMER_FIELD": "new_stripecustomerid",
        "DYNAMICS_APP_USER_ID": "6b4a2f0e-8c1d-4e5f-9a7b-3c2d1e0f9a8b",
        "STRIPE_API_KEY": STRIPE_API_KEY,
        "STRIPE_API_BASE": stripe_api_server.url,
        "PROVISIONING_URL": provisioning_api.url,
        "PROVISIONING_MAX_ATTEMPTS": "3",
        "PROVISIONING_BACKOFF_SECONDS": "0.2",
        "PROVISIONING_READ_TIMEOUT": "1",
        "PROVISIONING_STUCK_SECONDS": "2",
        "HOLDFAST_INSTANCE_DIR": str(instance),
        "STRIPE_WEBHOOK_SECRET": f"{WEBHOOK_SECRET},{OLD_WEBHOOK_SECRET}",
        "ADMIN_API_TOKEN": ADMIN_TOKEN,
        "INBOX_SWEEP_AGE_SECONDS": "1",
        "LOG_LEVEL": "INFO",
        "OUTGOING_ALLOW_HTTP": "true",  # the subscriber stand-in serves http on 127.0.0.1
        "OUTGOING_BACKOFF_SECONDS": "0.5",
        "OUTGOING_TIMEOUT_SECONDS": "10",
    }
    if BACKEND == "postgres":
        with postgres_backend(env, f"holdfast_test_{uuid.uuid4().hex[:10]}", REDIS_URL) as ready:
            yield ready
    else:
        _migrate(env)
        yield env


@contextmanager
def postgres_backend(env: dict[str, str], name: str, redis_url: str) -> Iterator[dict[str, str]]:
    """``env`` with a fresh PostgreSQL database ``name`` built by the migrations, and Redis emptied.

    The database is dropped on the way out however the session ends: Redis down (the session
    is skipped, or fails in CI), a migration that fails, a test run cut short. Only a process
    killed outright leaves it behind.
    """
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as error:
            _unavailable("PostgreSQL", error)
        try:
            url = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql+psycopg", "postgres") + f"/{name}"
            ready = {**env, "DATABASE_URL": url, "REDIS_URL": redis_url}
            _migrate(ready)
            import redis

            try:
                redis.Redis.from_url(redis_url).flushdb()
            except Exception as error:
                _unavailable("Redis", error)
            yield ready
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _migrate(env: dict[str, str]) -> None:
    """Build the schema with the real migrations, as the release phase does."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["skip_logging"] = True
    config.attributes["url"] = load_settings(env).database_url
    command.upgrade(config, "head")


@pytest.fixture(scope="session")
def settings(backend_env: dict[str, str]) -> Settings:
    return load_settings(backend_env)


@pytest.fixture(scope="session")
def session_container(settings: Settings) -> Iterator[Container]:
    c = build(settings)
    yield c
    c.engine.dispose()


@pytest.fixture
def container(session_container: Container) -> Iterator[Container]:
    """The shared container, with every table emptied before the test."""
    with session_container.engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(delete(table))
    session_container.policy = build_policy_default()
    yield session_container


def build_policy_default() -> Any:
    from domain.policy import HoldPolicy

    return HoldPolicy()


@pytest.fixture
def app(container: Container) -> Any:
    application = create_app(container=container)
    application.testing = True
    # Failed sign-ins are counted per address; in Redis the counts outlive the app: each test starts with none.
    application.extensions["holdfast_signin_limiter"].reset()
    return application


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def sign(body: str | bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header made by stripe-python's own helper."""
    text_body = body.decode() if isinstance(body, bytes) else body
    return stripe.WebhookSignature.generate_signature_header(text_body, secret, timestamp=timestamp)


def stripe_fixture(name: str, **changes: Any) -> dict[str, Any]:
    """A recorded Stripe event with a fresh id; ``changes`` set keys of data.object."""
    event: dict[str, Any] = json.loads((FIXTURES / "stripe" / name).read_text())
    event["id"] = f"evt_{uuid.uuid4().hex[:24]}"
    event["data"]["object"].update(changes)
    return event


CURRENT_SHAPES = ROOT / "tests" / "fixtures" / "stripe"  # built by build.py there; see its SOURCES.md


def current_fixture(name: str, fresh_id: bool = True, **changes: Any) -> dict[str, Any]:
    """A current-shape Stripe event (or object) from tests/fixtures/stripe; ``changes`` set keys of its object."""
    document: dict[str, Any] = json.loads((CURRENT_SHAPES / name).read_text())
    if document.get("object") != "event":
        return {**document, **changes}
    if fresh_id:
        document["id"] = f"evt_{uuid.uuid4().hex[:24]}"
    document["data"]["object"].update(changes)
    return document


def finalized_invoice(customer: str, invoice_id: str, cents: int, **changes: Any) -> dict[str, Any]:
    """invoice.finalized of an open invoice, from a recorded invoice body (``changes``: more invoice fields)."""
    event = stripe_fixture(
        "invoice.payment_succeeded.stripe-ruby-mock.json",
        customer=customer,
        id=invoice_id,
        status="open",
        paid=False,
        amount_due=cents,
        amount_paid=0,
        amount_remaining=cents,
        **changes,
    )
    event["type"] = "invoice.finalized"
    return event


def post_stripe(client: Any, event: dict[str, Any] | str | bytes, **headers: str) -> Any:
    body = event if isinstance(event, str | bytes) else json.dumps(event)
    return client.post(
        "/webhooks/stripe",
        data=body,
        headers={"Stripe-Signature": sign(body), "Content-Type": "application/json", **headers},
    )


def wait_for(predicate: Any, timeout: float = 30.0, interval: float = 0.1, what: str = "condition") -> Any:
    """Poll until ``predicate()`` is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def process_pending(container: Container) -> list[str]:
    """Process every stored, unprocessed delivery with the same service call the worker task makes."""
    from adapters.db.tables import InboxEventRow

    with container.session_factory() as session:
        ids = list(
            session.execute(
                select(InboxEventRow.id).where(InboxEventRow.status == "received").order_by(InboxEventRow.id)
            ).scalars()
        )
    return [process_one(container, i) for i in ids]


def process_one(container: Container, inbox_id: int) -> str:
    """Process one stored delivery with the same service call the worker task makes."""
    from services.inbox import process_inbox_event

    return process_inbox_event(
        container.uow,
        inbox_id,
        container.handlers,
        container.context,
        container.clock(),
        container.transient_errors,
        completions=container.completions,
        may_call={"stripe", "crm"},  # one process here: it may call every peer itself
    )


def inbox_rows(container: Container) -> list[Any]:
    from adapters.db.tables import InboxEventRow

    with container.session_factory() as session:
        return list(session.execute(select(InboxEventRow).order_by(InboxEventRow.id)).scalars())


def post_dynamics(client: Any, body: dict[str, Any] | bytes, *, key: str | None = DYNAMICS_KEY, **headers: str) -> Any:
    """POST a body to the Dynamics webhook with the WebhookKey as ``?code=`` (``key=None``: without it)."""
    from tests.dynamics_bodies import encode

    data = body if isinstance(body, bytes) else encode(body)
    url = "/webhooks/dynamics" + (f"?code={key}" if key is not None else "")
    return client.post(url, data=data, headers={"Content-Type": "application/json", **headers})
