"""/api/accounts: create, read, list, manual holds and the timeline. Thin: parse, call a service, answer."""

from __future__ import annotations

from typing import Any

from domain.access import Right
from domain.account import MAX_ACCOUNT_ID_LENGTH, HoldAlreadyPlaced, NoSuchHold, canonical_account_id
from domain.holds import HoldReason
from domain.money import TooManyDecimals
from services import accounts as account_service
from webhooks.api import Blueprint
from webhooks.api.auth import current_identity, requires
from webhooks.api.pagination import decode_cursor, decode_int_cursor, encode_cursor, page_of
from webhooks.api.schemas import (
    AccountListQuerySchema,
    AccountPageSchema,
    AccountPutSchema,
    AccountSchema,
    ErrorSchema,
    HoldCreateSchema,
    HoldLiftQuerySchema,
    NoteBodySchema,
    PageQuerySchema,
    PauseSchema,
    TimelinePageSchema,
)
from webhooks.context import container
from webhooks.errors import ApiError

blp = Blueprint("accounts", __name__, url_prefix="/api/accounts", description="Accounts, holds and timelines")


def checked_account_id(account_id: str) -> str:
    """The account id of a path, checked and in its one spelling (a GUID in lower case, without braces)."""
    if not account_id.strip() or len(account_id) > MAX_ACCOUNT_ID_LENGTH or not account_id.isprintable():
        raise ApiError(
            400, "invalid_account_id", f"An account id is 1 to {MAX_ACCOUNT_ID_LENGTH} printable characters."
        )
    return canonical_account_id(account_id)


def _not_found(error: account_service.AccountNotFound) -> ApiError:
    return ApiError(404, "account_not_found", str(error))


def required_note(*given: str | None, where: str = "in the JSON body") -> str:
    """The note a hold, dispute or pause change needs: the first one given that is not blank (400 if none)."""
    for note in given:
        if note is not None and note.strip():
            return note
    raise ApiError(
        400,
        "validation_error",
        f"note: A note is required {where}: say why; the timeline keeps it with the name of your token.",
    )


def _actor() -> str:
    return current_identity().actor


@blp.route("/<account_id>", methods=["PUT"])
@blp.arguments(AccountPutSchema)
@blp.response(200, AccountSchema, description="The account was updated.")
@blp.alt_response(201, schema=AccountSchema, description="The account was created.")
@blp.alt_response(400, schema=ErrorSchema)
@blp.alt_response(409, schema=ErrorSchema, description="The Stripe customer maps to another account.")
@requires(Right.MANAGE_ACCOUNTS)
def put_account(changes: dict[str, Any], account_id: str) -> tuple[Any, int]:
    """Create or update an account (for sources other than the CRM)."""
    c = container()
    if changes.get("currency"):
        changes["currency"] = changes["currency"].lower()
    try:
        view, created = account_service.put_account(
            c.uow(), checked_account_id(account_id), changes, c.context, c.clock(), actor=_actor()
        )
    except account_service.CustomerAlreadyMapped as error:
        raise ApiError(409, "customer_already_mapped", str(error)) from None
    except TooManyDecimals as error:
        raise ApiError(400, "validation_error", f"credit_limit: {error}") from None
    return view, 201 if created else 200


@blp.route("/<account_id>", methods=["GET"])
@blp.response(200, AccountSchema)
@blp.alt_response(404, schema=ErrorSchema)
@requires(Right.READ)
def get_account(account_id: str) -> Any:
    """An account with its holds, exposure and what its holds do now."""
    c = container()
    try:
        return account_service.view_account(c.uow(), checked_account_id(account_id), c.context, c.clock())
    except account_service.AccountNotFound as error:
        raise _not_found(error) from None


@blp.route("", methods=["GET"])
@blp.arguments(AccountListQuerySchema, location="query")
@blp.response(200, AccountPageSchema)
@blp.alt_response(400, schema=ErrorSchema, description="A bad limit, cursor or reason.")
@requires(Right.READ)
def list_accounts(query: dict[str, Any]) -> dict[str, Any]:
    """Accounts by id; ``on_hold=true``: those with any hold (paused ones included); ``reason=``: held for it."""
    c = container()
    limit = query["limit"]
    reason = query.get("reason")
    try:
        views = account_service.list_accounts(
            c.uow(),
            on_hold=query.get("on_hold"),
            reason=HoldReason(reason) if reason is not None else None,
            after=decode_cursor(query.get("cursor")),
            limit=limit + 1,
            ctx=c.context,
            now=c.clock(),
        )
    except account_service.ReasonNeedsHolds as error:
        raise ApiError(400, "validation_error", f"reason: {error}") from None
    page, cursor = page_of(views, limit, lambda view: encode_cursor(view.account_id))
    return {"items": page, "next_cursor": cursor}


@blp.route("/<account_id>/holds", methods=["POST"])
@blp.arguments(HoldCreateSchema)
@blp.response(201, AccountSchema)
@blp.alt_response(404, schema=ErrorSchema)
@blp.alt_response(409, schema=ErrorSchema, description="The account already has a manual hold.")
@requires(Right.MANAGE_HOLDS)
def place_hold(body: dict[str, Any], account_id: str) -> Any:
    """Finance places a manual hold (the only reason the API may set)."""
    c = container()
    account_id = checked_account_id(account_id)
    note = required_note(body.get("note"))
    try:
        return account_service.place_manual_hold(c.uow(), account_id, note, c.context, c.clock(), actor=_actor())
    except account_service.AccountNotFound as error:
        raise _not_found(error) from None
    except HoldAlreadyPlaced as error:
        raise ApiError(409, "hold_exists", str(error)) from None


