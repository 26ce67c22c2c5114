"""Holdfast accepts exactly the Stripe-Signature headers stripe-python accepts within the tolerance.

Headers are built from the pieces a sender (or an attacker) could put in them: ``t=`` values
(current, stale, future, garbled), ``v1=`` signatures over one of those times with one of the
secrets (or not), other schemes, unknown keys, spaces, empty parts, in any order and number.
The only difference allowed: a verified ``t`` more than the tolerance in the future, which
Holdfast refuses too. And nothing but InvalidSignature is ever raised.
"""

from __future__ import annotations

import time

import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.stripe_signature import InvalidSignature, verify_stripe_signature

SECRETS = ("whsec_current_secret", "whsec_rotated_out")
BODY = '{"id": "evt_1", "object": "event", "type": "invoice.paid"}'
TOLERANCE = 300
# Offsets in seconds from now, kept clear of the tolerance's edges (the two checks read the clock
# a moment apart): fresh, stale, far stale, future within and beyond the tolerance.
OFFSETS = [0, -5, -290, -310, -3600, -(10**6), 5, 290, 310, 3600]


def signature(t: int, secret: str) -> str:
    return stripe.WebhookSignature._compute_signature(f"{t}.{BODY}", secret)


@st.composite
def headers(draw: st.DrawFn) -> str:
    now = int(time.time())
    times = [now + offset for offset in draw(st.lists(st.sampled_from(OFFSETS), min_size=1, max_size=3))]
    pieces = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["pair", "t", "v1", "v0", "other", "empty", "garbled_t"]))
        if kind == "pair":  # what Stripe sends: a t and a signature over it
            signed_at = draw(st.sampled_from(times))
            pieces += [f"t={signed_at}", f"v1={signature(signed_at, draw(st.sampled_from(SECRETS)))}"]
        elif kind == "t":
            value = str(draw(st.sampled_from(times)))
            key = draw(st.sampled_from(["t", " t", "t "]))
            pieces.append(f"{key}={value}")
        elif kind == "v1":
            signed_at = draw(st.sampled_from(times))
            secret = draw(st.sampled_from([*SECRETS, "whsec_someone_else"]))
            key = draw(st.sampled_from(["v1", " v1"]))
            pieces.append(f"{key}={signature(signed_at, secret)}")
        elif kind == "v0":
            pieces.append(f"v0={signature(draw(st.sampled_from(times)), SECRETS[0])}")
        elif kind == "other":
            pieces.append(draw(st.sampled_from(["x=1", "t", "v1", "=", "t==1", "t=1=2"])))
        elif kind == "empty":
            pieces.append("")
        else:
            pieces.append("t=" + draw(st.sampled_from(["abc", "", "-1", "1e3", " 12", "+5", "1_000", "٣"])))
    return ",".join(draw(st.permutations(pieces)))


def stripe_python_accepts(header: str) -> bool:
    for secret in SECRETS:
        try:
            stripe.WebhookSignature.verify_header(BODY, header, secret, tolerance=TOLERANCE)
        except stripe.SignatureVerificationError:
            continue
        signed_at, _ = stripe.WebhookSignature._get_timestamp_and_signatures(header, "v1")
        return bool(signed_at <= time.time() + TOLERANCE)  # Holdfast's one addition: not from the future
    return False


def holdfast_accepts(header: str) -> bool:
    try:
        verify_stripe_signature(BODY.encode(), header, SECRETS, TOLERANCE)
    except InvalidSignature:
        return False
    return True  # any other exception fails the test


@settings(max_examples=600, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(headers())
def test_holdfast_accepts_exactly_what_stripe_python_accepts_within_the_tolerance(header: str) -> None:
    assert holdfast_accepts(header) is stripe_python_accepts(header), header


def test_the_reproduced_header_is_refused_by_both() -> None:
    now = int(time.time())
    old = now - 3600
    header = f"v1={signature(old, SECRETS[0])}, t={now},t={old}"
    assert stripe_python_accepts(header) is False and holdfast_accepts(header) is False
