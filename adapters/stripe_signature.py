"""Stripe webhook signatures: the header read once, exactly as stripe-python reads it.

The reference is stripe-python 16.1's ``WebhookSignature`` (``_get_timestamp_and_signatures``
and ``verify_header``); ``tests/unit/test_stripe_signature_property.py`` checks against it that
Holdfast accepts exactly the headers it accepts. Read once, the ``t`` whose signature was
verified is the ``t`` whose age is checked, and a ``t`` more than the tolerance in the future is
refused too (stripe-python does not check that). Every way a header can be wrong is an
InvalidSignature with a sentence, never another exception: the header's own text is never
repeated in it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import takewhile

SCHEME = "v1"
# What stripe-python strips before refusing a blank secret (an empty HMAC key would let anyone sign).
_BLANK = " \t\r\n\f\v"


class InvalidSignature(ValueError):
    """The delivery cannot be trusted; the message says why in a sentence."""


@dataclass(frozen=True)
class SignatureHeader:
    """A Stripe-Signature header as stripe-python reads it."""

    timestamp: int  # the first ``t``: the one that is signed, and whose age is checked
    signatures: tuple[str, ...]  # every ``v1`` value, in order


def parse_signature_header(header: str) -> SignatureHeader:
    """Read ``header`` as stripe-python does; raise InvalidSignature with a sentence when it cannot be read."""
    # stripe-python: [i.split("=", 2) for i in header.split(",")]. Keys are compared as written
    # (" t" is not "t"), and a value ends at a second "=" ("v1=abc=x" carries "abc").
    items = [item.split("=", 2) for item in header.split(",")]
    if any(len(item) == 1 and item[0] in ("t", SCHEME) for item in items):  # stripe-python: an IndexError
        raise InvalidSignature("The Stripe-Signature header has a t or v1 without a value.")
    times = [item[1] for item in items if item[0] == "t"]
    if not times:
        raise InvalidSignature("The Stripe-Signature header has no timestamp (t=).")
    try:
        # The first t, read by int() as stripe-python reads it: " 12", "+12", "1_2" are all numbers,
        # and more than 4,300 digits is a ValueError.
        timestamp = int(times[0])
    except ValueError:
        raise InvalidSignature(
            "The Stripe-Signature timestamp (its first t=) is not a whole number of seconds."
        ) from None
    signatures = tuple(item[1] for item in items if item[0] == SCHEME)
    if not signatures:
        raise InvalidSignature(f"The Stripe-Signature header has no {SCHEME} signature.")
    return SignatureHeader(timestamp, signatures)


def verify_stripe_signature(body: bytes, header: str | None, secrets: Sequence[str], tolerance: int) -> None:
    """Raise InvalidSignature unless ``header`` signs ``body`` with one of ``secrets`` within ``tolerance`` seconds."""
    if not header:
        raise InvalidSignature("The Stripe-Signature header is missing.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSignature("The body is not UTF-8 text, so it cannot carry a valid signature.") from None
    parsed = parse_signature_header(header)
    # stripe-python compares the signatures in order with hmac.compare_digest, which raises on
    # text that is not ASCII: none from the first such signature on is ever compared.
    signatures = tuple(takewhile(str.isascii, parsed.signatures))
    if not signatures:
        raise InvalidSignature(f"The first {SCHEME} signature of the Stripe-Signature header is not ASCII text.")
    signed = f"{parsed.timestamp}.{text}".encode()  # the number as read ("%d"), not as written
    if not any(_signs(secret, signed, signatures) for secret in secrets if secret.strip(_BLANK)):
        raise InvalidSignature("The Stripe-Signature header does not sign this body with any configured secret.")
    now = time.time()
    if parsed.timestamp < now - tolerance:  # the test stripe-python applies, on the t just verified
        raise InvalidSignature(
            f"The Stripe-Signature timestamp is more than {tolerance} seconds old; "
            "a replayed or delayed delivery is refused."
        )
    if parsed.timestamp > now + tolerance:
        raise InvalidSignature(
            f"The Stripe-Signature timestamp is more than {tolerance} seconds in the future; check the sender's clock."
        )


def _signs(secret: str, signed: bytes, signatures: Sequence[str]) -> bool:
    """Whether one of ``signatures`` is the HMAC-SHA256 of ``signed`` under ``secret`` (constant-time compare)."""
    expected = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)
