"""Signing in to the dashboard: the key that signs the session cookie, and failed sign-ins limited per address."""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import uuid
from typing import Any

import pytest
import redis
from flask import Flask
from limits.storage import MemoryStorage, RedisStorage

from bootstrap import Container
from bootstrap.settings import EMBEDDED_BROKER_URL
from tests.conftest import ADMIN_TOKEN, BACKEND, REDIS_URL, _unavailable
from tests.integration.test_dashboard import csrf_of, sign_in, token_of
from webhooks import create_app
from webhooks.dashboard.signin_limit import EXTENSION

COOKIE = "holdfast_session"


def app_with(container: Container, **settings: Any) -> Flask:
    """The web app of this container with some settings changed (SESSION_SECRET, ADMIN_API_TOKEN...)."""
    changed = dataclasses.replace(container, settings=dataclasses.replace(container.settings, **settings))
    app = create_app(container=changed)
    app.testing = True
    return app


def signed_in_cookie(app: Flask, token: str) -> str:
    client = app.test_client()
    assert sign_in(client, token).status_code == 303
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def home_with_cookie(app: Flask, value: str) -> Any:
    client = app.test_client()
    client.set_cookie(COOKIE, value)
    return client.get("/")


def test_a_session_signed_under_one_session_secret_is_not_accepted_under_another(container: Container) -> None:
    person = token_of(container, "finance", "noor")
    first = app_with(container, session_secret="first-" + secrets.token_urlsafe(24))
    cookie = signed_in_cookie(first, person.token)
    assert home_with_cookie(first, cookie).status_code == 200
    other = app_with(container, session_secret="other-" + secrets.token_urlsafe(24))
    refused = home_with_cookie(other, cookie)
    assert refused.status_code == 302 and refused.headers["Location"].startswith("/login")


def test_with_a_session_secret_rotating_the_admin_token_signs_no_one_out(container: Container) -> None:
    person = token_of(container, "finance", "noor")
    secret = "session-" + secrets.token_urlsafe(24)
    before = app_with(container, session_secret=secret, admin_api_token="admin-before-" + secrets.token_hex(12))
    cookie = signed_in_cookie(before, person.token)
    after = app_with(container, session_secret=secret, admin_api_token="admin-after-" + secrets.token_hex(12))
    page = home_with_cookie(after, cookie)
    assert page.status_code == 200 and "noor" in page.get_data(as_text=True)


def test_without_a_session_secret_the_key_comes_from_the_admin_token_and_rotating_it_signs_everyone_out(
    container: Container,
) -> None:
    person = token_of(container, "finance", "noor")
    before = app_with(container, session_secret=None, admin_api_token="admin-before-" + secrets.token_hex(12))
    cookie = signed_in_cookie(before, person.token)
    same = app_with(
        container, session_secret=None, admin_api_token=before.extensions["holdfast"].settings.admin_api_token
    )
    assert (
        home_with_cookie(same, cookie).status_code == 200
    )  # the same derived key: old deployments keep their sessions
    after = app_with(container, session_secret=None, admin_api_token="admin-after-" + secrets.token_hex(12))
    assert home_with_cookie(after, cookie).status_code == 302


# -- failed sign-ins limited per address -----------------------------------------------------


def an_address() -> str:
    """A client address of this test only (Redis keeps counts across apps for a minute)."""
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


def attempt(client: Any, address: str, token: str | None = None, **headers: str) -> Any:
    """A sign-in from ``address`` (REMOTE_ADDR, as the connection gives it): a wrong token unless one is given."""
    environ = {"REMOTE_ADDR": address}
    form = client.get("/login", environ_base=environ, headers=headers)
    secret = token if token is not None else "not-the-token-" + uuid.uuid4().hex
    return client.post(
        "/login", data={"token": secret, "csrf_token": csrf_of(form)}, environ_base=environ, headers=headers
    )


def redis_url_for_tests() -> str:
    """The test Redis: always on the PostgreSQL + Redis backend and in CI, else when HOLDFAST_TEST_REDIS is set."""
    if BACKEND != "postgres" and "HOLDFAST_TEST_REDIS" not in os.environ and os.environ.get("CI") != "true":
        pytest.skip("Redis-backed: set HOLDFAST_TEST_REDIS (CI runs it)")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as error:
        _unavailable("Redis", error)
    return REDIS_URL


