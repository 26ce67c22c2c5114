"""Who may call what: every /api route against every role, a missing token and a revoked one.

The table below names the right each route needs; the routes come from the app's own url_map,
so a route added without a row here (or without ``@requires``) fails the first test.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from domain.access import MAX_TOKEN_NAME_LENGTH, RIGHTS, Right, Role
from tests.bad_input import FAILED_EVENT_ID, refused
from tests.conftest import ADMIN_TOKEN as ADMIN
from webhooks.api.auth import required_right

RIGHT_OF_ROUTE: dict[tuple[str, str], Right] = {
    ("PUT", "/api/accounts/<account_id>"): Right.MANAGE_ACCOUNTS,
    ("GET", "/api/accounts/<account_id>"): Right.READ,
    ("GET", "/api/accounts"): Right.READ,
    ("POST", "/api/accounts/<account_id>/holds"): Right.MANAGE_HOLDS,
    ("DELETE", "/api/accounts/<account_id>/holds/manual"): Right.MANAGE_HOLDS,
    ("DELETE", "/api/accounts/<account_id>/holds/dispute"): Right.MANAGE_HOLDS,
    ("GET", "/api/accounts/<account_id>/timeline"): Right.READ,
    ("PUT", "/api/accounts/<account_id>/enforcement-pause"): Right.MANAGE_HOLDS,
    ("DELETE", "/api/accounts/<account_id>/enforcement-pause"): Right.MANAGE_HOLDS,
    ("POST", "/api/accounts/<account_id>/orders"): Right.SUBMIT_ORDERS,
    ("POST", "/api/accounts/<account_id>/provisioning/retry"): Right.RETRY_REQUESTS,
    ("GET", "/api/provisioning"): Right.READ,
    ("GET", "/api/provisioning/<request_id>"): Right.READ,
    ("POST", "/api/provisioning/<request_id>/retry"): Right.RETRY_REQUESTS,
    ("POST", "/api/provisioning/<request_id>/cancel"): Right.SUBMIT_ORDERS,
    ("GET", "/api/events"): Right.READ,
    ("POST", "/api/events/<source>/<id_with_slashes:event_id>/replay"): Right.OPERATE,
    ("POST", "/api/ops/sweep"): Right.OPERATE,
    ("POST", "/api/ops/tick"): Right.OPERATE,
    ("POST", "/api/ops/reconcile"): Right.OPERATE,
    ("GET", "/api/policy"): Right.READ,
    ("POST", "/api/policy/what-if"): Right.WHAT_IF,
    ("POST", "/api/tokens"): Right.ADMINISTER,
    ("GET", "/api/tokens"): Right.ADMINISTER,
    ("DELETE", "/api/tokens/<token_id>"): Right.ADMINISTER,
    ("POST", "/api/subscriptions"): Right.ADMINISTER,
    ("GET", "/api/subscriptions"): Right.ADMINISTER,
    ("DELETE", "/api/subscriptions/<subscription_id>"): Right.ADMINISTER,
    ("GET", "/api/subscriptions/<subscription_id>/deliveries"): Right.ADMINISTER,
}

SAMPLE_VALUES = {
    "account_id": "acme",
    "request_id": "no-such-request",
    "source": "stripe",
    "event_id": FAILED_EVENT_ID,
    "token_id": "no-such-token",
    "subscription_id": "no-such-subscription",
}


def api_routes(app: Any) -> dict[tuple[str, str], Any]:
    """Every (method, rule) under /api the app serves, with its view."""
    return {
        (method, rule.rule): app.view_functions[rule.endpoint]
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/") or rule.rule == "/api"
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    }


def concrete(rule: str) -> str:
    return re.sub(r"<(?:[a-z_]+:)?([a-z_]+)>", lambda m: SAMPLE_VALUES[m.group(1)], rule)


def make_token(client: Any, admin: dict[str, str], name: str, role: str) -> dict[str, Any]:
    response = client.post("/api/tokens", json={"name": name, "role": role}, headers=admin)
    assert response.status_code == 201, response.get_data(as_text=True)
    created: dict[str, Any] = response.json
    return created


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_every_api_route_is_in_the_table_and_declares_the_right_the_table_says(app: Any) -> None:
    routes = api_routes(app)
    assert set(routes) == set(RIGHT_OF_ROUTE), "a route is missing from RIGHT_OF_ROUTE, or the table names a route gone"
    declared = {route: required_right(view) for route, view in routes.items()}
    assert declared == RIGHT_OF_ROUTE


@pytest.fixture
def principals(client: Any, admin: dict[str, str], seeded: None) -> dict[str, dict[str, str]]:
    """Headers for each role's token, the admin token, no token and a revoked token."""
    headers: dict[str, dict[str, str]] = {"admin-env": admin, "none": {}}
    for role in Role:
        headers[str(role)] = bearer(make_token(client, admin, f"{role} person", str(role))["token"])
    revoked = make_token(client, admin, "gone", "admin")
    assert client.delete(f"/api/tokens/{revoked['token_id']}", headers=admin).status_code == 200
    headers["revoked"] = bearer(revoked["token"])
    return headers


