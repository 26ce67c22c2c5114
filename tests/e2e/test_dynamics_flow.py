"""Dynamics 365 end to end: real webhook, broker and worker process; local HTTPS servers play the
Entra ID authority and the Dataverse Web API; a local HTTP server plays the provisioning API."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from bootstrap import build
from bootstrap.settings import load_settings
from tests.conftest import inbox_rows, post_stripe, stripe_fixture, wait_for
from tests.dynamics_bodies import APP_USER, account_create, account_update, encode, salesorder
from tests.https_server import HttpsServer, Reply, local_ca, serve_tenant, token_reply
from tests.workers import start_worker
from webhooks import create_app

pytestmark = pytest.mark.e2e

TENANT = "0c9b8a7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"
CLIENT_ID = "1f2e3d4c-5b6a-4978-8a6b-5c4d3e2f1a0b"
ACCOUNT = "2b3c4d5e-6f70-4182-93a4-b5c6d7e8f901"
PATCH_PATH = re.compile(r"/api/data/v9\.2/accounts\(.+\)")


@pytest.fixture
def crm(container: Any) -> Iterator[HttpsServer]:
    with HttpsServer() as server:
        serve_tenant(server, TENANT, token_reply("token-for-holdfast"))
        server.route("PATCH", PATCH_PATH, Reply(204))
        yield server


@pytest.fixture
def world(backend_env: dict[str, str], crm: HttpsServer, container: Any, provisioning: Any) -> Iterator[dict[str, Any]]:
    """Web app and worker configured with the Web API (the tables were emptied by ``container``)."""
    env = {
        **backend_env,
        "DYNAMICS_API_URL": crm.url,
        "DYNAMICS_TENANT_ID": TENANT,
        "DYNAMICS_CLIENT_ID": CLIENT_ID,
        "DYNAMICS_CLIENT_SECRET": "crm-secret-" + uuid.uuid4().hex,
        "DYNAMICS_AUTHORITY_URL": crm.url,
        "REQUESTS_CA_BUNDLE": str(local_ca().ca_path),
    }
    web = build(load_settings(env))
    worker = start_worker(env)
    try:
        yield {"client": create_app(container=web).test_client(), "env": env, "worker": worker}
    finally:
        worker.stop()
        web.engine.dispose()


def send(client: Any, body: dict[str, Any]) -> None:
    key = load_settings_key(client)
    response = client.post(f"/webhooks/dynamics?code={key}", data=encode(body), content_type="application/json")
    assert response.status_code == 200, response.json


def load_settings_key(client: Any) -> str:
    return str(client.application.extensions["holdfast"].settings.dynamics_webhook_key)


def holds(client: Any, admin: dict[str, str]) -> list[str] | None:
    """The account's hold reasons, or None while the worker has not created the account yet."""
    response = client.get(f"/api/accounts/{ACCOUNT}", headers=admin)
    return None if response.status_code == 404 else [h["reason"] for h in response.json["holds"]]


def patches(crm: HttpsServer) -> list[Any]:
    return [r.json() for r in crm.received("PATCH", PATCH_PATH)]


def all_processed(container: Any) -> bool:
    return all(row.status != "received" for row in inbox_rows(container))


def test_story_one_a_credit_review_parks_a_crm_order_until_finance_lifts_it(
    world: dict[str, Any], admin: dict[str, str], container: Any, crm: HttpsServer, provisioning: Any
) -> None:
    client = world["client"]
    send(client, account_create(ACCOUNT, credit_on_hold=True))
    wait_for(lambda: holds(client, admin) == ["credit_review"], what="the credit review hold")
    order_id = str(uuid.uuid4())
    send(client, salesorder(order_id, ACCOUNT, state=1, amount="120.00"))
    wait_for(lambda: all_processed(container), what="the order to be processed")
    (request,) = client.get("/api/provisioning", headers=admin).json["items"]
    assert (request["state"], request["waiting_for"]) == ("awaiting", ["credit_review"])

    send(client, account_update(ACCOUNT, {"creditonhold": False}))
    wait_for(
        lambda: client.get(f"/api/provisioning/{request['request_id']}", headers=admin).json["state"] == "provisioned",
        what="the order to be provisioned",
    )
    assert [c.body["order_id"] for c in provisioning.calls] == [order_id]
    assert patches(crm) == []  # the CRM already showed what Holdfast holds: nothing to write


