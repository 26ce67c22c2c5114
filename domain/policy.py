"""The hold policy: what each reason does, and when non-payment and disputes hold an account.

A policy is plain data, validated once at start by the adapter that reads the file,
and handed to the domain. The defaults are PRODUCT.md's default policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from types import MappingProxyType

from domain.holds import HoldReason


@dataclass(frozen=True)
class ReasonEffects:
    """What a hold of one reason does while it takes effect."""

    parks_provisioning: bool
    blocks_changes: bool


DEFAULT_EFFECTS: Mapping[HoldReason, ReasonEffects] = MappingProxyType(
    {
        HoldReason.CREDIT_REVIEW: ReasonEffects(parks_provisioning=True, blocks_changes=False),
        HoldReason.NON_PAYMENT: ReasonEffects(parks_provisioning=True, blocks_changes=True),
        HoldReason.DISPUTE: ReasonEffects(parks_provisioning=True, blocks_changes=True),
        HoldReason.MANUAL: ReasonEffects(parks_provisioning=True, blocks_changes=True),
    }
)


@dataclass(frozen=True)
class GoodStanding:
    """The allowance a good record earns (``[non_payment.good_standing]``): see domain.standing."""

    invoices_paid_on_time: int = 6
    months: int = 12
    extra_failed_attempts: int = 1
    extra_grace_hours: int = 0

    @property
    def extra_grace(self) -> timedelta:
        return timedelta(hours=self.extra_grace_hours)


@dataclass(frozen=True)
class NonPaymentPolicy:
    """When unpaid invoices put an account on hold for non-payment.

    ``failed_attempts``: failed payment attempts on one invoice before it holds (0: never).
    ``days_past_due``: days after the due date of an open invoice sent for manual payment
    (None: never). ``minimum_unpaid``: nothing is held while the unpaid total of the
    triggering invoices is below this. ``grace_period``: how long after an invoice first
    triggers before it holds. ``on_uncollectible``: an invoice marked uncollectible holds.
    ``good_standing``: the allowance a good record earns (None: off, the default).
    """

    failed_attempts: int = 1
    days_past_due: int | None = 15
    minimum_unpaid: Decimal = Decimal("1.00")
    grace_period: timedelta = timedelta(0)
    on_uncollectible: bool = True
    good_standing: GoodStanding | None = None


@dataclass(frozen=True)
class DisputePolicy:
    """Which closing statuses of a dispute release its hold (a lost one, and its appeal, stay by default)."""

    release_on: frozenset[str] = frozenset({"won", "warning_closed", "prevented"})


@dataclass(frozen=True)
class HoldPolicy:
    """The whole policy: effects per reason plus the thresholds of each source."""

    effects: Mapping[HoldReason, ReasonEffects] = field(default_factory=lambda: DEFAULT_EFFECTS)
    non_payment: NonPaymentPolicy = field(default_factory=NonPaymentPolicy)
    dispute: DisputePolicy = field(default_factory=DisputePolicy)

    def effects_of(self, reason: HoldReason) -> ReasonEffects:
        return self.effects.get(reason, DEFAULT_EFFECTS[reason])


DEFAULT_POLICY = HoldPolicy()
