"""The 409 ``account_on_hold`` sales reads: why the account is held and who lifts it, a sentence per reason.

A manual hold is finance's decision: the refusal must not send sales to tell the customer to pay
or settle anything; each reason has its own sentence.
"""

from __future__ import annotations

import pytest

from domain.holds import HoldReason
from services.orders import WHAT_THE_HOLD_MEANS, AccountOnHold


def refusal(*reasons: str) -> str:
    return str(AccountOnHold("acme", list(reasons)))


def test_every_hold_reason_has_a_sentence_of_its_own() -> None:
    assert set(WHAT_THE_HOLD_MEANS) == set(HoldReason)
    sentences = list(WHAT_THE_HOLD_MEANS.values())
    assert len(set(sentences)) == len(sentences)
    for sentence in sentences:
        assert sentence[0].isupper() and sentence.endswith(".")


@pytest.mark.parametrize(
    ("reason", "says"),
    [
        ("non_payment", "unpaid invoice"),
        ("dispute", "disputed a payment"),
        ("credit_review", "reviewing this account's credit"),
        ("manual", "ask finance why"),
    ],
)
def test_the_refusal_says_what_the_hold_means_for_its_reason(reason: str, says: str) -> None:
    message = refusal(reason)
    assert message.startswith(f"Account acme is on credit hold ({reason.replace('_', ' ')}): no new orders")
    assert says in message
    assert message.endswith(WHAT_THE_HOLD_MEANS[HoldReason(reason)])


def test_a_manual_hold_does_not_tell_the_customer_to_pay_or_settle() -> None:
    message = refusal("manual").lower()
    assert "settle" not in message and "pay" not in message and "invoice" not in message


def test_each_reason_of_several_is_explained_in_the_order_given() -> None:
    message = refusal("dispute", "manual")
    dispute, manual = WHAT_THE_HOLD_MEANS[HoldReason.DISPUTE], WHAT_THE_HOLD_MEANS[HoldReason.MANUAL]
    assert dispute in message and manual in message
    assert message.index(dispute) < message.index(manual)
    assert AccountOnHold("acme", ["dispute", "manual"]).reasons == ["dispute", "manual"]


def test_a_reason_this_version_does_not_know_sends_sales_to_finance() -> None:
    assert refusal("fraud_check").endswith("Ask finance about the fraud check hold.")
