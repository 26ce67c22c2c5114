"""The Dynamics 365 Web API client: write an account's credit hold back, read one row.

``set_credit_on_hold`` sends one ``PATCH {api}/api/data/v9.2/accounts(<id>)`` with
``{"creditonhold": <bool>}`` and ``If-Match: *`` (an update only: the PATCH never creates a
row), and says what happened as a ``WriteOutcome`` ("written", "retry" or "failed", with a
sentence for the account's timeline). It never raises for HTTP or network failures: 429 gives
"retry" with the server's ``Retry-After``; 5xx, timeouts and connection errors give "retry"
(the caller backs off); 404, 412 and the other 4xx give "failed".

``read_row`` reads ``GET {api}/api/data/v9.2/<entity set>(<id>)`` (a webhook body sent with
``x-ms-dynamics-msg-size-exceeded`` is completed this way) and raises ``WebApiError``, with
``retryable``, when it cannot.

What every call comes to is sorted by one function, :func:`classify`: ok (2xx); transient (429,
not again before its ``Retry-After``; 5xx; a timeout or a failed connection; a token the
authority cannot give just now); permanent (the other 4xx, an untrusted TLS certificate, a
token refused for a wrong configuration); redirect refused (3xx: redirects are never followed).
Each call only words its sentence. The token is :class:`adapters.dynamics_token.WebApiToken`'s.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import requests
import structlog

from adapters.dynamics_token import NoToken, WebApiToken
from adapters.peer_http import PeerSession, is_certificate_failure
from adapters.retry_after import parse_retry_after
from domain.account import guid

__all__ = ["Answer", "DynamicsWebApi", "WebApiError", "WebApiSettings", "WriteOutcome", "classify"]

log = structlog.get_logger(__name__)

API_PATH = "/api/data/v9.2"
DEFAULT_AUTHORITY_URL = "https://login.microsoftonline.com"
DEFAULT_RETRY_AFTER_SECONDS = 10.0  # a 429 without Retry-After (Dynamics always sends one)
MAX_DETAIL_CHARS = 300

ODATA_HEADERS = {
    "Accept": "application/json",
    "OData-MaxVersion": "4.0",
    "OData-Version": "4.0",
}

_ENTITY_SET = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


# --------------------------------------------------------------------------- settings and results


@dataclass(frozen=True)
class WebApiSettings:
    api_url: str  # DYNAMICS_API_URL, e.g. https://contoso.crm.dynamics.com
    tenant_id: str  # DYNAMICS_TENANT_ID
    client_id: str  # DYNAMICS_CLIENT_ID
    client_secret: str = field(repr=False)  # DYNAMICS_CLIENT_SECRET; never in a repr or a log
    authority_url: str = DEFAULT_AUTHORITY_URL  # DYNAMICS_AUTHORITY_URL
    timeout: tuple[float, float] = (3.05, 10.0)  # connect, read (seconds)

    def __post_init__(self) -> None:
        for name in ("api_url", "tenant_id", "client_id", "client_secret", "authority_url"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"WebApiSettings.{name} is empty.")
        for name in ("api_url", "authority_url"):
            value = getattr(self, name).strip().rstrip("/")
            if not value.lower().startswith("https://"):
                raise ValueError(f"WebApiSettings.{name} must be an https:// URL (got {value!r}).")
            object.__setattr__(self, name, value)
        object.__setattr__(self, "tenant_id", self.tenant_id.strip().strip("/"))

    @property
    def authority(self) -> str:
        return f"{self.authority_url}/{self.tenant_id}"

    @property
    def token_endpoint(self) -> str:
        """Where the token comes from (as the tenant's OpenID configuration should say)."""
        return f"{self.authority}/oauth2/v2.0/token"

    @property
    def scope(self) -> str:
        return f"{self.api_url}/.default"


Outcome = Literal["written", "retry", "failed"]


@dataclass(frozen=True)
class WriteOutcome:
    outcome: Outcome  # "written" | "retry" | "failed"
    status: int | None  # the Web API's HTTP status, when it answered
    retry_after_seconds: float | None  # for "retry": how long the server asked us to wait, if it did
    message: str  # a sentence for the account's timeline


class WebApiError(Exception):
    """The Web API (or the token endpoint) could not give what was asked."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status
        self.retry_after_seconds = retry_after_seconds


# --------------------------------------------------------------------------- the classifier

Verdict = Literal["ok", "transient", "permanent", "redirect_refused"]


@dataclass(frozen=True)
class Answer:
    """What one call came to, as :func:`classify` sorted it."""

    verdict: Verdict
    status: int | None = None  # the Web API's HTTP status, when it answered
    retry_after_seconds: float | None = None  # transient: not again before this, when it was said
    failure: str = ""  # no HTTP answer: the sentence saying why; a redirect refused: what was refused
    response: requests.Response | None = None  # the answer, when there was one

    @cached_property
    def said(self) -> str:
        """The Web API's own words about an error, quoted for a sentence (``' ("...")'``), or ""."""
        if self.response is None or self.verdict == "redirect_refused":
            return ""
        detail = _dynamics_error(self.response)
        return f' ("{detail}")' if detail else ""


def classify(outcome: requests.Response | requests.RequestException | NoToken, *, doing: str, wait: float) -> Answer:
    """Sort an answer (or why there is none) into ok, transient, permanent or redirect refused.

    ``doing`` says what the call was doing ("reading accounts(...)"); ``wait`` is the read timeout.
    """
    if isinstance(outcome, NoToken):
        verdict: Verdict = "transient" if outcome.retryable else "permanent"
        return Answer(verdict, retry_after_seconds=outcome.retry_after_seconds, failure=outcome.message)
    if isinstance(outcome, requests.Timeout):
        return Answer("transient", failure=f"Dynamics did not answer within {wait:g} s while {doing}.")
    if isinstance(outcome, requests.ConnectionError) and is_certificate_failure(outcome):
        return Answer(
            "permanent",
            failure=f"The Dynamics Web API's TLS certificate is not trusted while {doing} "
            "(check REQUESTS_CA_BUNDLE): nothing was sent.",
        )
    if isinstance(outcome, requests.ConnectionError):
        return Answer("transient", failure=f"Could not connect to Dynamics while {doing} ({type(outcome).__name__}).")
    if isinstance(outcome, requests.RequestException):
        return Answer("transient", failure=f"Request to Dynamics failed while {doing} ({type(outcome).__name__}).")

    status = outcome.status_code
    if 200 <= status < 300:
        return Answer("ok", status, response=outcome)
    if 300 <= status < 400:
        location = (outcome.headers.get("Location") or "no Location").strip()[:MAX_DETAIL_CHARS]
        refused = f"a redirect to {location}, not followed (DYNAMICS_API_URL must be the environment's own address)"
        return Answer("redirect_refused", status, failure=refused, response=outcome)
    retry_after = parse_retry_after(outcome.headers.get("Retry-After"))
    if status == 429:
        wait_for = DEFAULT_RETRY_AFTER_SECONDS if retry_after is None else retry_after
        return Answer("transient", status, wait_for, response=outcome)
    if status >= 500:
        return Answer("transient", status, retry_after, response=outcome)
    return Answer("permanent", status, response=outcome)


def _dynamics_error(response: requests.Response) -> str:
    """The Web API's own error message ({"error": {"code", "message"}}), or the start of the body."""
    text = ""
    try:
        body = response.json()
    except ValueError:
        if "html" not in response.headers.get("Content-Type", "").lower():  # no error pages on a timeline
            text = (response.text or "").strip()
    else:
        if isinstance(body, dict):
            error = body.get("error")
            if isinstance(error, dict):
                text = str(error.get("message") or error.get("code") or "")
            elif isinstance(body.get("error_description"), str):
                text = str(body["error_description"])
            elif error:
                text = str(error)
    text = " ".join(text.split())
    return text[:MAX_DETAIL_CHARS]


# --------------------------------------------------------------------------- the client

_WRITE_OUTCOMES: dict[Verdict, Outcome] = {
    "ok": "written",
    "transient": "retry",
    "permanent": "failed",
    "redirect_refused": "failed",
}


class DynamicsWebApi:
    """One per process: the token is cached in it (or in ``token_cache``, an ``msal.TokenCache``)."""

    def __init__(self, settings: WebApiSettings, *, token_cache: Any = None, pool_size: int = 16) -> None:
        self.settings = settings
        self.pool_size = pool_size
        self._token = WebApiToken(
            authority_url=settings.authority_url,
            tenant_id=settings.tenant_id,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            scope=settings.scope,
            timeout=settings.timeout,
            token_cache=token_cache,
        )
        self._local = threading.local()

    def set_credit_on_hold(self, account_id: str, on_hold: bool) -> WriteOutcome:
        """One PATCH of the account's ``creditonhold``; never raises for HTTP or network failures."""
        row = guid(account_id)
        if row is None:
            message = f"Account {account_id!r} is not a CRM account id (a GUID): nothing was sent to Dynamics."
            return self._outcome(account_id, on_hold, "failed", None, None, message)
        what = f"creditonhold={'true' if on_hold else 'false'} on account {row}"
        answer = self._call(
            "PATCH",
            f"{self.settings.api_url}{API_PATH}/accounts({row})",
            doing=f"writing {what}",
            json_body={"creditonhold": bool(on_hold)},
            headers={"Content-Type": "application/json", "If-Match": "*"},
        )
        outcome = _WRITE_OUTCOMES[answer.verdict]
        return self._outcome(
            row, on_hold, outcome, answer.status, answer.retry_after_seconds, _write_sentence(answer, what, row)
        )

    def read_row(self, entity_set: str, row_id: str, *, select: Sequence[str] | None = None) -> dict[str, Any]:
        """``GET {api}/api/data/v9.2/<entity_set>(<row_id>)``: the row as JSON. Raises ``WebApiError``."""
        if not _ENTITY_SET.fullmatch(entity_set):
            raise WebApiError(f"{entity_set!r} is not a Web API entity set name.", retryable=False)
        row = guid(row_id)
        if row is None:
            raise WebApiError(f"{row_id!r} is not a CRM row id (a GUID): nothing was read.", retryable=False)
        what = f"{entity_set}({row})"
        params = {"$select": ",".join(select)} if select else None
        answer = self._call("GET", f"{self.settings.api_url}{API_PATH}/{what}", doing=f"reading {what}", params=params)
        if answer.status != 200 or answer.response is None:
            raise _read_error(answer, what)
        try:
            found = answer.response.json()
        except ValueError:
            raise WebApiError(
                f"Dynamics answered 200 to reading {what} with a body that is not JSON.", retryable=True, status=200
            ) from None
        if not isinstance(found, dict):
            raise WebApiError(
                f"Dynamics answered 200 to reading {what} with JSON that is not a row.", retryable=False, status=200
            )
        return found

    def close(self) -> None:
        self._token.close()
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is not None:
            session.close()

    def _session(self) -> requests.Session:
        # One pooled session per thread for the Web API calls (as the provisioning client does).
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = PeerSession(self.settings.timeout, pool_size=self.pool_size)
            self._local.session = session
        return session

    def _call(
        self,
        method: str,
        url: str,
        *,
        doing: str,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """Send one request with a bearer token and classify what came of it; never raises for HTTP or network."""
        data = None if json_body is None else json.dumps(json_body, separators=(",", ":"))
        try:
            token = self._token.bearer()
            all_headers = {**ODATA_HEADERS, **(headers or {}), "Authorization": f"Bearer {token}"}
            response = self._session().request(
                method, url, params=params, data=data, headers=all_headers, timeout=self.settings.timeout
            )
        except (NoToken, requests.RequestException) as error:
            return classify(error, doing=doing, wait=self.settings.timeout[1])
        if response.status_code == 401:
            self._token.forget()  # the next call asks for a fresh token
        return classify(response, doing=doing, wait=self.settings.timeout[1])

    def _outcome(
        self,
        account_id: str,
        on_hold: bool,
        outcome: Outcome,
        status: int | None,
        retry_after: float | None,
        message: str,
    ) -> WriteOutcome:
        emit = log.info if outcome == "written" else log.warning
        emit(
            "dynamics_credit_hold_write",
            account_id=account_id,
            on_hold=on_hold,
            outcome=outcome,
            status=status,
            retry_after_seconds=retry_after,
            message=message,
        )
        return WriteOutcome(outcome, status, retry_after, message)


# --------------------------------------------------------------------------- the sentences


def _write_sentence(answer: Answer, what: str, row: str) -> str:
    """The timeline's sentence about writing ``what`` (creditonhold on account ``row``)."""
    status, said = answer.status, answer.said
    if status is None:
        return answer.failure
    if answer.verdict == "ok":
        return f"Dynamics accepted {what} ({status})."
    if answer.verdict == "redirect_refused":
        return f"Dynamics answered {status}: {answer.failure} ({what})."
    if status == 429:
        return (
            f"Dynamics answered 429 (too many requests) to {what}: "
            f"it will be sent again in {answer.retry_after_seconds:g} s{said}."
        )
    if answer.verdict == "transient":
        return f"Dynamics answered {status} to {what}: it will be sent again{said}."
    if status == 404:
        return f"Dynamics answered 404: account {row} does not exist in the CRM, so {what} was not written{said}."
    if status == 412:
        return (
            f"Dynamics answered 412 (precondition failed) to {what} with If-Match: *: "
            f"the account was not updated (the PATCH never creates a row){said}."
        )
    if status == 401:
        return (
            f"Dynamics answered 401: it did not accept Holdfast's token for {what} "
            f"(is the application user set up in this environment?){said}."
        )
    if status == 403:
        return (
            f"Dynamics answered 403: Holdfast's application user may not write {what} (check its security role){said}."
        )
    return f"Dynamics answered {status} to {what}: it was not written{said}."


def _read_error(answer: Answer, what: str) -> WebApiError:
    """Why reading ``what`` gave no row, as the error ``read_row`` raises."""
    status, said = answer.status, answer.said
    if status is None:
        message = answer.failure
    elif answer.verdict == "redirect_refused":
        message = f"Dynamics answered {status} to reading {what}: {answer.failure}."
    elif status == 429:
        message = f"Dynamics answered 429 (too many requests) to reading {what}{said}."
    elif status == 404:
        message = f"Dynamics answered 404: {what} does not exist in the CRM{said}."
    else:
        message = f"Dynamics answered {status} to reading {what}{said}."
    return WebApiError(
        message,
        retryable=answer.verdict == "transient",
        status=status,
        retry_after_seconds=answer.retry_after_seconds,
    )
