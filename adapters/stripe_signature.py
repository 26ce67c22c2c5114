"""Stripe webhook signatures, verified with stripe-python against every configured secret.

The header is read once, the way stripe-python reads it: the ``t`` whose signature was
verified is the ``t`` whose age is checked (and a ``t`` further in the future than the
tolerance is refused too, which stripe-python does not check).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import stripe


class InvalidSignature(ValueError):
    """The delivery cannot be trusted; the message says why in a sentence."""


def signed_timestamp(header: str) -> int:
    """The ``t=`` that stripe-python signs and checks (its own parser: the first ``t``, as it reads it)."""
    timestamp, _ = stripe.WebhookSignature._get_timestamp_and_signatures(
        header, stripe.WebhookSignature.EXPECTED_SCHEME
    )
    return int(timestamp)


def verify_stripe_signature(body: bytes, header: str | None, secrets: Sequence[str], tolerance: int) -> None:
    """Raise InvalidSignature unless ``header`` signs ``body`` with one of ``secrets`` within ``tolerance`` seconds."""
    if not header:
        raise InvalidSignature("The Stripe-Signature header is missing.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSignature("The body is not UTF-8 text, so it cannot carry a valid signature.") from None
    for secret in secrets:
        try:  # the signature alone, so that a stale or future timestamp can be told apart below
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance=None)
        except stripe.SignatureVerificationError:
            continue
        signed_at = signed_timestamp(header)  # parsed fine: stripe-python just verified with it
        now = time.time()
        if signed_at < now - tolerance:  # the same test stripe-python applies, on the same t
            raise InvalidSignature(
                f"The Stripe-Signature timestamp is more than {tolerance} seconds old; "
                "a replayed or delayed delivery is refused."
            )
        if signed_at > now + tolerance:
            raise InvalidSignature(
                f"The Stripe-Signature timestamp is more than {tolerance} seconds in the future; "
                "check the sender's clock."
            )
        return
    raise InvalidSignature("The Stripe-Signature header does not sign this body with any configured secret.")
