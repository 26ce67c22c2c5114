"""The dashboard's pages and actions. Thin: read or act through the services, render, redirect."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from werkzeug.exceptions import HTTPException
from wtforms import ValidationError

from domain.access import Right, person_of
from domain.account import HoldAlreadyPlaced, NoSuchHold
from domain.holds import HoldReason
from domain.money import format_amount
from domain.provisioning import RequestState, TransitionRefused
from domain.timeline import Change
from services import accounts as account_service
from services import inbox as inbox_service
from services import orders as order_service
from webhooks.api.accounts import checked_account_id
from webhooks.api.pagination import decode_int_cursor, decode_request_cursor, encode_cursor, page_of, request_cursor
from webhooks.context import container
from webhooks.dashboard.signin import (
    _sign_in,
    allowed,
    current_person,
    sign_in_failed,
    signed_in,
    start_session,
)
from webhooks.errors import ApiError

bp = Blueprint(
    "dashboard", __name__, template_folder="templates", static_folder="static", static_url_path="/static/dashboard"
)

PAGE = 100
ACCOUNT_PAGE = 50  # requests and timeline entries per page on an account's page
NOTE_MAX = 2000
SECURITY_HEADERS = {
    # Only the app's own files: no inline script or style, no frames, forms post to this site only.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@bp.after_request
def _security_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    if session.get("name"):
        response.headers["Cache-Control"] = "no-store"  # signed-in pages stay out of shared caches
    return response


@bp.before_request
def _check_csrf() -> None:
    if request.method == "POST":
        validate_csrf_or_refuse()


def validate_csrf_or_refuse() -> None:
    try:
        validate_csrf(request.form.get("csrf_token"))
    except ValidationError as error:
        raise CSRFError(
            f"This form has expired or did not come from this site ({error}); reload the page and try again."
        ) from None


@bp.app_context_processor
def _everywhere() -> dict[str, Any]:
    return {"person": current_person(), "Right": Right, "csrf_token": generate_csrf}


@bp.app_template_filter("amount")
def _amount(value: Decimal | None, currency: str | None = None) -> str:
    """Money as finance reads it: the currency's places, thousands separated ("5,000.00")."""
    return "—" if value is None else format(Decimal(format_amount(Decimal(value), currency)), ",f")


@bp.app_template_filter("person")
def _person(actor: str | None) -> str | None:
    """The person's name when a person acted (``user:fiona``); None when a source or Holdfast did."""
    return person_of(actor)


def _problem(status: int, sentence: str) -> tuple[str, int]:
    return render_template("dashboard/problem.html", status=status, sentence=sentence), status


@bp.errorhandler(ApiError)
def _api_error(error: ApiError) -> tuple[str, int]:
    return _problem(error.status, error.message)


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> tuple[str, int]:
    return _problem(error.code or 400, error.description or "The request was refused.")


# -- signing in and out ---------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        return render_template("dashboard/login.html", failed=False)
    identity = _sign_in(request.form.get("token", "").strip())
    if identity is None:
        sign_in_failed()
        return render_template("dashboard/login.html", failed=True), 401
    start_session(identity)
    return redirect(_same_site(request.args.get("next", "")) or url_for("dashboard.home"), 303)


def _same_site(target: str) -> str | None:
    """A path on this site to go back to after signing in; anything else (another site) is ignored."""
    if target.startswith("/") and not target.startswith(("//", "/\\")) and target.isprintable():
        return target
    return None


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    session.clear()
    return redirect(url_for("dashboard.login"), 303)


# -- pages ----------------------------------------------------------------------------------


@bp.route("/", methods=["GET"])
@signed_in
def home() -> Any:
    """Who is on hold and why, filtered by reason."""
    chosen = request.args.get("reason") or None
    if chosen is not None and chosen not in tuple(HoldReason):
        raise ApiError(400, "invalid_reason", f"There is no hold reason {chosen!r}; choose one of the list.")
    reason = HoldReason(chosen) if chosen is not None else None
    after = request.args.get("after") or None
    c = container()
    views = account_service.list_accounts(
        c.uow(), on_hold=True, reason=reason, after=after, limit=PAGE + 1, ctx=c.context, now=c.clock()
    )
    page, next_after = page_of(views, PAGE, lambda view: view.account_id)
    return render_template(
        "dashboard/home.html",
        held=page,
        reason=reason,
        reasons=list(HoldReason),
        next_after=next_after,
    )


