"""Facts and rows are copied by field name: what differs is said, what is missing fails loudly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from adapters.db.mapping import column_values, copy_to_row, fact_from_row
from adapters.db.tables import DisputeRow, HoldRow
from domain.disputes import DisputeFact
from domain.holds import Hold, HoldReason

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DISPUTE = DisputeFact(
    dispute_id="dp_1",
    customer_id="cus_1",
    charge_id="ch_1",
    status="needs_response",
    amount=Decimal("12.50"),
    currency="usd",
    event_id="evt_2",
    event_created=AT,
    opened_event_id="evt_1",
    lifted_at=None,
    opened_at=datetime(2026, 2, 28, tzinfo=UTC),
)


def test_a_fact_copied_to_its_row_reads_back_the_same() -> None:
    row = DisputeRow(dispute_id=DISPUTE.dispute_id)

    copy_to_row(row, DISPUTE, updated_at=AT)

    assert row.updated_at == AT
    assert fact_from_row(DisputeFact, row) == DISPUTE


def test_converted_values_are_stored_and_read_as_given() -> None:
    hold = Hold(HoldReason.MANUAL, AT, "finance", note="call first")

    row = HoldRow(**column_values(hold, account_id="acme", reason=str(hold.reason)))

    assert (row.account_id, row.reason, row.since) == ("acme", "manual", AT)
    assert (row.cause, row.note) == ("finance", "call first")
    assert type(row.reason) is str  # stored as text, not as the enum
    assert fact_from_row(Hold, row, reason=HoldReason(row.reason)) == hold


def test_left_out_fields_are_not_copied() -> None:
    assert "lifted_at" not in column_values(DISPUTE, leave_out=["lifted_at"])


def test_the_primary_key_of_a_row_is_never_copied() -> None:
    row = HoldRow(account_id="acme", reason="manual", since=AT, cause="finance")

    copy_to_row(row, Hold(HoldReason.NON_PAYMENT, AT, "in_1 failed"), account_id="other")

    assert (row.account_id, row.reason, row.cause) == ("acme", "manual", "in_1 failed")


def test_a_value_for_a_column_the_row_does_not_have_is_refused() -> None:
    row = DisputeRow(dispute_id=DISPUTE.dispute_id)

    with pytest.raises(AttributeError, match="no_such_column"):
        copy_to_row(row, DISPUTE, no_such_column=1)


def test_a_field_with_no_column_fails_on_reading() -> None:
    @dataclass(frozen=True)
    class Wider:
        dispute_id: str
        not_stored: str

    with pytest.raises(AttributeError, match="not_stored"):
        fact_from_row(Wider, DisputeRow(dispute_id="dp_1"))
