"""Every ``/api`` route refuses a caller without the admin token, and tells such a caller nothing.

Each refusal is checked three ways: the status code, the error shape
(``{"error": <code>, "message": <sentence>}``) and that no row of any table changed and no
task was queued (``refused``: tests/bad_input.py; the fixtures ``nothing_changes`` and
``seeded``: tests/integration/conftest.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.bad_input import FAILED_EVENT_ID, NothingChanges, call, refused

ROUTES = [
    pytest.param("PUT", "/api/accounts/globex", {"name": "Renamed"}, id="put-account"),
    pytest.param("GET", "/api/accounts/acme", None, id="get-account"),
    pytest.param("GET", "/api/accounts?on_hold=true&limit=1", None, id="list-accounts"),
    pytest.param("POST", "/api/accounts/globex/holds", {"reason": "manual"}, id="place-hold"),
    pytest.param("DELETE", "/api/accounts/acme/holds/manual", None, id="lift-hold"),
    pytest.param("GET", "/api/accounts/acme/timeline", None, id="timeline"),
    pytest.param("GET", "/api/events?status=failed", None, id="list-events"),
    pytest.param("POST", f"/api/events/stripe/{FAILED_EVENT_ID}/replay", None, id="replay"),
    pytest.param("POST", "/api/ops/sweep", None, id="sweep"),
]


BAD_CREDENTIALS = [
    pytest.param(None, id="no-header"),
    pytest.param("", id="empty-header"),
    pytest.param("Bearer", id="bearer-without-token"),
    pytest.param("Bearer ", id="bearer-empty-token"),
    pytest.param("Bearer not-the-admin-token-at-all", id="wrong-token"),
    pytest.param("Bearer {token}x", id="token-with-an-extra-character"),
    pytest.param("Bearer {short}", id="token-prefix"),
    pytest.param("Basic {token}", id="basic-scheme"),
    pytest.param("Token {token}", id="token-scheme"),
    pytest.param("{token}", id="token-without-scheme"),
    pytest.param("Bearer t\u00f6ken", id="non-ascii-token"),
]


@pytest.mark.parametrize(("method", "url", "body"), ROUTES)
@pytest.mark.parametrize("credential", BAD_CREDENTIALS)
def test_every_api_route_refuses_a_caller_without_the_admin_token(
    client: Any,
    admin: dict[str, str],
    seeded: None,
    nothing_changes: NothingChanges,
    method: str,
    url: str,
    body: Any,
    credential: str | None,
) -> None:
    token = admin["Authorization"].removeprefix("Bearer ")
    headers = {} if credential is None else {"Authorization": credential.format(token=token, short=token[:-1])}
    with nothing_changes():
        response = call(client, method, url, body, headers)
    assert "Authorization: Bearer" in refused(response, 401, "unauthorized")["message"]


def test_an_unauthorized_caller_learns_nothing_about_an_account(client: Any, seeded: None) -> None:
    known = client.get("/api/accounts/acme")
    unknown = client.get("/api/accounts/nobody")
    assert known.status_code == unknown.status_code == 401
    assert known.json == unknown.json
