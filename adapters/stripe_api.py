"""Stripe's API through stripe-python: look-ups for disputes, the events list for reconciliation.

The API base is configurable (``STRIPE_API_BASE``) so tests run against a local server.
Failures are sorted into transient (retry later) and permanent (the event fails, replayable).
"""

from __future__ import annotations

from typing import Any

import stripe


class StripeLookupFailed(Exception):
    """A look-up that failed for good (not found, refused); the message is a sentence."""


class StripeUnavailable(Exception):
    """Stripe could not be reached or asked us to slow down: try again later."""


def _transient(error: stripe.StripeError) -> bool:
    status = getattr(error, "http_status", None)
    return isinstance(error, stripe.APIConnectionError | stripe.RateLimitError) or (status is not None and status >= 500)


class StripeApi:
    def __init__(self, api_key: str, api_base: str | None = None, *, max_network_retries: int = 2) -> None:
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=max_network_retries,
        )

    def _call(self, what: str, call: Any) -> Any:
        try:
            return call()
        except stripe.StripeError as error:
            if _transient(error):
                raise StripeUnavailable(f"Stripe did not answer the {what}: {type(error).__name__}.") from None
            status = getattr(error, "http_status", None)
            raise StripeLookupFailed(f"Stripe refused the {what} (HTTP {status}): {error.user_message or error}") from None

    def customer_of_dispute(self, dispute: dict[str, Any]) -> str:
        """The customer a dispute is about, found through its charge or payment intent."""
        charge = dispute.get("charge")
        charge_id = charge.get("id") if isinstance(charge, dict) else charge
        if isinstance(charge, dict) and isinstance(charge.get("customer"), str):
            return str(charge["customer"])
        if isinstance(charge_id, str) and charge_id:
            found = self._call(f"look-up of charge {charge_id}", lambda: self.client.v1.charges.retrieve(charge_id))
            customer = found.get("customer")
            if isinstance(customer, str) and customer:
                return customer
        intent = dispute.get("payment_intent")
        intent_id = intent.get("id") if isinstance(intent, dict) else intent
        if isinstance(intent_id, str) and intent_id:
            found = self._call(
                f"look-up of payment intent {intent_id}", lambda: self.client.v1.payment_intents.retrieve(intent_id)
            )
            customer = found.get("customer")
            if isinstance(customer, str) and customer:
                return customer
        raise StripeLookupFailed(
            f"The dispute {dispute.get('id')} leads to no customer through its charge or payment intent."
        )