@bp.route("/accounts/<account_id>", methods=["GET"])
@signed_in
def account(account_id: str) -> Any:
    """An account: holds, pause, standing, requests with attempts, timeline (each newest first, a page at a time).

    ``requests_before`` and ``timeline_before`` are the API's cursors: the page of each that ends there.
    """
    c = container()
    account_id = checked_account_id(account_id)
    requests_before = request.args.get("requests_before") or None
    timeline_before = request.args.get("timeline_before") or None
    try:
        view = account_service.view_account(c.uow(), account_id, c.context, c.clock())
        entries = account_service.account_timeline(
            c.uow(), account_id, before_id=decode_int_cursor(timeline_before), limit=ACCOUNT_PAGE + 1
        )
    except account_service.AccountNotFound as error:
        raise ApiError(404, "account_not_found", str(error)) from None
    requests = order_service.list_requests(
        c.uow(),
        state=None,
        account_id=account_id,
        after=decode_request_cursor(requests_before),
        limit=ACCOUNT_PAGE + 1,
        newest_first=True,
    )
    shown, older_requests = page_of(requests, ACCOUNT_PAGE, request_cursor)
    timeline, older_timeline = page_of(entries, ACCOUNT_PAGE, lambda record: encode_cursor(record.id))
    return render_template(
        "dashboard/account.html",
        account=view,
        requests=shown,
        timeline=[record.entry for record in timeline],
        pages={"requests_before": requests_before, "timeline_before": timeline_before},
        older_requests=older_requests,
        older_timeline=older_timeline,
        manual=any(h.reason == HoldReason.MANUAL for h in view.holds),
        dispute=any(h.reason == HoldReason.DISPUTE for h in view.holds),
        today=c.clock().date().isoformat(),
    )


@bp.route("/requests/failed", methods=["GET"])
@signed_in
def failed_requests() -> Any:
    """Failed requests, oldest first, a page at a time (``after``: the API's cursor of the last one shown)."""
    c = container()
    after = request.args.get("after") or None
    requests = order_service.list_requests(
        c.uow(), state=RequestState.FAILED, account_id=None, after=decode_request_cursor(after), limit=PAGE + 1
    )
    shown, more = page_of(requests, PAGE, request_cursor)
    return render_template("dashboard/requests.html", requests=shown, after=after, next_after=more)


@bp.route("/events/failed", methods=["GET"])
@signed_in
def failed_events() -> Any:
    """Failed events, oldest first, a page at a time (``after``: the API's cursor of the last one shown)."""
    c = container()
    after = request.args.get("after") or None
    events = inbox_service.list_events(c.uow(), "failed", decode_int_cursor(after), PAGE + 1)
    shown, more = page_of(events, PAGE, lambda event: encode_cursor(event.id))
    return render_template("dashboard/events.html", events=shown, after=after, next_after=more)


# -- actions (each a POST form with csrf_token, calling the service the API route calls) ------


def _note(form: Mapping[str, str]) -> str:
    """The form's note, checked for shape; whether one is required is the services' rule (NoteRequired)."""
    note = form.get("note", "").strip()
    if len(note) > NOTE_MAX or "\x00" in note:
        raise ApiError(400, "invalid_note", f"A note is up to {NOTE_MAX} characters of text.")
    return note


@bp.errorhandler(account_service.NoteRequired)
def _note_required(error: account_service.NoteRequired) -> tuple[str, int]:
    return _problem(400, str(error))


def _back_to(account_id: str, message: str) -> Any:
    flash(message)
    return redirect(url_for("dashboard.account", account_id=account_id), 303)


@bp.route("/accounts/<account_id>/holds", methods=["POST"])
@signed_in
def place_hold(account_id: str) -> Any:
    person = allowed(Right.MANAGE_HOLDS)
    c, account_id = container(), checked_account_id(account_id)
    try:
        account_service.place_manual_hold(
            c.uow(), account_id, _note(request.form), c.context, c.clock(), actor=person.actor
        )
    except account_service.AccountNotFound as error:
        raise ApiError(404, "account_not_found", str(error)) from None
    except HoldAlreadyPlaced as error:
        raise ApiError(409, "hold_exists", str(error)) from None
    return _back_to(account_id, "Manual hold placed.")


@bp.route("/accounts/<account_id>/holds/manual/lift", methods=["POST"])
@signed_in
def lift_hold(account_id: str) -> Any:
    person = allowed(Right.MANAGE_HOLDS)
    c, account_id = container(), checked_account_id(account_id)
    try:
        account_service.lift_manual_hold(
            c.uow(), account_id, _note(request.form), c.context, c.clock(), actor=person.actor
        )
    except account_service.AccountNotFound as error:
        raise ApiError(404, "account_not_found", str(error)) from None
    except NoSuchHold as error:
        raise ApiError(404, "hold_not_found", str(error)) from None
    return _back_to(account_id, "Manual hold lifted.")


