"""Stripe webhook signatures, verified with stripe-python against every configured secret."""

from __future__ import annotations

from collections.abc import Sequence

import stripe


class InvalidSignature(ValueError):
    """The delivery cannot be trusted; the message says why in a sentence."""


def verify_stripe_signature(body: bytes, header: str | None, secrets: Sequence[str], tolerance: int) -> None:
    """Raise InvalidSignature unless ``header`` signs ``body`` with one of ``secrets`` recently."""
    if not header:
        raise InvalidSignature("The Stripe-Signature header is missing.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSignature("The body is not UTF-8 text, so it cannot carry a valid signature.") from None
    for secret in secrets:
        try:  # first the signature alone, so a stale timestamp can be told apart
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance=None)
        except stripe.SignatureVerificationError:
            continue
        try:
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance=tolerance)
        except stripe.SignatureVerificationError:
            raise InvalidSignature(
                f"The Stripe-Signature timestamp is more than {tolerance} seconds old; "
                "a replayed or delayed delivery is refused."
            ) from None
        return
    raise InvalidSignature("The Stripe-Signature header does not sign this body with any configured secret.")
