"""Signing in to the dashboard: the key that signs the session cookie, and failed sign-ins limited per address."""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

from flask import Flask

from bootstrap import Container
from tests.integration.test_dashboard import sign_in, token_of
from webhooks import create_app

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
