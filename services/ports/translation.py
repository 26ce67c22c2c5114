"""Ports of translation: what a stored delivery says, in the domain's terms, whatever its source.

An adapter per source reads a stored delivery (completing it through the source's API where
the body lacks something: a CRM row, a dispute's customer) and says what it means; the
source's service (``services/stripe_processing.py``, ``services/crm_processing.py``) applies
that. ``None`` from a translator: nothing Holdfast reads (stored and ignored).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.crm import CrmAccountChange, CrmOrderChange
from domain.disputes import DisputeSeen
from domain.invoices import InvoiceFact
from services.ports.inbox import InboxEvent


class IncompleteCrmEvent(ValueError):
    """The CRM body lacks what Holdfast needs; the message says what to register."""


CrmChange = CrmAccountChange | CrmOrderChange


class CrmTranslator(Protocol):
    def translate(self, delivery: InboxEvent) -> CrmChange | None:
        """The change a stored Dynamics delivery carries (raises IncompleteCrmEvent and the like)."""


@dataclass(frozen=True)
class CustomerDetails:
    """A Stripe customer, and the CRM account its metadata names (if any)."""

    customer_id: str
    crm_account_id: str | None
    name: str | None
    currency: str | None


@dataclass(frozen=True)
class StripeChange:
    """What one stored Stripe event says: about an invoice, a dispute or a customer."""

    event_id: str
    event_created: datetime
    invoice: InvoiceFact | None = None
    dispute: DisputeSeen | None = None
    dispute_customer: str | None = None  # whose dispute it is, as Stripe's API said (kept with the delivery)
    customer: CustomerDetails | None = None
    unknown_status: str | None = None  # an invoice status Stripe added since: counted as open

    @property
    def cause(self) -> str:
        return f"stripe:{self.event_id}"


class StripeTranslator(Protocol):
    def translate(self, delivery: InboxEvent) -> StripeChange | None:
        """What a stored Stripe event says (raises the parser's MalformedEvent when it cannot be read)."""