def _pause_until(form: Mapping[str, str]) -> datetime:
    try:
        day = date.fromisoformat(form.get("until", ""))
    except ValueError:
        raise ApiError(400, "invalid_date", "Give the day the pause ends, as a date (YYYY-MM-DD).") from None
    return datetime.combine(day, time(0, 0), tzinfo=UTC)


@bp.route("/accounts/<account_id>/pause", methods=["POST"])
@signed_in
def pause(account_id: str) -> Any:
    person = allowed(Right.MANAGE_HOLDS)
    c, account_id = container(), checked_account_id(account_id)
    until, note = _pause_until(request.form), _note(request.form)
    try:
        account_service.pause_enforcement(c.uow(), account_id, until, note, c.context, c.clock(), actor=person.actor)
    except account_service.AccountNotFound as error:
        raise ApiError(404, "account_not_found", str(error)) from None
    except account_service.PauseRefused as error:
        raise ApiError(400, "invalid_pause", str(error)) from None
    return _back_to(account_id, f"Enforcement paused until {until:%Y-%m-%d} 00:00 UTC.")


@bp.route("/accounts/<account_id>/pause/end", methods=["POST"])
@signed_in
def end_pause(account_id: str) -> Any:
    person = allowed(Right.MANAGE_HOLDS)
    c, account_id = container(), checked_account_id(account_id)
    note = _note(request.form)
    try:
        account_service.end_enforcement_pause(c.uow(), account_id, c.context, c.clock(), actor=person.actor, note=note)
    except account_service.AccountNotFound as error:
        raise ApiError(404, "account_not_found", str(error)) from None
    except account_service.PauseRefused as error:
        raise ApiError(404, "not_paused", str(error)) from None
    return _back_to(account_id, "Pause ended: the holds take effect again.")


@bp.route("/accounts/<account_id>/holds/dispute/lift", methods=["POST"])
@signed_in
def lift_dispute_hold(account_id: str) -> Any:
    person = allowed(Right.MANAGE_HOLDS)
    c, account_id = container(), checked_account_id(account_id)
    note = _note(request.form)
    try:
        account_service.lift_dispute_hold(c.uow(), account_id, c.context, c.clock(), actor=person.actor, note=note)
    except account_service.AccountNotFound as error:
        raise ApiError(404, "account_not_found", str(error)) from None
    except NoSuchHold as error:
        raise ApiError(404, "hold_not_found", str(error)) from None
    except account_service.DisputeHoldOpen as error:
        raise ApiError(409, "dispute_open", str(error)) from None
    return _back_to(account_id, "Dispute hold lifted.")


@bp.route("/requests/<request_id>/retry", methods=["POST"])
@signed_in
def retry_request(request_id: str) -> Any:
    person = allowed(Right.RETRY_REQUESTS)
    c = container()
    if not request_id.isprintable():
        raise ApiError(400, "invalid_request_id", "A request id has no control characters.")
    try:
        retried = order_service.retry_request(
            c.uow(), c.context, request_id, Change(c.clock(), person.actor, account_service.API_CAUSE)
        )
    except order_service.RequestNotFound as error:
        raise ApiError(404, "not_found", str(error)) from None
    except TransitionRefused as error:
        raise ApiError(409, "not_retryable", str(error)) from None
    return _back_to(retried.account_id, f"Request {request_id} sent again ({retried.state}).")


@bp.route("/events/replay", methods=["POST"])
@signed_in
def replay_event() -> Any:
    allowed(Right.OPERATE)
    source, event_id = request.form.get("source", ""), request.form.get("event_id", "")
    if not (source and event_id and source.isprintable() and event_id.isprintable()):
        raise ApiError(400, "invalid_event_id", "An event's source and id are printable text.")
    c = container()
    try:
        event = inbox_service.replay(c.uow(), c.publisher, source, event_id, c.clock())
    except inbox_service.NotReplayable as error:
        raise ApiError(409, "not_replayable", str(error)) from None
    if event is None:
        raise ApiError(404, "event_not_found", f"No {source} event {event_id} is stored.")
    flash(f"Event {event_id} queued again.")
    return redirect(url_for("dashboard.failed_events"), 303)