@pytest.mark.parametrize(("method", "rule"), sorted(RIGHT_OF_ROUTE))
def test_each_role_gets_exactly_the_routes_its_rights_allow(
    client: Any, principals: dict[str, dict[str, str]], method: str, rule: str
) -> None:
    right = RIGHT_OF_ROUTE[(method, rule)]
    url = concrete(rule)
    for who, headers in principals.items():
        response = client.open(url, method=method, headers=headers)
        status = response.status_code
        if who in ("none", "revoked"):
            expected = "401"
            ok = status == 401 and response.json["error"] == "unauthorized"
        elif who == "admin-env" or right in RIGHTS[Role(who)]:
            expected = "anything but 401, 403 or 5xx"
            ok = status not in (401, 403) and status < 500
        else:
            expected = "403"
            ok = status == 403 and response.json["error"] == "forbidden"
            message = response.json["message"]
            ok = ok and who in message and str(right) in message
        assert ok, f"{who} {method} {url}: expected {expected}, got {status} {response.get_data(as_text=True)[:300]}"


def test_a_route_that_declares_no_right_is_refused_to_everyone(container: Any, admin: dict[str, str]) -> None:
    from webhooks import create_app
    from webhooks.api import Blueprint

    app = create_app(container=container)
    undeclared = Blueprint("undeclared", __name__, url_prefix="/api/undeclared")

    @undeclared.route("", methods=["GET"])
    def forgotten() -> dict[str, bool]:
        return {"reached": True}

    app.register_blueprint(undeclared)
    response = app.test_client().get("/api/undeclared", headers=admin)
    assert "declares no right" in refused(response, 403, "forbidden")["message"]


def test_a_revoked_token_is_refused_at_once(client: Any, admin: dict[str, str]) -> None:
    created = make_token(client, admin, "maria", "viewer")
    assert client.get("/api/accounts", headers=bearer(created["token"])).status_code == 200
    revoked = client.delete(f"/api/tokens/{created['token_id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json["revoked_at"] is not None
    refused(client.get("/api/accounts", headers=bearer(created["token"])), 401, "unauthorized")


def test_a_created_token_is_shown_once_and_never_listed_with_its_secret(client: Any, admin: dict[str, str]) -> None:
    created = make_token(client, admin, "finance bot", "finance")
    assert set(created) == {"token_id", "name", "role", "token", "created_at"}
    assert created["token"].startswith("hf_") and len(created["token"]) > 40
    listed = client.get("/api/tokens", headers=admin)
    assert listed.status_code == 200
    assert created["token"] not in listed.get_data(as_text=True)
    (item,) = listed.json["items"]
    assert item == {k: created[k] for k in ("token_id", "name", "role", "created_at")} | {"revoked_at": None}


def test_tokens_are_listed_page_by_page(client: Any, admin: dict[str, str]) -> None:
    names = [f"bot {i}" for i in range(5)]
    for name in names:
        make_token(client, admin, name, "viewer")
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/tokens", query_string=query, headers=admin).json
        seen += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == names


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("x" * 101, id="101-characters"),
        pytest.param("tab\there", id="control-character"),
        pytest.param("admin", id="reserved"),
        pytest.param("Admin", id="reserved-in-another-case"),
    ],
)
def test_a_token_name_must_be_printable_short_and_not_admin(client: Any, admin: dict[str, str], name: str) -> None:
    response = client.post("/api/tokens", json={"name": name, "role": "viewer"}, headers=admin)
    refused(response, 400, "validation_error")
    assert client.get("/api/tokens", headers=admin).json["items"] == []


def test_an_unknown_role_is_refused_with_the_roles_there_are(client: Any, admin: dict[str, str]) -> None:
    response = client.post("/api/tokens", json={"name": "bob", "role": "root"}, headers=admin)
    assert "viewer, sales, finance, ops, admin" in refused(response, 400, "validation_error")["message"]


def test_a_name_is_unique_among_tokens_not_revoked(client: Any, admin: dict[str, str]) -> None:
    first = make_token(client, admin, "maria", "viewer")
    refused(client.post("/api/tokens", json={"name": "maria", "role": "sales"}, headers=admin), 409, "token_name_taken")
    client.delete(f"/api/tokens/{first['token_id']}", headers=admin)
    assert make_token(client, admin, "maria", "sales")["role"] == "sales"


def test_revoking_an_unknown_token_is_not_found(client: Any, admin: dict[str, str]) -> None:
    refused(client.delete("/api/tokens/no-such-token", headers=admin), 404, "token_not_found")