@pytest.fixture(params=["memory", "redis"])
def limited(request: pytest.FixtureRequest, container: Container) -> Flask:
    """The web app with its sign-in counts in this process's memory (no Redis) or in Redis."""
    if request.param == "memory":
        app = app_with(container, broker_url=EMBEDDED_BROKER_URL)
        assert isinstance(app.extensions[EXTENSION].storage, MemoryStorage)
    else:
        app = app_with(container, broker_url=redis_url_for_tests())
        assert isinstance(app.extensions[EXTENSION].storage, RedisStorage)
        app.extensions[EXTENSION].reset()
    return app


def test_the_eleventh_failed_sign_in_in_a_minute_from_one_address_is_429_and_another_address_gets_through(
    limited: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    client, address = limited.test_client(), an_address()
    assert [attempt(client, address).status_code for _ in range(10)] == [401] * 10
    with caplog.at_level(logging.WARNING):
        refused = attempt(client, address)
    assert refused.status_code == 429
    page = refused.get_data(as_text=True)
    assert "Too many sign-in attempts from this address; try again in a minute." in page
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    logged = caplog.text
    assert "dashboard_sign_in_rate_limited" in logged and address in logged and "not-the-token-" not in logged
    assert attempt(client, address, ADMIN_TOKEN).status_code == 429  # even the right token, until the minute is up
    assert attempt(limited.test_client(), an_address(), ADMIN_TOKEN).status_code == 303
    assert attempt(limited.test_client(), an_address()).status_code == 401


def test_signing_in_does_not_count_towards_the_limit(limited: Flask) -> None:
    client, address = limited.test_client(), an_address()
    assert [attempt(client, address, ADMIN_TOKEN).status_code for _ in range(15)] == [303] * 15
    assert [attempt(client, address).status_code for _ in range(10)] == [401] * 10
    assert attempt(client, address).status_code == 429


def test_only_posting_the_sign_in_form_is_limited_not_its_page_the_api_or_the_webhooks(
    limited: Flask, admin: dict[str, str]
) -> None:
    client, address = limited.test_client(), an_address()
    for _ in range(10):
        attempt(client, address)
    assert attempt(client, address).status_code == 429
    environ = {"REMOTE_ADDR": address}
    assert client.get("/login", environ_base=environ).status_code == 200
    for _ in range(12):
        assert client.get("/api/accounts", headers=admin, environ_base=environ).status_code == 200
        assert client.get("/api/accounts", environ_base=environ).status_code == 401
        stripe = client.post("/webhooks/stripe", data=b"{}", environ_base=environ, headers={"Stripe-Signature": "x"})
        assert stripe.status_code == 400
    assert client.get("/healthz", environ_base=environ).status_code == 200


def test_the_address_is_the_connections_and_a_forged_x_forwarded_for_gets_no_fresh_count(container: Container) -> None:
    client, address = app_with(container).test_client(), an_address()
    statuses = [attempt(client, address, **{"X-Forwarded-For": an_address()}).status_code for _ in range(11)]
    assert statuses == [401] * 10 + [429]


def test_behind_one_trusted_proxy_the_address_is_the_one_it_wrote_in_x_forwarded_for(container: Container) -> None:
    client, router, person = app_with(container, forwarded_for_hops=1).test_client(), an_address(), an_address()
    forged_then_real = {"X-Forwarded-For": f"{an_address()}, {person}"}  # the router appends what it saw
    assert [attempt(client, router, **forged_then_real).status_code for _ in range(11)] == [401] * 10 + [429]
    assert attempt(client, router, ADMIN_TOKEN, **{"X-Forwarded-For": an_address()}).status_code == 303


def test_the_limit_is_configurable(container: Container) -> None:
    client, address = app_with(container, signin_rate_limit="2 per hour").test_client(), an_address()
    assert [attempt(client, address).status_code for _ in range(3)] == [401, 401, 429]
    assert "try again later" in attempt(client, address).get_data(as_text=True)


def test_with_redis_unreachable_sign_ins_go_on_and_are_counted_in_memory(container: Container) -> None:
    client, address = app_with(container, broker_url="redis://127.0.0.1:1/0").test_client(), an_address()
    assert attempt(client, address, ADMIN_TOKEN).status_code == 303
    assert [attempt(client, address).status_code for _ in range(11)] == [401] * 10 + [429]
