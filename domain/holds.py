"""Hold reasons and hold records: one record per reason on an account."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class HoldReason(enum.StrEnum):
    """Why an account is held. Each reason is owned by the source that sets and releases it."""

    CREDIT_REVIEW = "credit_review"
    NON_PAYMENT = "non_payment"
    DISPUTE = "dispute"
    MANUAL = "manual"


@dataclass(frozen=True)
class Hold:
    """A hold as stored: the reason, since when, the event that caused it, a note, and who placed it.

    ``placed_by`` is the actor of the change that placed it, as the timeline names it: ``user:<name>``
    for a person (a manual hold's cause is only ``api``), ``stripe``, ``dynamics:<CRM user>`` or
    ``holdfast`` otherwise; None for holds placed before it was recorded.
    """

    reason: HoldReason
    since: datetime
    cause: str
    note: str | None = None
    placed_by: str | None = None


@dataclass(frozen=True)
class WantedHold:
    """A hold the facts call for, with the event that calls for it."""

    reason: HoldReason
    cause: str
    note: str | None = None
