"""Good standing through the real path: Stripe's events stored and processed, the account and its timeline read back.

Three invoices paid on time earn one more failed attempt under ``[non_payment.good_standing]``;
the account shows its ``standing``, the timeline says once why it was not held, the second failed
attempt holds it, and a what-if without the section shows the hold it would place.
"""

from __future__ import annotations

import time
from typing import Any

from adapters.policy_file import policy_from_document
from domain.policy import HoldPolicy
from tests.conftest import post_stripe, process_pending
from tests.integration.test_dashboard import sign_in
from tests.stripe_shapes import CURRENT, InvoiceStep, render

DAY = 86_400
GOOD_STANDING = {
    "non_payment": {"good_standing": {"invoices_paid_on_time": 3, "months": 12, "extra_failed_attempts": 1}}
}


def deliver(client: Any, container: Any, step: InvoiceStep, invoice_id: str) -> None:
    assert post_stripe(client, render(step, CURRENT, "cus_acme", invoice_id)).status_code == 200
    assert process_pending(container) == ["processed"]


def account(client: Any, admin: dict[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = client.get("/api/accounts/acme", headers=admin).json
    return found


def test_three_invoices_paid_on_time_earn_one_more_failed_attempt_and_the_account_says_so(
    client: Any, admin: dict[str, str], container: Any, queued: list[Any]
) -> None:
    container.policy = policy_from_document(GOOD_STANDING, HoldPolicy())
    body = {"name": "Acme", "stripe_customer_id": "cus_acme"}
    assert client.put("/api/accounts/acme", json=body, headers=admin).status_code == 201
    now = int(time.time())
    for n in range(3):
        paid = InvoiceStep(f"evt_paid_{n}", "invoice.paid", now - (90 - 30 * n) * DAY, "paid", 1, 5000, 5000)
        deliver(client, container, paid, f"in_paid_{n}")
    standing = {
        "invoices_paid_on_time": 3,
        "invoices_paid_late_or_failed": 0,
        "window_months": 12,
        "good_standing": True,
    }
    assert account(client, admin)["standing"] == standing

    deliver(
        client, container, InvoiceStep("evt_fail_1", "invoice.payment_failed", now - 60, "open", 1, 2000, 0), "in_4"
    )
    assert account(client, admin)["holds"] == []
    timeline = client.get("/api/accounts/acme/timeline", headers=admin).json["items"]
    deferred = [e for e in timeline if e["kind"] == "hold_deferred"]
    assert len(deferred) == 1
    assert deferred[0]["detail"]["note"] == (
        "not held: 3 invoices paid on time in 12 months; holds at the 2nd failed attempt"
    )
    finance = client.post("/api/policy/what-if", json={"non_payment": {"good_standing": False}}, headers=admin).json
    assert [(c["account_id"], c["placed"]) for c in finance["changes"]] == [("acme", ["non_payment"])]

    deliver(
        client, container, InvoiceStep("evt_fail_2", "invoice.payment_failed", now - 30, "open", 2, 2000, 0), "in_4"
    )
    assert [h["reason"] for h in account(client, admin)["holds"]] == ["non_payment"]
    sign_in(client)
    page = client.get("/accounts/acme").get_data(as_text=True)
    assert "3 paid on time, 0 late or failed in 12 months" in page and "good standing" in page


def test_a_late_payment_counts_against_the_standing_and_the_default_policy_shows_counts_only(
    client: Any, admin: dict[str, str], container: Any, queued: list[Any]
) -> None:
    body = {"name": "Acme", "stripe_customer_id": "cus_acme"}
    assert client.put("/api/accounts/acme", json=body, headers=admin).status_code == 201
    now = int(time.time())
    deliver(
        client, container, InvoiceStep("evt_f", "invoice.payment_failed", now - 9 * DAY, "open", 1, 5000, 0), "in_1"
    )
    deliver(client, container, InvoiceStep("evt_p", "invoice.paid", now - 8 * DAY, "paid", 2, 5000, 5000), "in_1")
    assert account(client, admin)["standing"] == {
        "invoices_paid_on_time": 0,
        "invoices_paid_late_or_failed": 1,
        "window_months": None,
        "good_standing": False,
    }
