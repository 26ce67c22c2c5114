"""Stripe webhook signatures, verified with stripe-python against every configured secret."""

from __future__ import annotations

import time
from collections.abc import Sequence

import stripe


class InvalidSignature(ValueError):
    """The delivery cannot be trusted; the message says why in a sentence."""


def _timestamp(header: str) -> int:
    """The ``t=`` of a header stripe-python has already parsed and verified."""
    for item in header.split(","):
        key, _, value = item.partition("=")
        if key.strip() == "t":
            return int(value)
    raise InvalidSignature("The Stripe-Signature header has no timestamp.")


def verify_stripe_signature(body: bytes, header: str | None, secrets: Sequence[str], tolerance: int) -> None:
    """Raise InvalidSignature unless ``header`` signs ``body`` with one of ``secrets`` recently."""
    if not header:
        raise InvalidSignature("The Stripe-Signature header is missing.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSignature("The body is not UTF-8 text, so it cannot carry a valid signature.") from None
    for secret in secrets:
        try:  # the signature alone, so that a stale timestamp can be told apart below
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance=None)
        except stripe.SignatureVerificationError:
            continue
        if _timestamp(header) < time.time() - tolerance:  # the same test stripe-python applies
            raise InvalidSignature(
                f"The Stripe-Signature timestamp is more than {tolerance} seconds old; "
                "a replayed or delayed delivery is refused."
            )
        return
    raise InvalidSignature("The Stripe-Signature header does not sign this body with any configured secret.")
