"""Stored Dynamics 365 deliveries translated into CRM changes, completed through the Web API where needed.

An Update body carries only the changed columns; the registered images (PostImage preferred,
then PreImage for what did not change) fill in the rest. A body stripped for size
(``x-ms-dynamics-msg-size-exceeded``), or an order without its columns, is completed by
reading the row through the Web API (``DynamicsRowRead``, on the CRM's queue). What
``DynamicsDeliveries`` says, ``services.crm_processing`` applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.dynamics_context import ExecutionContext, parse_context
from adapters.dynamics_rows import Entity, EntityReference, OptionSet
from adapters.dynamics_webapi import WebApiError
from domain.account import canonical_account_id
from domain.crm import (
    ACCOUNT_NUMBER,
    CREDIT_LIMIT,
    CREDIT_ON_HOLD,
    NAME,
    STRIPE_CUSTOMER_ID,
    CrmAccountChange,
    CrmOrderChange,
    trusted_modified_at,
)
from services.ports import CrmChange, InboxEvent, IncompleteCrmEvent, PeerUnavailable, RowReader, UnitOfWork

ACCOUNT_ENTITY, ORDER_ENTITY = "account", "salesorder"
ENTITY_SETS = {ACCOUNT_ENTITY: "accounts", ORDER_ENTITY: "salesorders"}
ORDER_COLUMNS = ("customerid", "totalamount", "statecode", "name", "ordernumber")


class InvalidDynamicsColumn(IncompleteCrmEvent):
    """A column Holdfast reads has the wrong type: the body is refused at the door."""


@dataclass(frozen=True)
class DynamicsOptions:
    stripe_customer_field: str | None
    app_user_id: str | None


def delivery_key(context: ExecutionContext) -> str:
    """The inbox key of a delivery: stable across redeliveries of one operation.

    ``OperationId`` is the system job of an asynchronous step (the same on every retry) and
    the request of a synchronous one; with the stage, message and row it names one step's
    run for one row, whatever the number of deliveries.
    """
    operation = context.operation_id or context.request_id or context.correlation_id
    if not operation:
        raise IncompleteCrmEvent("The execution context has no OperationId, RequestId or CorrelationId.")
    row = context.primary_entity_id or "-"
    return f"{operation}/{context.stage}/{context.message_name}/{context.primary_entity_name}/{row}".lower()


def _columns(context: ExecutionContext) -> dict[str, Any]:
    """Every column the body knows for the row: images first, the Target (the change) on top."""
    columns: dict[str, Any] = {}
    for image in context.pre_images.values():
        columns.update(image.attributes)
    for image in context.post_images.values():
        columns.update(image.attributes)
    if isinstance(context.target, Entity):
        columns.update(context.target.attributes)
    return columns


def _changed(context: ExecutionContext) -> dict[str, Any]:
    """The columns this operation set: the Target's, or on Create everything the images carry too."""
    if isinstance(context.target, Entity):
        changed = dict(context.target.attributes)
        if context.message_name == "Create":
            for image in context.post_images.values():
                changed = {**image.attributes, **changed}
        return changed
    return {}