def test_the_crm_follows_a_non_payment_hold_ignores_its_echo_and_is_set_back_when_cleared(
    world: dict[str, Any], admin: dict[str, str], container: Any, crm: HttpsServer
) -> None:
    client = world["client"]
    send(client, account_create(ACCOUNT, stripe_customer="cus_e2e_crm"))
    wait_for(lambda: all_processed(container), what="the account")
    failed = stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_e2e_crm", id="in_crm")
    post_stripe(client, failed)
    wait_for(lambda: patches(crm) == [{"creditonhold": True}], what="creditonhold written to the CRM")
    (patch,) = crm.received("PATCH", PATCH_PATH)
    assert patch.path == f"/api/data/v9.2/accounts({ACCOUNT})"
    assert patch.header("Authorization") == "Bearer token-for-holdfast"
    assert patch.header("If-Match") == "*" and patch.header("OData-Version") == "4.0"
    assert patch.header("OData-MaxVersion") == "4.0" and patch.header("Content-Type").startswith("application/json")
    (token_request,) = crm.received("POST", f"/{TENANT}/oauth2/v2.0/token")
    assert token_request.form()["grant_type"] == "client_credentials"

    # Our own write comes back as an Update from our application user: not a finance decision.
    send(client, account_update(ACCOUNT, {"creditonhold": True}, user=APP_USER))
    wait_for(lambda: all_processed(container), what="the echo")
    assert holds(client, admin) == ["non_payment"]

    # Someone clears it in the CRM while the non-payment hold remains: set back, with the reason.
    send(client, account_update(ACCOUNT, {"creditonhold": False}))
    wait_for(lambda: len(patches(crm)) == 2, what="creditonhold set back")
    assert patches(crm)[-1] == {"creditonhold": True}
    timeline = client.get(f"/api/accounts/{ACCOUNT}/timeline", headers=admin).json["items"]
    restored = next(e for e in timeline if e["kind"] == "crm_hold_restored")
    assert restored["detail"]["reasons"] == ["non_payment"] and "non_payment" in restored["detail"]["why"]

    paid = stripe_fixture("invoice.paid.stripe-ruby-mock.json", customer="cus_e2e_crm", id="in_crm")
    paid["created"] = failed["created"] + 60
    post_stripe(client, paid)
    wait_for(lambda: patches(crm)[-1:] == [{"creditonhold": False}], what="creditonhold cleared in the CRM")
    assert holds(client, admin) == []
    # The token is cached in each worker process (two here): fewer token requests than writes.
    assert len(crm.received("POST", f"/{TENANT}/oauth2/v2.0/token")) <= 2 < len(patches(crm))


def test_a_429_from_the_web_api_is_waited_out(
    world: dict[str, Any], admin: dict[str, str], container: Any, crm: HttpsServer
) -> None:
    client = world["client"]
    crm.script("PATCH", PATCH_PATH, Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "1"}), Reply(204))
    send(client, account_create(ACCOUNT))
    wait_for(lambda: all_processed(container), what="the account")
    client.post(f"/api/accounts/{ACCOUNT}/holds", json={"reason": "manual", "note": "fraud check"}, headers=admin)
    wait_for(lambda: len(crm.received("PATCH", PATCH_PATH)) == 2, timeout=30, what="the retried PATCH")
    first, second = crm.received("PATCH", PATCH_PATH)
    assert second.at - first.at >= 1.0
    wait_for(
        lambda: (
            "crm_updated"
            in [e["kind"] for e in client.get(f"/api/accounts/{ACCOUNT}/timeline", headers=admin).json["items"]]
        ),
        what="the write recorded",
    )
