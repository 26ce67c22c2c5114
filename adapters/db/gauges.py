"""What GET /metrics reads from the database when scraped: a few indexed, grouped counts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, func, select

from adapters.db.tables import HoldRow, InboxEventRow, ProvisioningRequestRow
from adapters.metrics import Gauges
from domain.holds import HoldReason
from domain.provisioning import RequestState


def read_gauges(engine: Engine, now: datetime) -> Gauges:
    """Accounts on hold by reason, requests by state, the age of the oldest delivery not yet processed.

    Every reason and state is present (0 when none), so a series never disappears.
    """
    with engine.connect() as connection:
        oldest = connection.execute(
            select(func.min(InboxEventRow.received_at)).where(InboxEventRow.status == "received")
        ).scalar()
        holds = connection.execute(select(HoldRow.reason, func.count()).group_by(HoldRow.reason)).all()
        states = connection.execute(
            select(ProvisioningRequestRow.state, func.count()).group_by(ProvisioningRequestRow.state)
        ).all()
    if isinstance(oldest, str):  # SQLite without the column's type (an aggregate): ISO text
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=now.tzinfo)
    on_hold = {reason.value: 0 for reason in HoldReason} | {str(r): int(n) for r, n in holds}
    requests = {state.value: 0 for state in RequestState} | {str(s): int(n) for s, n in states}
    age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return Gauges(oldest_unprocessed_seconds=age, accounts_on_hold=on_hold, requests=requests)
