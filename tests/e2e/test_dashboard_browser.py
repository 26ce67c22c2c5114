"""The dashboard in a real browser (Debian's chromium, driven by playwright) against the app served by a real
werkzeug server thread, with a real worker processing a real signed Stripe event.

Screenshots of the main pages go to tests/artifacts/screenshots/ (git-ignored), at a laptop's width and at 375 px.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from domain.access import Role
from services import tokens as token_service
from tests.conftest import ROOT, post_dynamics, post_stripe, stripe_fixture, wait_for
from tests.dynamics_bodies import salesorder
from tests.local_scripts import served as serve_app

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"
LAPTOP = {"width": 1280, "height": 860}
PHONE = {"width": 375, "height": 812}

try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # pragma: no cover - only without the dev requirements
    sync_playwright = None  # type: ignore[assignment]


def _browser_missing() -> str | None:
    if sync_playwright is None:
        return "the playwright package is not installed (pip install -r requirements-dev.txt)"
    if not Path(CHROMIUM).exists():
        return "chromium is not installed (apt-get install -y chromium)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _browser_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"The browser test must run in CI, but {missing}.")
        pytest.skip(f"Skipped outside CI: {missing}.")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def served(app: Any) -> Iterator[str]:
    """The app on a real HTTP server in a thread, at a free port."""
    with serve_app(app) as url:
        yield url


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def request_state(client: Any, admin: dict[str, str], request_id: str) -> str:
    return str(client.get(f"/api/provisioning/{request_id}", headers=admin).json["state"])


def failed_events(client: Any, admin: dict[str, str]) -> list[Any]:
    return list(client.get("/api/events", query_string={"status": "failed"}, headers=admin).json["items"])


def account_state(client: Any, admin: dict[str, str], account_id: str) -> dict[str, Any]:
    response = client.get(f"/api/accounts/{account_id}", headers=admin)
    assert response.status_code == 200, response.json
    return dict(response.json)


def test_finance_finds_an_account_held_for_non_payment_places_a_manual_hold_and_lifts_it(
    client: Any, admin: dict[str, str], container: Any, worker: Any, provisioning: Any, served: str, browser: Any
) -> None:
    fiona = token_service.create_token(container.uow(), "fiona", Role.FINANCE, container.clock())
    account = {"name": "Acme Cloud Ltd", "stripe_customer_id": "cus_dash1", "credit_limit": "5000", "currency": "usd"}
    assert client.put("/api/accounts/acme", json=account, headers=admin).status_code == 201
    other = {"name": "Borealis Hosting", "currency": "usd", "credit_limit": "1200.00"}
    assert client.put("/api/accounts/borealis", json=other, headers=admin).status_code == 201
    review = {"reason": "manual", "note": "Credit check requested by the CFO"}
    assert client.post("/api/accounts/borealis/holds", json=review, headers=admin).status_code == 201
    failed = stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_dash1", id="in_dash1")
    assert post_stripe(client, failed).json == {"received": True, "duplicate": False}
    wait_for(lambda: account_state(client, admin, "acme")["on_hold"], what="the worker to hold the account")
    # Something for the failed pages: an order the provisioning API refuses, a CRM order without its customer.
    provisioning.answer(400)
    cobalt = {"name": "Cobalt Networks", "currency": "usd"}
    assert client.put("/api/accounts/cobalt", json=cobalt, headers=admin).status_code == 201
    order = {"order_id": "SO-1042", "amount": "340.00", "description": "12 x Microsoft 365 E3"}
    request_id = client.post("/api/accounts/cobalt/orders", json=order, headers=admin).json["request_id"]
    wait_for(lambda: request_state(client, admin, request_id) == "failed", what="the refused order to fail")
    assert post_dynamics(client, salesorder(str(uuid.uuid4()), None, state=1, message="Create", post_image=False))
    wait_for(lambda: failed_events(client, admin), what="the CRM order without its customer to fail")

    page = browser.new_page(viewport=LAPTOP)
    errors: list[str] = []  # a script or style the Content-Security-Policy blocked would show here
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(served + "/")
    expect(page).to_have_url(served + "/login?next=/")
    shot(page, "01-sign-in")
    page.fill("#token", fiona.token)
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("On hold")
    row = page.locator("#held tr", has_text="Acme Cloud Ltd")
    expect(row).to_contain_text("non payment")
    expect(row).to_contain_text(f"stripe:{failed['id']}")
    expect(
        page.locator("#held tr", has_text="Borealis Hosting").locator("td[data-label='Cause or person']")
    ).to_have_text("admin")  # a hold placed by a person names the person, not the cause "api"
    assert page.evaluate("typeof htmx") == "object", "htmx is served by the app and allowed by the policy"
    shot(page, "02-on-hold")
    page.select_option("#reason", "non_payment")
    page.click("button:has-text('Filter')")
    expect(page.locator("#held")).not_to_contain_text("Borealis Hosting")
    expect(page.locator("#held")).to_contain_text("Acme Cloud Ltd")

    page.click("a:has-text('Acme Cloud Ltd')")
    expect(page.locator("h1")).to_have_text("Acme Cloud Ltd")
    expect(page.locator("#holds")).to_contain_text("non payment")
    page.fill("#hold-note", "Customer asked us to stop new services until their audit ends")
    page.click("button:has-text('Place manual hold')")
    expect(page.locator(".notice")).to_have_text("Manual hold placed.")
    expect(page.locator("#holds .holds")).to_contain_text("manual")
    first = page.locator("#timeline li").first
    expect(first).to_contain_text("hold placed")
    expect(first).to_contain_text("Customer asked us to stop new services until their audit ends")
    expect(first).to_contain_text("user:fiona")
    shot(page, "03-account-manual-hold")
    assert [h["reason"] for h in account_state(client, admin, "acme")["holds"]] == ["manual", "non_payment"]

    page.fill("#lift-note", "Audit finished; the non-payment hold stays until the invoice is paid")
    page.click("button:has-text('Lift manual hold')")
    expect(page.locator(".notice")).to_have_text("Manual hold lifted.")
    expect(page.locator("#timeline li").first).to_contain_text("hold released")
    expect(page.locator("#holds .holds")).not_to_contain_text("manual")
    assert [h["reason"] for h in account_state(client, admin, "acme")["holds"]] == ["non_payment"]
    shot(page, "04-account-lifted")

    page.click("nav a:has-text('Failed requests')")
    expect(page.locator("h1")).to_have_text("Failed requests")
    expect(page.locator("#failed-requests")).to_contain_text("SO-1042")
    shot(page, "05-failed-requests")
    page.click("nav a:has-text('Failed events')")
    expect(page.locator("h1")).to_have_text("Failed events")
    expect(page.locator("#failed-events")).to_contain_text("salesorder")
    expect(page.locator("#failed-events")).not_to_contain_text("Replay")  # finance does not replay; ops does
    shot(page, "06-failed-events")
    provisioning.answer(201)
    page.click("nav a:has-text('Failed requests')")
    page.click("#failed-requests button:has-text('Retry')")
    expect(page.locator(".notice")).to_contain_text("Request " + request_id + " sent again")
    # The worker may already be sending it, so her entry need not be the newest one.
    retried = page.locator("#timeline li", has_text="user:fiona").filter(has_text=request_id)
    expect(retried.first).to_contain_text("SO-1042")
    wait_for(lambda: request_state(client, admin, request_id) == "provisioned", what="the retried order to go")

    page.set_viewport_size(PHONE)
    page.goto(served + "/")
    expect(page.locator("#held")).to_contain_text("Acme Cloud Ltd")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "no sideways scrolling at 375 px"
    shot(page, "07-on-hold-375px")
    page.goto(served + "/accounts/acme")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "no sideways scrolling at 375 px"
    shot(page, "08-account-375px")

    page.click("button:has-text('Sign out')")
    expect(page).to_have_url(served + "/login")
    page.close()
    assert errors == []
