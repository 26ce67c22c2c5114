"""The hold policy file: read, validated, refused with the line and the problem."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.policy_file import PolicyError, load_policy, parse_policy
from domain.holds import HoldReason
from domain.policy import HoldPolicy


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
    ],
)
def test_a_wrong_policy_is_refused_with_the_line_and_the_problem(text: str, expected: str) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy(text, Path("policy.toml"))
    assert expected in str(raised.value)


def test_a_missing_file_is_refused_with_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot be read"):
        load_policy(str(tmp_path / "nope.toml"))
