"""One invoice event rendered in the shape of several Stripe API versions, from recorded bodies.

A webhook endpoint sends events in its own API version, while the Events API (reconciliation)
renders each in the version of the day it happened: one installation sees the same event in
several shapes. Each template is a real body of that version (shared/fixtures and the
current-shape fixtures); ``render`` sets the fields a step describes in that version's terms:

- ``2016-07-06`` (zulip): no ``status``, no ``amount_paid``/``amount_remaining``; ``paid``,
  ``forgiven`` and ``closed`` say where the invoice stands (it cannot say void or a partial
  payment, so steps that need those are not rendered in it);
- ``2018-11-08`` (zulip): ``status``, ``billing`` instead of ``collection_method``, ``paid``;
- ``2020-08-27`` (stripe-ruby-mock): ``status``, ``collection_method``, ``paid``;
- ``2025-04-30.basil`` (zulip): no ``paid``, no top-level ``subscription``;
- ``2026-10-28.endive`` (built from Stripe's openapi fixtures): ``customer_account``, ``parent``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from tests.conftest import CURRENT_SHAPES, FIXTURES

SHAPES = ("2016-07-06", "2018-11-08", "2020-08-27", "2025-04-30.basil", "2026-10-28.endive")
CURRENT = SHAPES[-1]


@dataclass(frozen=True)
class InvoiceStep:
    """One event of an invoice's life, whatever its shape."""

    event_id: str
    type: str
    created: int
    status: str  # open, paid, void, uncollectible
    attempt_count: int
    amount: int  # in cents
    paid: int  # in cents, so far

    def fits(self, shape: str) -> bool:
        """Whether this API version could say what the step says."""
        if shape != "2016-07-06":
            return True
        return self.status in ("open", "paid", "uncollectible") and self.paid in (0, self.amount)


@cache
def _template(shape: str) -> dict[str, Any]:
    if shape == "2016-07-06":
        return _load(FIXTURES / "stripe" / "invoice.payment_failed.zulip.json")
    if shape == "2018-11-08":
        return _load(FIXTURES / "stripe" / "invoice.marked_uncollectible.zulip.json")
    if shape == "2020-08-27":
        return _load(FIXTURES / "stripe" / "invoice.payment_failed.stripe-ruby-mock.json")
    if shape == "2025-04-30.basil":
        listing = _load(FIXTURES / "stripe" / "events_list.invoice.payment_succeeded+invoice.paid.zulip-basil.json")
        return dict(listing["data"][0])
    return _load(CURRENT_SHAPES / "invoice.payment_failed.attempt_1.json")


def _load(path: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def render(step: InvoiceStep, shape: str, customer: str, invoice_id: str) -> dict[str, Any]:
    """The step as an event body of API version ``shape``."""
    if not step.fits(shape):
        raise ValueError(f"{shape} cannot say {step}")
    event = copy.deepcopy(_template(shape))
    assert event["api_version"] == shape, (event["api_version"], shape)
    event.update(id=step.event_id, type=step.type, created=step.created)
    invoice = event["data"]["object"]
    invoice.update(id=invoice_id, customer=customer, currency="usd", attempt_count=step.attempt_count)
    invoice["amount_due"] = step.amount
    invoice["due_date"] = None
    if shape == "2016-07-06":
        invoice.update(
            paid=step.status == "paid",
            forgiven=step.status == "uncollectible",
            closed=step.status != "open",
        )
        return event
    invoice.update(status=step.status, amount_paid=step.paid, amount_remaining=step.amount - step.paid)
    if step.status == "paid":
        invoice.update(amount_paid=step.amount, amount_remaining=0)
    if isinstance(invoice.get("status_transitions"), dict):  # when it was paid: the step's time, as the event's
        invoice["status_transitions"]["paid_at"] = step.created if step.status == "paid" else None
    if "paid" in invoice or shape < "2025":
        invoice["paid"] = step.status == "paid"
    if "billing" in invoice:
        invoice["billing"] = "charge_automatically"
    else:
        invoice["collection_method"] = "charge_automatically"
    return event
