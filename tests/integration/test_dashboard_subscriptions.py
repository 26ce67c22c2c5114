"""The dashboard's subscriptions page and delivery log: admins see where events go and every attempt."""

from __future__ import annotations

import re
from typing import Any

import pytest

from services import outgoing
from tests.integration.test_dashboard import as_role, sign_in
from webhooks.dashboard import subscriptions as page

NOWHERE = "https://127.0.0.1:9/holdfast"  # the discard port: nothing answers, every attempt is an error


def subscribe(client: Any, admin: dict[str, str], url: str = NOWHERE) -> str:
    created = client.post("/api/subscriptions", json={"url": url, "events": ["account.hold_placed"]}, headers=admin)
    assert created.status_code == 201, created.json
    return str(created.json["subscription_id"])


def held(client: Any, admin: dict[str, str], account_id: str) -> None:
    assert client.put(f"/api/accounts/{account_id}", json={"name": account_id}, headers=admin).status_code == 201
    placed = client.post(f"/api/accounts/{account_id}/holds", json={"reason": "manual", "note": "x"}, headers=admin)
    assert placed.status_code == 201


def send(container: Any, subscription_id: str, account_id: str) -> None:
    """What the outgoing worker does with the lane's task, here in the test."""
    c = container
    outgoing.send_lane(c.uow, c.context, c.subscriber, c.dispatch_lock, (subscription_id, account_id), c.clock)


def test_an_admin_sees_subscriptions_and_every_attempt_never_the_secret(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    subscription = subscribe(client, admin)
    secret = client.get("/api/subscriptions", headers=admin).json["items"][0]
    assert "secret" not in secret
    held(client, admin, "acme")
    send(container, subscription, "acme")
    sign_in(client)
    listing = client.get("/subscriptions").get_data(as_text=True)
    assert subscription in listing and NOWHERE in listing and "account.hold_placed" in listing
    assert "whsec_" not in listing
    log = client.get(f"/subscriptions/{subscription}").get_data(as_text=True)
    attempts = client.get(f"/api/subscriptions/{subscription}/deliveries", headers=admin).json["items"]
    assert len(attempts) == 1 and attempts[0]["error"]
    assert attempts[0]["webhook_id"] in log and "account.hold_placed" in log and 'class="error-text"' in log
    assert client.get("/subscriptions/sub_unknown").status_code == 404


def test_the_delivery_log_pages_newest_first(
    client: Any, admin: dict[str, str], container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(page, "ATTEMPTS_PAGE", 2)
    subscription = subscribe(client, admin)
    for account in ("a1", "a2", "a3"):
        held(client, admin, account)
        send(container, subscription, account)
    expected = [
        a["webhook_id"]
        for a in client.get(f"/api/subscriptions/{subscription}/deliveries", headers=admin).json["items"]
    ]
    sign_in(client)
    seen, path = [], f"/subscriptions/{subscription}"
    while path:
        html = client.get(path).get_data(as_text=True)
        seen += re.findall(r"<code>(msg_[^<]+)</code>", html)
        following = re.search(r'href="([^"]+)" rel="next">Older attempts', html)
        path = following.group(1).replace("&amp;", "&") if following else ""
    assert seen == expected and len(seen) == 3


def test_only_admins_see_subscriptions(client: Any, admin: dict[str, str], container: Any) -> None:
    subscription = subscribe(client, admin)
    sign_in(client)
    assert ">Subscriptions</a>" in client.get("/").get_data(as_text=True)
    for role in ("finance", "ops", "viewer"):
        as_role(client, container, role, name=f"{role}-person")
        assert ">Subscriptions</a>" not in client.get("/").get_data(as_text=True)
        assert client.get("/subscriptions").status_code == 403
        assert client.get(f"/subscriptions/{subscription}").status_code == 403