def _odata_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A Web API (OData) row in the shapes the context parser gives."""
    columns: dict[str, Any] = {}
    for key, value in row.items():
        if "@" in key:
            continue
        if key.startswith("_") and key.endswith("_value"):
            name = key[1:-6]
            logical = row.get(f"{key}@Microsoft.Dynamics.CRM.lookuplogicalname")
            columns[name] = EntityReference(str(logical or ""), str(value)) if value else None
        elif key in ("statecode", "statuscode") and isinstance(value, int):
            columns[key] = OptionSet(value)
        elif key == "modifiedon" and isinstance(value, str):
            columns[key] = datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif isinstance(value, float):
            columns[key] = Decimal(str(value))
        else:
            columns[key] = value
    return columns


def _money(value: Any, column: str) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidDynamicsColumn(f"The column {column} is not an amount.") from None
    if not amount.is_finite():
        raise InvalidDynamicsColumn(f"The column {column} is not a finite amount.")
    return amount


def _text(value: Any) -> str | None:
    value = _without_nul(value)
    return value if isinstance(value, str) and value.strip() else None


def _printable_id(value: str, what: str) -> None:
    if not value.isprintable():
        raise InvalidDynamicsColumn(f"The {what} is not printable text (it has a control character such as NUL).")


def _without_nul(value: Any) -> Any:
    """Text the database can store: NUL characters dropped (a name or number, not an id)."""
    return value.replace("\x00", "") if isinstance(value, str) else value


def _by_holdfast(context: ExecutionContext, options: DynamicsOptions) -> bool:
    me = options.app_user_id
    return bool(me) and me in {(context.user_id or "").lower(), (context.initiating_user_id or "").lower()}


def account_change(
    context: ExecutionContext,
    columns: Mapping[str, Any],
    changed: Mapping[str, Any],
    options: DynamicsOptions,
    *,
    received_at: datetime,
) -> CrmAccountChange:
    """The account change a delivery carries, ordered by its modifiedon (capped near ``received_at``)."""
    account_id = canonical_account_id(context.primary_entity_id or "")
    if not account_id:
        raise IncompleteCrmEvent("The account event has no PrimaryEntityId.")
    _printable_id(account_id, "PrimaryEntityId")
    values: dict[str, Any] = {}
    mapping = {
        "name": NAME,
        "accountnumber": ACCOUNT_NUMBER,
        "creditlimit": CREDIT_LIMIT,
        "creditonhold": CREDIT_ON_HOLD,
    }
    if options.stripe_customer_field:
        mapping[options.stripe_customer_field] = STRIPE_CUSTOMER_ID
    for column, name in mapping.items():
        if column not in changed:
            continue
        value = changed[column]
        if name == CREDIT_LIMIT:
            value = _money(value, column)
        elif name == CREDIT_ON_HOLD:
            if not isinstance(value, bool):
                raise InvalidDynamicsColumn("The column creditonhold is not a boolean.")
        elif value is not None and not isinstance(value, str):
            raise InvalidDynamicsColumn(f"The column {column} is not text.")
        values[name] = _without_nul(value).strip() if isinstance(value, str) else value
    modified = columns.get("modifiedon")
    modified_at = modified if isinstance(modified, datetime) else context.operation_created_on
    return CrmAccountChange(
        account_id=account_id,
        message=context.message_name,
        values=values,
        modified_at=trusted_modified_at(modified_at or received_at, received_at),
        operation=(context.operation_id or context.request_id or "unknown").lower(),
        by_holdfast=_by_holdfast(context, options),
        user_id=crm_user(context),
    )


def order_change(context: ExecutionContext, columns: Mapping[str, Any]) -> CrmOrderChange:
    order_id = (context.primary_entity_id or "").lower()
    _printable_id(order_id, "PrimaryEntityId")
    if not order_id:
        raise IncompleteCrmEvent("The salesorder event has no PrimaryEntityId.")
    customer = columns.get("customerid")
    account_id = None
    if isinstance(customer, EntityReference):
        if customer.logical_name not in ("account", ""):
            raise InvalidDynamicsColumn(
                f"The salesorder {order_id} is for a {customer.logical_name}, not an account: Holdfast holds accounts."
            )
        account_id = canonical_account_id(customer.id)
        _printable_id(account_id, "customerid")
    elif customer is not None:
        raise InvalidDynamicsColumn("The column customerid is not a reference to an account.")
    state = columns.get("statecode")
    if state is not None and not isinstance(state, OptionSet):
        raise InvalidDynamicsColumn("The column statecode is not a choice (OptionSetValue).")
    return CrmOrderChange(
        order_id=order_id,
        account_id=account_id,
        state_code=state.value if isinstance(state, OptionSet) else None,
        amount=_money(columns.get("totalamount"), "totalamount"),
        description=_text(columns.get("name")) or _text(columns.get("ordernumber")),
        operation=(context.operation_id or context.request_id or "unknown").lower(),
        user_id=crm_user(context),
    )


def crm_user(context: ExecutionContext) -> str | None:
    """The CRM user behind a delivery: the one who initiated it, else the one the step ran as."""
    user = context.initiating_user_id or context.user_id
    return user.lower() if user else None


def check_delivery(context: ExecutionContext, options: DynamicsOptions) -> None:
    """Refuse at the door what processing could never use: a missing Target, columns of the wrong type."""
    if context.primary_entity_name not in ENTITY_SETS or context.size_exceeded:
        return
    if context.message_name in ("Create", "Update") and not isinstance(context.target, Entity):
        raise InvalidDynamicsColumn(f"The {context.primary_entity_name} {context.message_name} has no Target entity.")
    if context.message_name == "Delete":
        return
    columns = _columns(context)
    if context.primary_entity_name == ACCOUNT_ENTITY:
        account_change(context, columns, _changed(context), options, received_at=datetime.now(UTC))
    else:
        order_change(context, columns)


CRM_ROW = "crm_row"  # the delivery's meta: the row as the Web API read it


def _context(delivery: InboxEvent) -> ExecutionContext:
    stripped = bool(delivery.meta.get("msg_size_exceeded"))
    return parse_context(delivery.payload.encode("utf-8"), size_exceeded=stripped)


def _needs_row(context: ExecutionContext, columns: Mapping[str, Any]) -> bool:
    """A stripped body, or a salesorder change without the columns an order needs (no PostImage)."""
    entity = context.primary_entity_name
    if entity not in ENTITY_SETS or context.message_name not in ("Create", "Update"):
        return False
    return context.size_exceeded or (
        entity == ORDER_ENTITY and any(c not in columns for c in ("customerid", "totalamount", "statecode"))
    )


class DynamicsRowRead:
    """Completes a delivery that lacks columns by reading its row through the Web API (on the CRM's queue)."""

    peer = "crm"

    def __init__(self, reader: RowReader) -> None:
        self.reader = reader

    def needed(self, uow: UnitOfWork, event: InboxEvent) -> bool:
        if CRM_ROW in event.meta:
            return False
        try:
            context = _context(event)
        except Exception:
            return False  # the handler says what is wrong with the body
        return _needs_row(context, _columns(context))

    def complete(self, event: InboxEvent) -> Mapping[str, Any]:
        context = _context(event)
        entity_set = ENTITY_SETS[context.primary_entity_name]
        try:
            row = self.reader.read_row(entity_set, (context.primary_entity_id or "").lower())
        except WebApiError as error:
            if error.retryable:
                raise PeerUnavailable(error.message, retry_after_seconds=error.retry_after_seconds) from None
            raise
        return {CRM_ROW: row}


class DynamicsDeliveries:
    """What a stored Dynamics delivery says: an account or order change, or None (nothing Holdfast reads)."""

    def __init__(self, options: DynamicsOptions) -> None:
        self.options = options

    def translate(self, delivery: InboxEvent) -> CrmChange | None:
        context = _context(delivery)
        entity = context.primary_entity_name
        if entity not in ENTITY_SETS or context.message_name not in ("Create", "Update", "Delete"):
            return None
        if entity == ORDER_ENTITY and context.message_name == "Delete":
            return None
        columns, changed = _columns(context), _changed(context)
        if _needs_row(context, columns):
            read = delivery.meta.get(CRM_ROW)
            if isinstance(read, dict):
                row = _odata_row(read)
                columns = {**row, **columns}
                if context.size_exceeded:
                    changed = dict(row)
            elif context.size_exceeded:
                raise IncompleteCrmEvent(
                    "Dynamics stripped this body (over 256 KB) and the Web API is not configured "
                    "(DYNAMICS_API_URL), so the row cannot be read."
                )
        if entity == ACCOUNT_ENTITY:
            return account_change(context, columns, changed, self.options, received_at=delivery.received_at)
        return order_change(context, columns)