def test_the_secret_never_appears_in_the_logs(
    client: Any, admin: dict[str, str], caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    created = make_token(client, admin, "ops bot", "ops")
    secret = created["token"]
    assert client.get("/api/events", headers=bearer(secret)).status_code == 200
    assert client.post("/api/tokens", json={"name": "x", "role": "viewer"}, headers=bearer(secret)).status_code == 403
    client.delete(f"/api/tokens/{created['token_id']}", headers=admin)
    assert client.get("/api/events", headers=bearer(secret)).status_code == 401
    assert client.get("/api/events", headers=bearer(secret + "x")).status_code == 401
    logged = "\n".join(repr(record.__dict__) for record in caplog.records) + capsys.readouterr().out
    assert "api_token_refused" in logged and "api_token_created" in logged
    assert secret not in logged and secret[3:20] not in logged
    assert admin["Authorization"].removeprefix("Bearer ") not in logged


NOTED_CHANGES = [
    pytest.param("POST", "/api/accounts/globex/holds", {"reason": "manual"}, id="place-hold"),
    pytest.param("DELETE", "/api/accounts/acme/holds/manual", None, id="lift-hold"),
    pytest.param("DELETE", "/api/accounts/acme/holds/dispute", None, id="lift-dispute"),
    pytest.param("PUT", "/api/accounts/acme/enforcement-pause", {"until": "2999-01-01T00:00:00Z"}, id="pause"),
    pytest.param("DELETE", "/api/accounts/acme/enforcement-pause", None, id="end-pause"),
]


@pytest.mark.parametrize(("method", "url", "body"), NOTED_CHANGES)
@pytest.mark.parametrize("note", [None, "", "   "], ids=["missing", "empty", "blank"])
def test_changes_to_holds_and_pauses_need_a_note(
    client: Any, admin: dict[str, str], seeded: None, method: str, url: str, body: Any, note: str | None
) -> None:
    if note is not None:
        body = {**(body or {}), "note": note}
    response = client.open(url, method=method, json=body, headers=admin)
    assert "note" in refused(response, 400, "validation_error")["message"]


def timeline(client: Any, admin: dict[str, str], account_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get(f"/api/accounts/{account_id}/timeline", headers=admin).json["items"]
    return items


def test_the_timeline_names_the_token_and_keeps_the_note(client: Any, admin: dict[str, str]) -> None:
    finance = bearer(make_token(client, admin, "maria", "finance")["token"])
    assert client.put("/api/accounts/acme", json={"name": "Acme"}, headers=finance).status_code == 201
    assert client.post("/api/accounts/acme/holds", json={"reason": "manual", "note": "fraud"}, headers=finance)
    pause = {"until": "2999-01-01T00:00:00Z", "note": "key customer"}
    assert client.put("/api/accounts/acme/enforcement-pause", json=pause, headers=finance).status_code == 200
    ended = client.delete("/api/accounts/acme/enforcement-pause", json={"note": "over"}, headers=finance)
    assert ended.status_code == 200
    lifted = client.delete("/api/accounts/acme/holds/manual", query_string={"note": "cleared"}, headers=finance)
    assert lifted.status_code == 200
    entries = timeline(client, admin, "acme")
    notes = {e["kind"]: e["detail"].get("note") for e in entries}
    assert notes["hold_placed"] == "fraud" and notes["enforcement_paused"] == "key customer"
    assert notes["enforcement_resumed"] == "over" and notes["hold_released"] == "cleared"
    assert {e["actor"] for e in entries} == {"user:maria"}
    placed = client.get("/api/accounts/acme", headers=admin).json
    assert placed["holds"] == []


def test_a_token_with_the_longest_name_acts_and_the_timeline_names_it_in_full(
    client: Any, admin: dict[str, str]
) -> None:
    """A name of 100 characters is allowed, so ``user:<name>`` (105) must fit wherever an actor is kept."""
    name = "finance-" + "x" * (MAX_TOKEN_NAME_LENGTH - len("finance-"))
    finance = bearer(make_token(client, admin, name, "finance")["token"])
    assert client.put("/api/accounts/acme", json={"name": "Acme"}, headers=finance).status_code == 201
    placed = client.post("/api/accounts/acme/holds", json={"reason": "manual", "note": "fraud"}, headers=finance)
    assert placed.status_code == 201, placed.json
    assert placed.json["holds"][0]["placed_by"] == f"user:{name}"
    assert {e["actor"] for e in timeline(client, admin, "acme")} == {f"user:{name}"}


def test_a_hold_placed_through_the_api_keeps_the_cause_api_and_names_the_person(
    client: Any, admin: dict[str, str]
) -> None:
    sales = bearer(make_token(client, admin, "sam", "sales")["token"])
    client.put("/api/accounts/acme", json={"name": "Acme"}, headers=admin)
    client.post("/api/accounts/acme/holds", json={"reason": "manual", "note": "fraud"}, headers=admin)
    (hold,) = client.get("/api/accounts/acme", headers=sales).json["holds"]
    assert (hold["cause"], hold["note"]) == ("api", "fraud")
    order = client.post("/api/accounts/acme/orders", json={"order_id": "SO-1", "amount": "10.00"}, headers=sales)
    assert order.status_code == 409  # a manual hold blocks changes
    placed = [e for e in timeline(client, admin, "acme") if e["kind"] == "hold_placed"]
    assert [(e["actor"], e["cause"]) for e in placed] == [("user:admin", "api")]


def test_the_timeline_names_the_crm_user_behind_a_dynamics_change(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    import uuid

    from tests.conftest import post_dynamics, process_pending
    from tests.dynamics_bodies import account_create

    account_id, user = str(uuid.uuid4()), str(uuid.uuid4()).upper()
    assert post_dynamics(client, account_create(account_id, credit_on_hold=True, user=user)).status_code == 200
    process_pending(container)
    actors = {e["actor"] for e in timeline(client, admin, account_id)}
    assert actors == {f"dynamics:{user.lower()}"}


@pytest.mark.parametrize(
    "raw",
    ['["2026-01-01T00:00:00", "x"]', '["not a time", "x"]', '{"a": 1}', "[1, 2]", '"x"'],
    ids=["naive-time", "not-a-time", "object", "numbers", "string"],
)
def test_a_token_cursor_this_api_did_not_give_out_is_refused(client: Any, admin: dict[str, str], raw: str) -> None:
    from webhooks.api.pagination import encode_cursor

    response = client.get("/api/tokens", query_string={"cursor": encode_cursor(raw)}, headers=admin)
    refused(response, 400, "invalid_cursor")


def test_tokens_made_at_once_with_one_name_give_one_token(container: Any) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from domain.access import TokenNameTaken
    from services.tokens import create_token, list_tokens

    at_once = threading.Barrier(4)

    def make(_: int) -> str:
        at_once.wait()
        try:
            create_token(container.uow(), "twin", Role.VIEWER, container.clock())
        except TokenNameTaken:
            return "taken"
        return "made"

    with ThreadPoolExecutor(4) as pool:
        results = sorted(pool.map(make, range(4)))
    assert results == ["made", "taken", "taken", "taken"]
    assert [t.name for t in list_tokens(container.uow())] == ["twin"]


def test_a_token_is_active_until_it_is_revoked_and_an_unknown_one_never_is(container: Any) -> None:
    """The check a dashboard session makes on every page (services.tokens.is_active)."""
    from services.tokens import create_token, is_active, revoke_token

    made = create_token(container.uow(), "ines", Role.FINANCE, container.clock())
    assert is_active(container.uow(), made.token_id)
    revoke_token(container.uow(), made.token_id, container.clock())
    assert not is_active(container.uow(), made.token_id)
    assert not is_active(container.uow(), "00000000-0000-0000-0000-000000000000")


def test_the_services_refuse_a_change_to_holds_or_pauses_without_a_note(container: Any, client: Any) -> None:
    """The dashboard and the API call the same services: the rule lives there, not only in the routes."""
    from datetime import timedelta

    from services import accounts

    ctx, now = container.context, container.clock()
    client.put("/api/accounts/acme", json={"name": "Acme"}, headers={"Authorization": f"Bearer {ADMIN}"})
    calls = [
        lambda: accounts.place_manual_hold(container.uow(), "acme", " ", ctx, now, actor="user:x"),
        lambda: accounts.lift_manual_hold(container.uow(), "acme", None, ctx, now, actor="user:x"),
        lambda: accounts.pause_enforcement(
            container.uow(), "acme", now + timedelta(days=1), "", ctx, now, actor="user:x"
        ),
        lambda: accounts.end_enforcement_pause(container.uow(), "acme", ctx, now, actor="user:x", note=None),
        lambda: accounts.lift_dispute_hold(container.uow(), "acme", ctx, now, actor="user:x", note="\t"),
    ]
    for call in calls:
        with pytest.raises(accounts.NoteRequired):
            call()
    assert [e["kind"] for e in timeline(client, {"Authorization": f"Bearer {ADMIN}"}, "acme")] == ["account_created"]


@pytest.mark.parametrize("role", [str(role) for role in Role])
def test_any_roles_token_may_scrape_metrics_and_a_revoked_one_may_not(
    client: Any, admin: dict[str, str], role: str
) -> None:
    created = make_token(client, admin, "prometheus", role)
    assert client.get("/metrics", headers=bearer(created["token"])).status_code == 200
    client.delete(f"/api/tokens/{created['token_id']}", headers=admin)
    refused(client.get("/metrics", headers=bearer(created["token"])), 401, "unauthorized")
