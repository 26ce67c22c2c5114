"""The dashboard through Flask's test client: signing in, CSRF, roles, actions on the timeline, headers, cookie."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import pytest

from domain.access import Role
from services import tokens as token_service
from tests.conftest import ADMIN_TOKEN, post_dynamics, process_pending
from tests.dynamics_bodies import salesorder
from tests.integration.test_provisioning import dispatch, order
from webhooks.dashboard import views

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: Any) -> str:
    match = CSRF.search(page.get_data(as_text=True))
    assert match, "the page has a form with a csrf_token"
    return match.group(1)


def sign_in(client: Any, token: str = ADMIN_TOKEN, **headers: str) -> Any:
    form = client.get("/login", headers=headers)
    return client.post("/login", data={"token": token, "csrf_token": csrf_of(form)}, headers=headers)


def token_of(container: Any, role: str, name: str = "pat") -> Any:
    """A personal token of that role, made by the service the API and the command line use."""
    return token_service.create_token(container.uow(), name, Role(role), container.clock())


def as_role(client: Any, container: Any, role: str, name: str = "pat") -> Any:
    """Sign in (again) with a new personal token of that role."""
    token = token_of(container, role, name)
    post_form(client, "/login", "/logout")
    assert sign_in(client, token.token).status_code == 303
    return token


def post_form(client: Any, page_path: str, action: str, **fields: str) -> Any:
    token = csrf_of(client.get(page_path))
    return client.post(action, data={"csrf_token": token, **fields})


@pytest.fixture
def acme(client: Any, admin: dict[str, str]) -> str:
    response = client.put("/api/accounts/acme", json={"name": "Acme", "currency": "usd"}, headers=admin)
    assert response.status_code == 201
    return "acme"


def test_signed_out_the_home_page_sends_you_to_sign_in(client: Any) -> None:
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_the_admin_token_signs_in_and_the_session_keeps_the_name_and_role_not_the_secret(client: Any) -> None:
    response = sign_in(client)
    assert response.status_code == 303 and response.headers["Location"] == "/"
    with client.session_transaction() as session:
        assert dict(session) | {"csrf_token": None, "_permanent": None} == {
            "name": "admin",
            "role": "admin",
            "token_id": None,
            "csrf_token": None,
            "_permanent": None,
        }
        assert ADMIN_TOKEN not in str(dict(session))
    assert "No account is on hold" in client.get("/").get_data(as_text=True)


def test_a_personal_token_signs_in_as_its_person_and_its_revocation_ends_the_session(
    client: Any, container: Any
) -> None:
    token = token_of(container, "finance", "fiona")
    assert sign_in(client, token.token).status_code == 303
    with client.session_transaction() as session:
        assert (session["name"], session["role"], session["token_id"]) == ("fiona", "finance", token.token_id)
        assert token.token not in str(dict(session))
    assert "fiona" in client.get("/").get_data(as_text=True)
    token_service.revoke_token(container.uow(), token.token_id, container.clock())
    assert client.get("/").status_code == 302
    assert sign_in(client, token.token).status_code == 401


def test_after_signing_in_you_go_back_to_the_page_you_asked_for_on_this_site_only(client: Any, acme: str) -> None:
    asked = client.get(f"/accounts/{acme}")
    assert asked.status_code == 302 and asked.headers["Location"] == f"/login?next=/accounts/{acme}"
    form = client.get(asked.headers["Location"])
    answer = client.post(asked.headers["Location"], data={"token": ADMIN_TOKEN, "csrf_token": csrf_of(form)})
    assert answer.headers["Location"] == f"/accounts/{acme}"
    for elsewhere in ("//evil.example/", "https://evil.example/", "/\\evil.example/"):
        form = client.get("/login")
        answer = client.post(
            "/login", query_string={"next": elsewhere}, data={"token": ADMIN_TOKEN, "csrf_token": csrf_of(form)}
        )
        assert answer.headers["Location"] == "/", elsewhere


def test_a_wrong_token_is_refused_with_a_sentence_and_logged_without_it(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        response = sign_in(client, token="not-the-token-" + uuid.uuid4().hex)
    assert response.status_code == 401
    assert "That token was not accepted" in response.get_data(as_text=True)
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "dashboard_sign_in_failed" in logged and "not-the-token-" not in logged
    assert client.get("/").status_code == 302


def test_a_form_without_its_csrf_token_is_refused_with_400(client: Any, acme: str) -> None:
    sign_in(client)
    assert client.post("/login", data={"token": ADMIN_TOKEN}).status_code == 400
    response = client.post(f"/accounts/{acme}/holds", data={"note": "no token"})
    assert response.status_code == 400 and "did not come from this site" in response.get_data(as_text=True)
    assert client.post(f"/accounts/{acme}/holds", data={"note": "forged", "csrf_token": "x"}).status_code == 400
    assert "No holds." in client.get(f"/accounts/{acme}").get_data(as_text=True)


def test_the_api_and_webhooks_need_no_csrf_token(client: Any, admin: dict[str, str], acme: str) -> None:
    response = client.post(f"/api/accounts/{acme}/holds", json={"reason": "manual", "note": "api"}, headers=admin)
    assert response.status_code == 201


def test_sign_out_ends_the_session(client: Any) -> None:
    sign_in(client)
    response = post_form(client, "/", "/logout")
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert client.get("/").status_code == 302


def test_finance_places_and_lifts_a_manual_hold_with_a_note_and_the_timeline_shows_both(
    client: Any, admin: dict[str, str], acme: str
) -> None:
    sign_in(client)
    page = f"/accounts/{acme}"
    response = post_form(client, page, f"/accounts/{acme}/holds", note="Cheque bounced, calling them")
    assert response.status_code == 303 and response.headers["Location"] == page
    state = client.get(f"/api/accounts/{acme}", headers=admin).json
    assert [(h["reason"], h["note"]) for h in state["holds"]] == [("manual", "Cheque bounced, calling them")]
    home = client.get("/").get_data(as_text=True)
    assert "Acme" in home and "Cheque bounced, calling them" in home

    assert post_form(client, page, f"/accounts/{acme}/holds/manual/lift", note="They paid by wire").status_code == 303
    assert client.get(f"/api/accounts/{acme}", headers=admin).json["holds"] == []
    html = client.get(page).get_data(as_text=True)
    assert "Manual hold lifted." in html
    assert "hold placed" in html and "hold released" in html and "They paid by wire" in html


def test_a_hold_without_a_note_is_400_with_a_sentence(client: Any, acme: str) -> None:
    sign_in(client)
    response = post_form(client, f"/accounts/{acme}", f"/accounts/{acme}/holds", note="  ")
    assert response.status_code == 400 and "A note is required" in response.get_data(as_text=True)


def test_bad_input_is_4xx_with_a_sentence(client: Any, acme: str) -> None:
    sign_in(client)
    page = f"/accounts/{acme}"
    assert post_form(client, page, "/accounts/nobody/holds", note="x").status_code == 404
    assert post_form(client, page, f"/accounts/{acme}/holds/manual/lift", note="x").status_code == 404
    bad_date = post_form(client, page, f"/accounts/{acme}/pause", until="soon", note="x")
    assert bad_date.status_code == 400 and "YYYY-MM-DD" in bad_date.get_data(as_text=True)
    past = post_form(client, page, f"/accounts/{acme}/pause", until="2001-01-01", note="x")
    assert past.status_code == 400 and "in the future" in past.get_data(as_text=True)
    assert post_form(client, page, f"/accounts/{acme}/pause/end", note="x").status_code == 404
    assert post_form(client, page, f"/accounts/{acme}/holds/dispute/lift", note="x").status_code == 404
    assert post_form(client, page, f"/accounts/{acme}/holds", note="x" * 2001).status_code == 400
    assert client.get("/?reason=nonsense").status_code == 400
    assert client.get("/accounts/nobody").status_code == 404
    assert client.get("/accounts/" + "x" * 101).status_code == 400
    assert post_form(client, page, "/requests/nothing/retry").status_code == 404
    assert post_form(client, page, "/events/replay", source="stripe", event_id="evt_none").status_code == 404
    assert post_form(client, page, "/events/replay").status_code == 400


def test_finance_pauses_enforcement_until_a_date_and_ends_it(client: Any, admin: dict[str, str], acme: str) -> None:
    sign_in(client)
    page = f"/accounts/{acme}"
    post_form(client, page, f"/accounts/{acme}/holds", note="Review")
    assert (
        post_form(client, page, f"/accounts/{acme}/pause", until="2099-01-31", note="Promised to pay").status_code
        == 303
    )
    state = client.get(f"/api/accounts/{acme}", headers=admin).json
    assert state["enforcement_paused_until"].startswith("2099-01-31T00:00:00") and state["blocks_changes"] is False
    assert "Enforcement is paused until" in client.get(page).get_data(as_text=True)
    assert post_form(client, page, f"/accounts/{acme}/pause/end").status_code == 400  # a note is required
    assert post_form(client, page, f"/accounts/{acme}/pause/end", note="Broke the promise").status_code == 303
    assert client.get(f"/api/accounts/{acme}", headers=admin).json["enforcement_paused_until"] is None
    kinds = [(e["kind"], e["actor"]) for e in client.get(f"/api/accounts/{acme}/timeline", headers=admin).json["items"]]
    assert kinds[:2] == [("enforcement_resumed", "user:admin"), ("enforcement_paused", "user:admin")]


def test_a_viewer_sees_the_pages_but_no_action_and_may_not_post_one(client: Any, container: Any, acme: str) -> None:
    sign_in(client)
    post_form(client, f"/accounts/{acme}", f"/accounts/{acme}/holds", note="Review")
    as_role(client, container, "viewer")
    html = client.get(f"/accounts/{acme}").get_data(as_text=True)
    assert "Review" in html
    for action in ("Lift manual hold", "Place manual hold", "Pause enforcement", "Retry", "Replay"):
        assert action not in html
    response = post_form(client, f"/accounts/{acme}", f"/accounts/{acme}/holds/manual/lift", note="sneaky")
    assert response.status_code == 403 and "may not do that" in response.get_data(as_text=True)


def test_a_failed_request_is_retried_by_ops_and_the_timeline_names_the_person(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str
) -> None:
    provisioning.answer(400)
    request_id = order(client, admin, acme, "SO-1").json["request_id"]
    assert dispatch(container) == {request_id: "failed"}
    sign_in(client)
    as_role(client, container, "ops", name="olu")
    listed = client.get("/requests/failed").get_data(as_text=True)
    assert "SO-1" in listed and "Retry" in listed
    provisioning.answer(201)
    response = post_form(client, "/requests/failed", f"/requests/{request_id}/retry")
    assert response.status_code == 303 and response.headers["Location"] == f"/accounts/{acme}"
    timeline = client.get(f"/api/accounts/{acme}/timeline", headers=admin).json["items"]
    assert timeline[0]["actor"] == "user:olu" and timeline[0]["cause"] == "api"
    assert "No request has failed" in client.get("/requests/failed").get_data(as_text=True)


def test_ops_replays_a_failed_event(client: Any, container: Any, queued: list[Any]) -> None:
    body = salesorder(str(uuid.uuid4()), None, state=1, message="Create", post_image=False)
    assert post_dynamics(client, body).status_code == 200
    assert process_pending(container) == ["failed"]
    sign_in(client)
    as_role(client, container, "finance", name="fiona")
    assert "Replay" not in client.get("/events/failed").get_data(as_text=True)
    as_role(client, container, "ops", name="olu")
    html = client.get("/events/failed").get_data(as_text=True)
    assert "salesorder" in html.lower() and "Replay" in html
    event_id = re.search(r'name="event_id" value="([^"]+)"', html)
    assert event_id
    response = post_form(client, "/events/failed", "/events/replay", source="dynamics", event_id=event_id.group(1))
    assert response.status_code == 303
    assert "queued again" in client.get("/events/failed").get_data(as_text=True)


def pages_of(client: Any, path: str, found: str) -> list[list[str]]:
    """Follow a list's "Next page" links from ``path``: on each page, what the pattern ``found`` finds."""
    seen: list[list[str]] = []
    while path:
        html = client.get(path).get_data(as_text=True)
        seen.append(re.findall(found, html))
        following = re.search(r'href="([^"]+)" rel="next">Next page', html)
        path = following.group(1).replace("&amp;", "&") if following else ""
    return seen