@blp.route("/<account_id>/holds/manual", methods=["DELETE"])
@blp.arguments(NoteBodySchema)
@blp.arguments(HoldLiftQuerySchema, location="query")
@blp.response(200, AccountSchema)
@blp.alt_response(404, schema=ErrorSchema)
@requires(Right.MANAGE_HOLDS)
def lift_hold(body: dict[str, Any], query: dict[str, Any], account_id: str) -> Any:
    """Finance lifts its manual hold, with a note (in the body or as ``?note=``); holds of other reasons stay."""
    c = container()
    account_id = checked_account_id(account_id)
    note = _delete_note(body, query)
    try:
        return account_service.lift_manual_hold(c.uow(), account_id, note, c.context, c.clock(), actor=_actor())
    except account_service.AccountNotFound as error:
        raise _not_found(error) from None
    except NoSuchHold as error:
        raise ApiError(404, "hold_not_found", str(error)) from None


@blp.route("/<account_id>/timeline", methods=["GET"])
@blp.arguments(PageQuerySchema, location="query")
@blp.response(200, TimelinePageSchema)
@blp.alt_response(404, schema=ErrorSchema)
@requires(Right.READ)
def timeline(query: dict[str, Any], account_id: str) -> dict[str, Any]:
    """The account's audit trail, newest first."""
    c = container()
    limit = query["limit"]
    try:
        records = account_service.account_timeline(
            c.uow(), checked_account_id(account_id), before_id=decode_int_cursor(query.get("cursor")), limit=limit + 1
        )
    except account_service.AccountNotFound as error:
        raise _not_found(error) from None
    page, cursor = page_of(records, limit, lambda record: encode_cursor(record.id))
    return {"items": [r.entry for r in page], "next_cursor": cursor}


def _delete_note(body: dict[str, Any], query: dict[str, Any]) -> str:
    return required_note(body.get("note"), query.get("note"), where="in the JSON body or as ?note=")


@blp.route("/<account_id>/holds/dispute", methods=["DELETE"])
@blp.arguments(NoteBodySchema)
@blp.arguments(HoldLiftQuerySchema, location="query")
@blp.response(200, AccountSchema)
@blp.alt_response(404, schema=ErrorSchema)
@blp.alt_response(409, schema=ErrorSchema, description="A dispute is still open.")
@requires(Right.MANAGE_HOLDS)
def lift_dispute_hold(body: dict[str, Any], query: dict[str, Any], account_id: str) -> Any:
    """Finance lifts the hold of lost disputes, with a note (a dispute still open keeps holding)."""
    c = container()
    account_id = checked_account_id(account_id)
    note = _delete_note(body, query)
    try:
        return account_service.lift_dispute_hold(c.uow(), account_id, c.context, c.clock(), actor=_actor(), note=note)
    except account_service.AccountNotFound as error:
        raise _not_found(error) from None
    except NoSuchHold as error:
        raise ApiError(404, "hold_not_found", str(error)) from None
    except account_service.DisputeHoldOpen as error:
        raise ApiError(409, "dispute_open", str(error)) from None


@blp.route("/<account_id>/enforcement-pause", methods=["PUT"])
@blp.arguments(PauseSchema)
@blp.response(200, AccountSchema)
@blp.alt_response(404, schema=ErrorSchema)
@requires(Right.MANAGE_HOLDS)
def pause_enforcement(body: dict[str, Any], account_id: str) -> Any:
    """Pause enforcement until a date: holds stay visible but park and block nothing."""
    c = container()
    account_id = checked_account_id(account_id)
    note = required_note(body.get("note"))
    try:
        return account_service.pause_enforcement(
            c.uow(), account_id, body["until"], note, c.context, c.clock(), actor=_actor()
        )
    except account_service.AccountNotFound as error:
        raise _not_found(error) from None
    except account_service.PauseRefused as error:
        raise ApiError(400, "invalid_pause", str(error)) from None


@blp.route("/<account_id>/enforcement-pause", methods=["DELETE"])
@blp.arguments(NoteBodySchema)
@blp.arguments(HoldLiftQuerySchema, location="query")
@blp.response(200, AccountSchema)
@blp.alt_response(404, schema=ErrorSchema)
@requires(Right.MANAGE_HOLDS)
def end_pause(body: dict[str, Any], query: dict[str, Any], account_id: str) -> Any:
    """End the pause now, with a note (in the body or as ``?note=``): holds take effect again."""
    c = container()
    account_id = checked_account_id(account_id)
    note = _delete_note(body, query)
    try:
        return account_service.end_enforcement_pause(
            c.uow(), account_id, c.context, c.clock(), actor=_actor(), note=note
        )
    except account_service.AccountNotFound as error:
        raise _not_found(error) from None
    except account_service.PauseRefused as error:
        raise ApiError(404, "not_paused", str(error)) from None
