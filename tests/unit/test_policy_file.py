"""The hold policy file: read, validated, refused with the line and the problem."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.policy_file import PolicyError, load_policy, parse_policy, policy_document, policy_from_document
from domain.disputes import CLOSING_STATUSES
from domain.holds import HoldReason
from domain.policy import DisputePolicy, GoodStanding, HoldPolicy, NonPaymentPolicy, ReasonEffects


def test_no_file_means_the_default_policy() -> None:
    assert load_policy(None) == HoldPolicy()


def test_every_key_of_a_toml_policy_is_read() -> None:
    policy = parse_policy(
        """
[non_payment]
failed_attempts = 3
days_past_due = false
minimum_unpaid = "5.50"
grace_period_hours = 48
on_uncollectible = false

[dispute]
release_on = ["won", "lost"]

[reasons.credit_review]
blocks_changes = true
""",
        Path("policy.toml"),
    )
    assert policy.non_payment.failed_attempts == 3
    assert policy.non_payment.days_past_due is None
    assert policy.non_payment.minimum_unpaid == Decimal("5.50")
    assert policy.non_payment.grace_period == timedelta(hours=48)
    assert policy.non_payment.on_uncollectible is False
    assert policy.dispute.release_on == {"won", "lost"}
    assert policy.effects_of(HoldReason.CREDIT_REVIEW).blocks_changes is True
    assert policy.effects_of(HoldReason.CREDIT_REVIEW).parks_provisioning is True


def test_a_yaml_policy_is_read_too() -> None:
    policy = parse_policy("non_payment:\n  failed_attempts: 2\n", Path("policy.yaml"))
    assert policy.non_payment.failed_attempts == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[non_payment]\nfailed_attemps = 2\n", "line 2: non_payment.failed_attemps is not a known setting"),
        ('[non_payment]\nfailed_attempts = "two"\n', "line 2: non_payment.failed_attempts must be a whole number"),
        ('[non_payment]\n\nminimum_unpaid = "lots"\n', "line 3: non_payment.minimum_unpaid must be an amount"),
        ("[reasons.overdraft]\nblocks_changes = true\n", "line 1: reasons.overdraft is not a hold reason"),
        ('[reasons.manual]\nblocks_changes = "yes"\n', "line 2: reasons.manual.blocks_changes must be true or false"),
        ("[non_payment\n", "not valid TOML"),
        ("[surprise]\n", "line 1: surprise is not a known section"),
        (
            "[non_payment.good_standing]\nmonths = 0\n",
            "line 2: non_payment.good_standing.months must be at least 1",
        ),
        (
            "[non_payment.good_standing]\nextra_attempts = 1\n",
            "line 2: non_payment.good_standing.extra_attempts is not a known setting",
        ),
        ('[non_payment]\ngood_standing = "yes"\n', "non_payment.good_standing must be a table of settings"),
    ],
)
def test_a_wrong_policy_is_refused_with_the_line_and_the_problem(text: str, expected: str) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy(text, Path("policy.toml"))
    assert expected in str(raised.value)


def test_a_missing_file_is_refused_with_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot be read"):
        load_policy(str(tmp_path / "nope.toml"))


@pytest.mark.parametrize(
    ("document", "text"),
    [
        ({"non_payment": {"failed_attemps": 2}}, "[non_payment]\nfailed_attemps = 2\n"),
        ({"non_payment": {"failed_attempts": "two"}}, '[non_payment]\nfailed_attempts = "two"\n'),
        ({"non_payment": {"minimum_unpaid": "lots"}}, '[non_payment]\nminimum_unpaid = "lots"\n'),
        ({"non_payment": {"minimum_unpaid": "-1"}}, '[non_payment]\nminimum_unpaid = "-1"\n'),
        ({"reasons": {"overdraft": {"blocks_changes": True}}}, "[reasons.overdraft]\nblocks_changes = true\n"),
        ({"reasons": {"manual": {"blocks_changes": "yes"}}}, '[reasons.manual]\nblocks_changes = "yes"\n'),
        ({"dispute": {"release_on": "won"}}, '[dispute]\nrelease_on = "won"\n'),
        ({"non_payment": {"failed_attempts": Decimal("2.5")}}, "[non_payment]\nfailed_attempts = 2.5\n"),
        ({"surprise": {}}, "[surprise]\n"),
    ],
)
def test_a_json_candidate_is_refused_with_the_sentence_of_the_same_file(document: dict[str, Any], text: str) -> None:
    with pytest.raises(PolicyError) as from_file:
        parse_policy(text, Path("policy.toml"))
    with pytest.raises(PolicyError) as from_json:
        policy_from_document(document, HoldPolicy())
    assert from_json.value.problem == from_file.value.problem
    assert str(from_json.value) == f"Hold policy candidate: {from_file.value.problem}"


def test_what_a_candidate_leaves_out_stays_as_in_force() -> None:
    in_force = parse_policy(
        '[non_payment]\nfailed_attempts = 3\ndays_past_due = false\nminimum_unpaid = "9.00"\n'
        "grace_period_hours = 5\n[dispute]\nrelease_on = []\n[reasons.manual]\nparks_provisioning = false\n",
        Path("policy.toml"),
    )
    candidate = policy_from_document(
        {"non_payment": {"failed_attempts": 2}, "reasons": {"manual": {"blocks_changes": False}}}, in_force
    )
    assert candidate.non_payment == replace(in_force.non_payment, failed_attempts=2)
    assert candidate.dispute == in_force.dispute
    assert candidate.effects_of(HoldReason.MANUAL) == ReasonEffects(parks_provisioning=False, blocks_changes=False)
    assert policy_from_document({}, in_force) == in_force


@given(
    failed_attempts=st.integers(0, 10),
    days=st.none() | st.integers(0, 90),
    minimum=st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False, allow_infinity=False),
    grace_hours=st.integers(0, 1000),
    uncollectible=st.booleans(),
    release_on=st.sets(st.sampled_from(sorted(CLOSING_STATUSES))),
    effects=st.lists(st.booleans(), min_size=2 * len(HoldReason), max_size=2 * len(HoldReason)),
)
def test_a_policy_written_as_a_document_reads_back_as_the_same_policy(
    failed_attempts: int,
    days: int | None,
    minimum: Decimal,
    grace_hours: int,
    uncollectible: bool,
    release_on: set[str],
    effects: list[bool],
) -> None:
    policy = HoldPolicy(
        effects={r: ReasonEffects(effects[2 * i], effects[2 * i + 1]) for i, r in enumerate(HoldReason)},
        non_payment=NonPaymentPolicy(failed_attempts, days, minimum, timedelta(hours=grace_hours), uncollectible),
        dispute=DisputePolicy(frozenset(release_on)),
    )
    document = json.loads(json.dumps(policy_document(policy)))
    assert policy_from_document(document, HoldPolicy()) == policy
    assert policy_from_document(document, policy) == policy


def test_good_standing_is_read_from_its_section_and_turned_off_by_false() -> None:
    text = (
        "[non_payment]\nfailed_attempts = 1\n\n[non_payment.good_standing]\ninvoices_paid_on_time = 8\n"
        "months = 12\nextra_failed_attempts = 1\nextra_grace_hours = 48\n"
    )
    policy = parse_policy(text, Path("policy.toml"))
    assert policy.non_payment.good_standing == GoodStanding(8, 12, 1, 48)
    assert policy_document(policy)["non_payment"]["good_standing"] == {
        "invoices_paid_on_time": 8,
        "months": 12,
        "extra_failed_attempts": 1,
        "extra_grace_hours": 48,
    }
    assert policy_from_document(json.loads(json.dumps(policy_document(policy))), HoldPolicy()) == policy
    off = policy_from_document({"non_payment": {"good_standing": False}}, policy)
    assert off.non_payment.good_standing is None and off.non_payment.failed_attempts == 1
    assert HoldPolicy().non_payment.good_standing is None  # off by default