def test_failed_requests_and_failed_events_page_through_all_of_them(
    client: Any, admin: dict[str, str], container: Any, provisioning: Any, acme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "PAGE", 2)
    provisioning.answer(400)
    for n in range(5):
        order(client, admin, acme, f"SO-{n}")
    assert set(dispatch(container).values()) == {"failed"}
    for _ in range(3):
        body = salesorder(str(uuid.uuid4()), None, state=1, message="Create", post_image=False)
        assert post_dynamics(client, body).status_code == 200
    assert process_pending(container) == ["failed"] * 3
    sign_in(client)
    assert pages_of(client, "/requests/failed", r"<strong>(SO-\d)</strong>") == [
        ["SO-0", "SO-1"],
        ["SO-2", "SO-3"],
        ["SO-4"],
    ]
    events = pages_of(client, "/events/failed", r'name="event_id" value="([^"]+)"')
    assert [len(page) for page in events] == [2, 1] and len({e for page in events for e in page}) == 3
    last = client.get(
        "/events/failed?after=" + re.findall(r'after=([^"&]+)', client.get("/events/failed").get_data(as_text=True))[0]
    )
    assert "First page" in last.get_data(as_text=True)
    assert client.get("/events/failed?after=not-a-cursor").status_code == 400


def test_every_page_carries_the_security_headers(client: Any, acme: str) -> None:
    pages = ["/login"]
    sign_in(client)
    pages += ["/", f"/accounts/{acme}", "/requests/failed", "/events/failed", "/static/dashboard/dashboard.css"]
    for path in pages:
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, path
        assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "same-origin", path


def test_the_session_cookie_is_httponly_lax_with_a_lifetime_and_secure_behind_https(client: Any, app: Any) -> None:
    cookie = sign_in(client).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie
    assert "Secure" not in cookie
    secure_client = app.test_client()
    cookie = sign_in(secure_client, **{"X-Forwarded-Proto": "https"}).headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie
