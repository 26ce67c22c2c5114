"""Account use cases for the admin API: create and update, read, manual holds, timeline."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.account import Account, NoSuchHold
from domain.holds import Hold, HoldReason
from domain.money import check_currency_places
from domain.standing import NO_STANDING, Standing
from domain.timeline import Change, TimelineEntry
from services.customers import map_customer
from services.evaluation import read_evaluations, reevaluate_account
from services.ports import ServiceContext, TimelineRecord, UnitOfWork

API_CAUSE = "api"  # a hold's cause when a person placed it through the API (the actor names who)


class AccountNotFound(LookupError):
    def __init__(self, account_id: str) -> None:
        super().__init__(f"No account {account_id} is known.")


class NoteRequired(ValueError):
    """Placing or lifting a manual hold, lifting a lost dispute, starting or ending a pause: each says why."""

    def __init__(self) -> None:
        super().__init__("A note is required: say why; the timeline keeps it with the name of who did it.")


def required_note(note: str | None) -> str:
    """The note of a change to holds or pauses (NoteRequired when it is missing or blank)."""
    if note is None or not note.strip():
        raise NoteRequired()
    return note


class CustomerAlreadyMapped(Exception):
    """A Stripe customer maps to one account; moving it through the API is refused."""


@dataclass(frozen=True)
class AccountView:
    """An account as the API shows it."""

    account_id: str
    name: str | None
    account_number: str | None
    stripe_customer_id: str | None
    currency: str | None
    credit_limit: Decimal | None
    exposure: Decimal
    on_hold: bool
    blocks_changes: bool
    parks_provisioning: bool
    holds: Sequence[Hold]
    enforcement_paused_until: datetime | None
    awaiting: int
    enforcement_paused_by: str | None = None  # the actor who paused it (user:<name>), while paused
    standing: Standing = NO_STANDING  # its record of paying (domain.standing)


def _views(uow: UnitOfWork, accounts: Sequence[Account], ctx: ServiceContext, now: datetime) -> list[AccountView]:
    """Accounts as the API shows them, read with a few queries for the whole page (none per account)."""
    read = read_evaluations(uow, accounts, ctx.policy, now)
    customers = uow.customers.customers_of([account.account_id for account in accounts])
    views = []
    for account in accounts:
        exposure = read[account.account_id][1]
        effects = account.effects(ctx.policy, now)
        paused = account.is_paused(now)
        views.append(
            AccountView(
                account_id=account.account_id,
                name=account.name,
                account_number=account.account_number,
                stripe_customer_id=customers.get(account.account_id),
                currency=account.currency,
                credit_limit=account.credit_limit,
                exposure=exposure.amount,
                on_hold=effects.on_hold,
                blocks_changes=effects.blocks_changes,
                parks_provisioning=effects.parks_provisioning,
                holds=[account.holds[r] for r in sorted(account.holds)],
                enforcement_paused_until=account.enforcement_paused_until if paused else None,
                awaiting=exposure.awaiting,
                enforcement_paused_by=account.paused_by if paused else None,
                standing=read[account.account_id][0].standing,
            )
        )
    return views


def _view(uow: UnitOfWork, account: Account, ctx: ServiceContext, now: datetime) -> AccountView:
    return _views(uow, [account], ctx, now)[0]


def account_view(uow: UnitOfWork, account: Account, ctx: ServiceContext, now: datetime) -> AccountView:
    """The account as the API shows it at ``now`` (outgoing events carry the same)."""
    return _view(uow, account, ctx, now)


def _api_change(now: datetime, actor: str) -> Change:
    """A change made through the API (or the dashboard) by ``actor`` (``user:<token name>``)."""
    return Change(at=now, actor=actor, cause=API_CAUSE)


def put_account(
    uow: UnitOfWork, account_id: str, changes: Mapping[str, Any], ctx: ServiceContext, now: datetime, *, actor: str
) -> tuple[AccountView, bool]:
    """Create or update an account from the fields given; return it and whether it is new."""
    change = _api_change(now, actor)
    with uow:
        customer_id = changes.get("stripe_customer_id")
        mapping = uow.customers.lock(customer_id, now) if customer_id else None
        if mapping is not None and mapping.account_id not in (None, account_id):
            raise CustomerAlreadyMapped(f"Stripe customer {customer_id} already maps to account {mapping.account_id}.")
        account, created = uow.accounts.create_or_lock(account_id, now)
        _check_credit_limit_places(account, changes)  # refused: the rollback undoes a creation too
        entries: list[TimelineEntry] = []
        updated = {
            key: changes[key]
            for key in ("name", "currency")
            if key in changes and getattr(account, key) != changes[key]
        }
        for key, value in updated.items():
            setattr(account, key, value)
        if created:
            entries.append(TimelineEntry.of(change, "account_created", **updated))
        elif updated:
            entries.append(TimelineEntry.of(change, "account_updated", **updated))
        if "credit_limit" in changes:
            entries += account.set_credit_limit(changes["credit_limit"], change)
        uow.accounts.save(account, now)
        uow.timeline.append(account_id, entries)
        if mapping is not None and customer_id:
            map_customer(uow, customer_id, account_id, mapping.account_id, now, ctx, change)
        else:
            reevaluate_account(uow, account_id, ctx, change, account=account)
        uow.commit()
        view = _view(uow, _get(uow, account_id), ctx, now)
    return view, created


def _check_credit_limit_places(account: Account | None, changes: Mapping[str, Any]) -> None:
    """The credit limit these changes leave fits the currency they leave (TooManyDecimals if not)."""
    if "credit_limit" not in changes and "currency" not in changes:
        return
    currency = changes.get("currency", account.currency if account else None)
    limit = changes.get("credit_limit", account.credit_limit if account else None)
    if limit is not None:
        check_currency_places(limit, currency)


def _get(uow: UnitOfWork, account_id: str, *, lock: bool = False) -> Account:
    account = uow.accounts.get(account_id, lock=lock)
    if account is None:
        raise AccountNotFound(account_id)
    return account


def view_account(uow: UnitOfWork, account_id: str, ctx: ServiceContext, now: datetime) -> AccountView:
    with uow:
        return _view(uow, _get(uow, account_id), ctx, now)


class ReasonNeedsHolds(ValueError):
    """Accounts held for a reason were asked for among accounts without holds."""

    def __init__(self) -> None:
        super().__init__("A reason lists accounts held for it; it cannot go with on_hold=false.")


def list_accounts(
    uow: UnitOfWork,
    *,
    on_hold: bool | None,
    after: str | None,
    limit: int,
    ctx: ServiceContext,
    now: datetime,
    reason: HoldReason | None = None,
) -> list[AccountView]:
    """Accounts by id after ``after``; ``on_hold``: held or not; ``reason``: held for that reason (across pages)."""
    if reason is not None and on_hold is False:
        raise ReasonNeedsHolds()
    with uow:
        return _views(uow, uow.accounts.page(on_hold=on_hold, after=after, limit=limit, reason=reason), ctx, now)


def _act_on_account(
    uow: UnitOfWork,
    account_id: str,
    ctx: ServiceContext,
    now: datetime,
    act: Callable[[Account, Change], list[TimelineEntry]],
    actor: str,
) -> AccountView:
    """Finance acts on an account: lock it, let the domain act, re-evaluate, save, answer."""
    with uow:
        account = _get(uow, account_id, lock=True)
        change = _api_change(now, actor)
        uow.timeline.append(account_id, act(account, change))
        reevaluate_account(uow, account_id, ctx, change, account=account)
        uow.commit()
        return _view(uow, account, ctx, now)


def place_manual_hold(
    uow: UnitOfWork, account_id: str, note: str | None, ctx: ServiceContext, now: datetime, *, actor: str
) -> AccountView:
    """Finance places its manual hold, with a note (HoldAlreadyPlaced if there is one)."""
    required_note(note)
    return _act_on_account(
        uow, account_id, ctx, now, lambda account, change: account.place_manual_hold(note, change), actor
    )


def lift_manual_hold(
    uow: UnitOfWork, account_id: str, note: str | None, ctx: ServiceContext, now: datetime, *, actor: str
) -> AccountView:
    """Finance lifts its manual hold, with a note (NoSuchHold if there is none); other holds stay."""
    required_note(note)
    return _act_on_account(
        uow, account_id, ctx, now, lambda account, change: account.lift_manual_hold(note, change), actor
    )


def account_timeline(
    uow: UnitOfWork, account_id: str, *, before_id: int | None, limit: int
) -> Sequence[TimelineRecord]:
    with uow:
        _get(uow, account_id)
        return uow.timeline.page(account_id, before_id, limit)


class PauseRefused(ValueError):
    """A pause that cannot be set or ended; the message is a sentence."""


def pause_enforcement(
    uow: UnitOfWork,
    account_id: str,
    until: datetime,
    note: str | None,
    ctx: ServiceContext,
    now: datetime,
    *,
    actor: str,
) -> AccountView:
    """Holds stay recorded but park and block nothing until ``until``; awaiting orders may go."""
    required_note(note)
    if until <= now:
        raise PauseRefused("A pause must end in the future.")
    return _act_on_account(
        uow, account_id, ctx, now, lambda account, change: account.pause_enforcement(until, note, change), actor
    )


def end_enforcement_pause(
    uow: UnitOfWork, account_id: str, ctx: ServiceContext, now: datetime, *, actor: str, note: str | None
) -> AccountView:
    """Finance ends a pause, with a note: holds take effect again (awaiting orders wait, changes are blocked)."""
    required_note(note)

    def end(account: Account, change: Change) -> list[TimelineEntry]:
        if not account.is_paused(now):
            raise PauseRefused(f"Enforcement is not paused for account {account_id}.")
        return account.end_pause(change, note=note)

    return _act_on_account(uow, account_id, ctx, now, end, actor)


class DisputeHoldOpen(ValueError):
    """A dispute still under way cannot be lifted by finance."""


def lift_dispute_hold(
    uow: UnitOfWork, account_id: str, ctx: ServiceContext, now: datetime, *, actor: str, note: str | None
) -> AccountView:
    """Finance lifts the hold of lost (or appealed, or unknown-status) disputes, with a note.

    A dispute still under way keeps holding (DisputeHoldOpen).
    """
    required_note(note)
    with uow:
        account = _get(uow, account_id, lock=True)
        customer = uow.customers.customer_of(account_id)
        disputes = [d for d in (uow.disputes.for_customer(customer) if customer else []) if d.holds(ctx.policy.dispute)]
        if not disputes:
            raise NoSuchHold(f"Account {account_id} has no dispute hold to lift.")
        still_open = [d.dispute_id for d in disputes if not d.liftable]
        if still_open:
            raise DisputeHoldOpen(
                f"Dispute {', '.join(still_open)} is still under way; its hold lifts when Stripe closes it "
                "(won, prevented or warning_closed), or can be lifted once it is lost."
            )
        change = _api_change(now, actor)
        for dispute in disputes:
            uow.disputes.save(replace(dispute, lifted_at=now), now)
        lifted = [d.dispute_id for d in disputes]
        uow.timeline.append(account_id, [TimelineEntry.of(change, "dispute_hold_lifted", disputes=lifted, note=note)])
        reevaluate_account(uow, account_id, ctx, change, account=account)
        uow.commit()
        return _view(uow, account, ctx, now)
