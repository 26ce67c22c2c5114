"""Holdfast accepts exactly the Stripe-Signature headers stripe-python accepts within the tolerance.

Headers are built from the pieces a sender (or an attacker) could put in them: ``t=`` values
(current, stale, future, negative, garbled, or written the odd ways Python's ``int`` still
reads), ``v1=`` signatures over one of those times with one of the secrets (or not, or not
ASCII), other schemes, unknown keys, keys in another case or with spaces, empty parts,
duplicates, in any order and number. The oracle is stripe-python's own
``WebhookSignature.verify_header(payload, header, secret, tolerance=300)``, tried with each
secret (rotation). The only difference allowed: a verified ``t`` more than the tolerance in the
future, which Holdfast refuses too. And nothing but InvalidSignature is ever raised.
"""

from __future__ import annotations

import time

import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.stripe_signature import InvalidSignature, verify_stripe_signature

SECRETS = ("whsec_current_secret", "whsec_rotated_out", "whsec_ünïcode")
BODY = '{"id": "evt_1", "object": "event", "type": "invoice.paid", "name": "Société Générale"}'
TOLERANCE = 300
# Offsets in seconds from now, kept clear of the tolerance's edges (the two checks read the clock
# a moment apart): fresh, stale, far stale, future within and beyond the tolerance.
OFFSETS = [0, -5, -290, -310, -3600, -(10**6), 5, 290, 310, 3600]
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def signature(t: int, secret: str) -> str:
    return stripe.WebhookSignature._compute_signature(f"{t}.{BODY}", secret)


def written_oddly(t: int, how: str) -> str:
    """``t`` as a sender might write it; Python's int() (stripe-python's parser) reads each back as ``t``."""
    return {
        "plain": str(t),
        "plus": f"+{t}",
        "spaces": f" {t}\t",
        "zeros": f"00{t}",
        "underscores": f"{str(t)[:4]}_{str(t)[4:]}" if len(str(t)) > 4 else str(t),
        "arabic_indic": str(t).translate(ARABIC_INDIC),
    }[how]


@st.composite
def headers(draw: st.DrawFn) -> str:
    now = int(time.time())
    times = [now + offset for offset in draw(st.lists(st.sampled_from(OFFSETS), min_size=1, max_size=3))]
    if draw(st.booleans()):
        times.append(-draw(st.sampled_from(times)))  # a negative t, possibly signed
    any_secret = st.sampled_from([*SECRETS, "whsec_someone_else"])
    pieces = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(
            st.sampled_from(["pair", "t", "odd_t", "v1", "v0", "other", "empty", "garbled_t", "garbled_v1", "dup"])
        )
        if kind == "pair":  # what Stripe sends: a t and a signature over it
            signed_at = draw(st.sampled_from(times))
            pieces += [f"t={signed_at}", f"v1={signature(signed_at, draw(any_secret))}"]
        elif kind == "t":
            key = draw(st.sampled_from(["t", " t", "t ", "T", "\tt"]))
            pieces.append(f"{key}={draw(st.sampled_from(times))}")
        elif kind == "odd_t":
            how = draw(st.sampled_from(["plain", "plus", "spaces", "zeros", "underscores", "arabic_indic"]))
            pieces.append(f"t={written_oddly(draw(st.sampled_from(times)), how)}")
        elif kind == "v1":
            signed_at = draw(st.sampled_from(times))
            key = draw(st.sampled_from(["v1", " v1", "V1", "v1 "]))
            tail = draw(st.sampled_from(["", "=", "=x", " "]))  # stripe-python splits on the first two '='
            pieces.append(f"{key}={signature(signed_at, draw(any_secret))}{tail}")
        elif kind == "v0":
            pieces.append(f"v0={signature(draw(st.sampled_from(times)), SECRETS[0])}")
        elif kind == "other":
            pieces.append(draw(st.sampled_from(["x=1", "t", "v1", "=", "t==1", "t=1=2", "v1==", "==", " "])))
        elif kind == "empty":
            pieces.append("")
        elif kind == "garbled_t":
            pieces.append(
                "t=" + draw(st.sampled_from(["abc", "", "-1", "1e3", " 12", "+5", "1_000", "٣", "1__0", "9" * 5000]))
            )
        elif kind == "garbled_v1":  # header bytes arrive decoded as Latin-1: anything up to U+00FF
            good = signature(draw(st.sampled_from(times)), SECRETS[0])
            text = draw(st.text(st.characters(max_codepoint=0xFF, exclude_characters=","), max_size=70))
            pieces.append("v1=" + draw(st.sampled_from([text, good.upper(), good[:-1] + "é", "é" + good[1:]])))
        else:  # the same piece twice
            pieces += [pieces[-1]] * 2 if pieces else ["t=", "t="]
    return ",".join(draw(st.permutations(pieces)))


def stripe_python_accepts(header: str) -> bool:
    for secret in SECRETS:
        try:
            stripe.WebhookSignature.verify_header(BODY, header, secret, tolerance=TOLERANCE)
        except (stripe.SignatureVerificationError, TypeError):  # TypeError: hmac.compare_digest on non-ASCII text
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


@settings(max_examples=1500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(headers())
def test_holdfast_accepts_exactly_what_stripe_python_accepts_within_the_tolerance(header: str) -> None:
    assert holdfast_accepts(header) is stripe_python_accepts(header), header


@given(st.text(st.characters(max_codepoint=0xFF), max_size=200))
def test_any_header_text_is_answered_with_invalid_signature_or_accepted(header: str) -> None:
    assert holdfast_accepts(header) is stripe_python_accepts(header), header


def test_the_reproduced_header_is_refused_by_both() -> None:
    now = int(time.time())
    old = now - 3600
    header = f"v1={signature(old, SECRETS[0])}, t={now},t={old}"
    assert stripe_python_accepts(header) is False and holdfast_accepts(header) is False


def test_an_oddly_written_t_is_verified_as_the_number_it_reads_as() -> None:
    """stripe-python signs ``"%d." % int(t)``: ``t=+<now>`` verifies a signature over ``<now>``."""
    now = int(time.time())
    for how in ("plus", "zeros", "arabic_indic"):
        header = f"t={written_oddly(now, how)},v1={signature(now, SECRETS[1])}"
        assert stripe_python_accepts(header) is True and holdfast_accepts(header) is True, header


def test_garbage_after_a_matching_signature_does_not_matter_but_before_it_does() -> None:
    """stripe-python compares in order and raises at the first non-ASCII signature: the same answers."""
    now = int(time.time())
    good = f"v1={signature(now, SECRETS[0])}"
    assert holdfast_accepts(f"t={now},{good},v1=é") is stripe_python_accepts(f"t={now},{good},v1=é") is True
    assert holdfast_accepts(f"t={now},v1=é,{good}") is stripe_python_accepts(f"t={now},v1=é,{good}") is False
