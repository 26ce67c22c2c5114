"""The account aggregate: its holds, its enforcement pause and what they do.

Methods change the account and return the timeline entries that record the change;
the caller saves both in one transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from domain.holds import Hold, HoldReason, WantedHold
from domain.money import decimal_places, exponent, format_amount
from domain.policy import HoldPolicy
from domain.timeline import Change, TimelineEntry

MAX_ACCOUNT_ID_LENGTH = 100

_HEX = "[0-9a-fA-F]"
_GUID = re.compile(
    rf"(?P<brace>\{{)?(?P<guid>{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}})(?(brace)\}})"
)


def guid(value: str) -> str | None:
    """The GUID ``value`` writes (any case, braces or not), lower case without braces; None if it is not one."""
    match = _GUID.fullmatch(value.strip())
    return match.group("guid").lower() if match else None


def canonical_account_id(account_id: str) -> str:
    """One spelling per account: a GUID becomes lower case without braces; any other id stays as given.

    CRM account ids are GUIDs, and the CRM, Stripe's metadata and people write them in
    either case, with or without braces: every way in calls this, so each is one account.
    """
    return guid(account_id) or account_id


class HoldError(Exception):
    """A hold command that cannot be carried out; the message is a sentence for the caller."""


class HoldAlreadyPlaced(HoldError):
    pass


class NoSuchHold(HoldError):
    pass


@dataclass(frozen=True)
class Effects:
    """What an account's holds do right now."""

    on_hold: bool
    paused: bool
    blocking: tuple[HoldReason, ...]
    parking: tuple[HoldReason, ...]

    @property
    def blocks_changes(self) -> bool:
        return bool(self.blocking)

    @property
    def parks_provisioning(self) -> bool:
        return bool(self.parking)


@dataclass
class Account:
    """A customer account, identified by its CRM account id."""

    account_id: str
    name: str | None = None
    account_number: str | None = None
    currency: str | None = None
    credit_limit: Decimal | None = None
    holds: dict[HoldReason, Hold] = field(default_factory=dict)
    enforcement_paused_until: datetime | None = None
    pause_note: str | None = None
    paused_by: str | None = None  # the actor who paused enforcement (user:<name>)
    # Finance's credit review, as the CRM's creditonhold says: the operation that set it.
    credit_review_cause: str | None = None
    # The last decision good standing's allowance made (said once on the timeline; None: none stands).
    allowance_note: str | None = None

    @property
    def on_hold(self) -> bool:
        return bool(self.holds)

    def shows_hold(self, policy: HoldPolicy, now: datetime) -> bool:
        """What the CRM's creditonhold should say: true while any hold takes effect."""
        effects = self.effects(policy, now)
        return bool(effects.blocking or effects.parking)

    def is_paused(self, now: datetime) -> bool:
        return self.enforcement_paused_until is not None and self.enforcement_paused_until > now

    def effects(self, policy: HoldPolicy, now: datetime) -> Effects:
        """Which holds take effect at ``now`` (none while enforcement is paused)."""
        paused = self.is_paused(now)
        reasons = sorted(self.holds)
        if paused:
            return Effects(on_hold=self.on_hold, paused=True, blocking=(), parking=())
        return Effects(
            on_hold=self.on_hold,
            paused=False,
            blocking=tuple(r for r in reasons if policy.effects_of(r).blocks_changes),
            parking=tuple(r for r in reasons if policy.effects_of(r).parks_provisioning),
        )

    def settle_hold(self, reason: HoldReason, wanted: WantedHold | None, change: Change) -> list[TimelineEntry]:
        """Make the hold of a source-owned ``reason`` match what that source's facts call for."""
        held = self.holds.get(reason)
        if wanted is not None and held is None:
            return [self._place(Hold(reason, change.at, wanted.cause, wanted.note, change.actor), change)]
        if wanted is None and held is not None:
            return [self._release(reason, change, note=None)]
        return []

    def note_allowance(self, note: str | None, change: Change) -> list[TimelineEntry]:
        """Say once on the timeline that good standing kept the account from a non-payment hold."""
        if note == self.allowance_note:
            return []
        self.allowance_note = note
        return [] if note is None else [TimelineEntry.of(change, "hold_deferred", reason="non_payment", note=note)]

    def place_manual_hold(self, note: str | None, change: Change) -> list[TimelineEntry]:
        """Finance puts the account on hold."""
        if HoldReason.MANUAL in self.holds:
            raise HoldAlreadyPlaced(f"Account {self.account_id} already has a manual hold.")
        return [self._place(Hold(HoldReason.MANUAL, change.at, change.cause, note, change.actor), change)]

    def lift_manual_hold(self, note: str | None, change: Change) -> list[TimelineEntry]:
        """Finance lifts its own hold; no other reason is touched."""
        if HoldReason.MANUAL not in self.holds:
            raise NoSuchHold(f"Account {self.account_id} has no manual hold to lift.")
        return [self._release(HoldReason.MANUAL, change, note=note)]

    def pause_enforcement(self, until: datetime, note: str | None, change: Change) -> list[TimelineEntry]:
        """Holds stay recorded but take no effect until ``until``."""
        self.enforcement_paused_until = until
        self.pause_note = note
        self.paused_by = change.actor
        return [TimelineEntry.of(change, "enforcement_paused", until=until.isoformat(), note=note)]

    def end_pause(self, change: Change, *, expired: bool = False, note: str | None = None) -> list[TimelineEntry]:
        """Holds take effect again (``note``: why finance ended the pause early)."""
        if self.enforcement_paused_until is None:
            return []
        self.enforcement_paused_until = None
        self.pause_note = None
        self.paused_by = None
        why = {} if note is None else {"note": note}
        return [TimelineEntry.of(change, "enforcement_resumed", expired=expired, **why)]

    def set_credit_limit(self, limit: Decimal | None, change: Change) -> list[TimelineEntry]:
        if limit == self.credit_limit:
            return []
        before, self.credit_limit = self.credit_limit, limit
        return [
            TimelineEntry.of(
                change,
                "credit_limit_changed",
                before=None if before is None else format_amount(before, self.currency),
                after=None if limit is None else format_amount(limit, self.currency),
            )
        ]

    def adopt_currency(self, currency: str | None, taken_from: str, change: Change) -> list[TimelineEntry]:
        """Take the currency Stripe bills this account in (its customer's, or its first invoice's) if it has none.

        A currency already set (through the API, or taken before) is never replaced, and none is
        taken that the credit limit cannot be written in (a limit of "100.50" and yen).
        """
        if self.currency is not None or not currency:
            return []
        if self.credit_limit is not None and decimal_places(self.credit_limit) > exponent(currency):
            return []
        self.currency = currency
        return [TimelineEntry.of(change, "account_updated", currency=currency, taken_from=taken_from)]

    def _place(self, hold: Hold, change: Change) -> TimelineEntry:
        self.holds[hold.reason] = hold
        return TimelineEntry.of(change, "hold_placed", reason=str(hold.reason), note=hold.note)

    def _release(self, reason: HoldReason, change: Change, note: str | None) -> TimelineEntry:
        held = self.holds.pop(reason)
        return TimelineEntry.of(change, "hold_released", reason=str(reason), since=held.since.isoformat(), note=note)
