"""What the CRM (Dynamics 365) says about accounts and orders, and how it applies.

Update bodies carry only the columns that changed, and deliveries can arrive out of order,
so each column keeps the CRM time (``modifiedon``) of the value applied: an older value never
overwrites a newer one. A ``modifiedon`` is believed only up to the time the delivery was
received plus a small skew, so a value stamped far in the future cannot freeze its column.
``creditonhold`` is finance's credit review, except when it is the echo of Holdfast's own
write (our application user writing the value we wrote).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.account import Account, guid
from domain.timeline import Change, TimelineEntry

NAME = "name"
ACCOUNT_NUMBER = "account_number"
CREDIT_LIMIT = "credit_limit"
CREDIT_ON_HOLD = "credit_on_hold"
STRIPE_CUSTOMER_ID = "stripe_customer_id"
ACCOUNT_COLUMNS = frozenset({NAME, ACCOUNT_NUMBER, CREDIT_LIMIT, CREDIT_ON_HOLD, STRIPE_CUSTOMER_ID})

SUBMITTED, CANCELED = 1, 2

# How far ahead of the time a delivery was received its modifiedon may be: clocks differ a
# little; beyond that, the stamp is wrong and would keep every later update of the column out.
MAX_CRM_CLOCK_SKEW = timedelta(minutes=5)


def crm_row_id(value: str) -> str | None:
    """A Dataverse row id as the CRM keys it (a GUID, lower case, no braces); None if it is not one."""
    return guid(value)


def trusted_modified_at(modified_at: datetime, received_at: datetime) -> datetime:
    """The CRM time of a change as Holdfast orders it: ``modifiedon``, at most received time plus the skew."""
    return min(modified_at, received_at + MAX_CRM_CLOCK_SKEW)


def is_crm_account_id(account_id: str) -> bool:
    """Dataverse rows are keyed by GUIDs: an account with another id cannot be in the CRM."""
    return crm_row_id(account_id) is not None


def crm_actor(user_id: str | None) -> str:
    """How the timeline names a change from the CRM: ``dynamics:<CRM user id>`` (``dynamics`` when unknown)."""
    return f"dynamics:{user_id}" if user_id else "dynamics"


@dataclass(frozen=True)
class CrmAccountChange:
    """A CRM account created, updated or deleted: the columns present, as of ``modified_at``."""

    account_id: str
    message: str  # Create, Update, Delete
    values: Mapping[str, Any]
    modified_at: datetime
    operation: str
    by_holdfast: bool  # initiated by Holdfast's own application user
    user_id: str | None = None  # the CRM user behind the change (InitiatingUserId, else UserId)

    @property
    def cause(self) -> str:
        return f"dynamics:{self.operation}"

    @property
    def actor(self) -> str:
        return crm_actor(self.user_id)


@dataclass(frozen=True)
class CrmOrderChange:
    """A CRM sales order submitted (statecode 1) or canceled (statecode 2)."""

    order_id: str
    account_id: str | None
    state_code: int | None
    amount: Decimal | None
    description: str | None
    operation: str
    user_id: str | None = None  # the CRM user behind the change (InitiatingUserId, else UserId)

    @property
    def cause(self) -> str:
        return f"dynamics:{self.operation}"

    @property
    def actor(self) -> str:
        return crm_actor(self.user_id)


@dataclass
class CrmAccountState:
    """What Holdfast keeps of the CRM's view of one account."""

    versions: dict[str, datetime] = field(default_factory=dict)
    on_hold: bool | None = None  # creditonhold as the CRM shows it (last seen or written)
    written_on_hold: bool | None = None  # the value Holdfast last wrote


@dataclass(frozen=True)
class CrmApplied:
    entries: list[TimelineEntry]
    stripe_customer_id: str | None  # a customer to map to the account (newer value only)
    echo: bool
    cleared_by_crm: bool  # someone in the CRM set creditonhold to false


def apply_account_change(account: Account, crm: CrmAccountState, change: CrmAccountChange, at: Change) -> CrmApplied:
    """Apply the columns of a CRM change that are newer than what was applied before."""
    fresh = {
        column: value
        for column, value in change.values.items()
        if column in ACCOUNT_COLUMNS and (column not in crm.versions or crm.versions[column] <= change.modified_at)
    }
    for column in fresh:
        crm.versions[column] = change.modified_at
    entries: list[TimelineEntry] = []
    updated = {
        attr: fresh[column]
        for column, attr in ((NAME, "name"), (ACCOUNT_NUMBER, "account_number"))
        if column in fresh and getattr(account, attr) != fresh[column]
    }
    for attr, value in updated.items():
        setattr(account, attr, value)
    if updated:
        entries.append(TimelineEntry.of(at, "account_updated", **updated))
    if CREDIT_LIMIT in fresh:
        limit = fresh[CREDIT_LIMIT]
        entries += account.set_credit_limit(None if limit is None else Decimal(limit), at)
    echo = cleared = False
    if CREDIT_ON_HOLD in fresh:
        value = bool(fresh[CREDIT_ON_HOLD])
        crm.on_hold = value
        echo = change.by_holdfast and value == crm.written_on_hold
        if not echo:
            account.credit_review_cause = change.cause if value else None
            cleared = not value
    customer = fresh.get(STRIPE_CUSTOMER_ID)
    return CrmApplied(entries, customer if isinstance(customer, str) and customer else None, echo, cleared)
