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

The token comes from MSAL's confidential client (OAuth2 client credentials, served from MSAL's
in-memory cache until it is within five minutes of expiring). MSAL is configured to contact
nothing but the configured authority: no instance discovery (``instance_discovery=False``;
it would otherwise ask ``login.microsoftonline.com`` about an unfamiliar authority), no
regional endpoint or Azure IMDS probe (``azure_region=False``), and the token endpoint named
by the tenant's OpenID configuration must be under the authority, or it is refused. MSAL uses
a requests session of ours, so TLS is verified against ``REQUESTS_CA_BUNDLE`` (requests'
default when it is set) exactly as for the Web API calls.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msal
import requests
import structlog
from msal.exceptions import MsalServiceError
from requests.adapters import HTTPAdapter

from adapters.retry_after import parse_retry_after
from domain.crm import crm_row_id

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

# OAuth2 error codes (RFC 6749 5.2, and Entra's invalid_resource) that another try will not
# change: the configuration is wrong. Any other error, or a 429 or 5xx, is worth another try.
PERMANENT_TOKEN_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "invalid_resource",
        "access_denied",
    }
)

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

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WebApiSettings | None:
        """Settings from DYNAMICS_* variables; None when DYNAMICS_API_URL is not set.

        With DYNAMICS_API_URL set, a missing tenant, client id or secret is an error naming it.
        """
        api_url = (env.get("DYNAMICS_API_URL") or "").strip()
        if not api_url:
            return None
        names = ("DYNAMICS_TENANT_ID", "DYNAMICS_CLIENT_ID", "DYNAMICS_CLIENT_SECRET")
        missing = [name for name in names if not (env.get(name) or "").strip()]
        if missing:
            raise ValueError(f"DYNAMICS_API_URL is set but {', '.join(missing)} is not: the Web API needs them.")
        return cls(
            api_url=api_url,
            tenant_id=env["DYNAMICS_TENANT_ID"],
            client_id=env["DYNAMICS_CLIENT_ID"].strip(),
            client_secret=env["DYNAMICS_CLIENT_SECRET"].strip(),
            authority_url=(env.get("DYNAMICS_AUTHORITY_URL") or "").strip() or DEFAULT_AUTHORITY_URL,
        )


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


# --------------------------------------------------------------------------- helpers


def normalise_guid(row_id: str) -> str | None:
    """A row id as the Web API wants it in a key (lower case, no braces); None if it is not a GUID."""
    return crm_row_id(row_id)


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


def _redirect(response: requests.Response) -> str:
    location = (response.headers.get("Location") or "no Location").strip()[:MAX_DETAIL_CHARS]
    return f"a redirect to {location}, not followed (DYNAMICS_API_URL must be the environment's own address)"


def _first_line(text: str) -> str:
    return " ".join((text.strip().splitlines() or [""])[0].split())[:MAX_DETAIL_CHARS]


def _is_certificate_failure(error: BaseException) -> bool:
    """A TLS verification failure (the server is not trusted): retrying will not fix it."""
    seen: set[int] = set()
    pending: list[object] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if "CERTIFICATE_VERIFY_FAILED" in str(current) or "certificate verify failed" in str(current):
            return True
        if isinstance(current, BaseException):
            # requests wraps urllib3's MaxRetryError, whose .reason is the ssl error
            pending.extend(x for x in (current.__cause__, current.__context__, getattr(current, "reason", None)) if x)
            pending.extend(current.args)
    return False


class _Session(requests.Session):
    """A pooled session with a default timeout (MSAL passes none) and no retries of its own."""

    def __init__(self, timeout: tuple[float, float], pool_size: int) -> None:
        super().__init__()
        self.default_timeout = timeout
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        # Never follow a redirect: a PATCH turned into a GET elsewhere would look written.
        kwargs["allow_redirects"] = False
        return super().request(*args, **kwargs)


# --------------------------------------------------------------------------- the client


class DynamicsWebApi:
    """One per process: the token is cached in it (or in ``token_cache``, an ``msal.TokenCache``)."""

    def __init__(self, settings: WebApiSettings, *, token_cache: Any = None, pool_size: int = 16) -> None:
        self.settings = settings
        self.pool_size = pool_size
        self._token_cache = token_cache
        self._app: Any = None  # msal.ConfidentialClientApplication, built on first use
        self._token_lock = threading.Lock()  # one token request at a time; cache hits are instant
        self._token_session = _Session(settings.timeout, pool_size=2)
        self._token_session.hooks["response"].append(self._note_token_response)
        self._token_answer: tuple[int, float | None] | None = None  # status and Retry-After, last answer
        self._local = threading.local()

    # -- public API

    def set_credit_on_hold(self, account_id: str, on_hold: bool) -> WriteOutcome:
        """One PATCH of the account's ``creditonhold``; never raises for HTTP or network failures."""
        guid = normalise_guid(account_id)
        if guid is None:
            return self._outcome(
                account_id,
                on_hold,
                "failed",
                None,
                None,
                f"Account {account_id!r} is not a CRM account id (a GUID): nothing was sent to Dynamics.",
            )
        url = f"{self.settings.api_url}{API_PATH}/accounts({guid})"
        what = f"creditonhold={'true' if on_hold else 'false'} on account {guid}"
        try:
            response = self._send(
                "PATCH",
                url,
                json_body={"creditonhold": bool(on_hold)},
                headers={"Content-Type": "application/json", "If-Match": "*"},
                what=f"writing {what}",
            )
        except WebApiError as error:
            outcome: Outcome = "retry" if error.retryable else "failed"
            return self._outcome(guid, on_hold, outcome, error.status, error.retry_after_seconds, error.message)

        status = response.status_code
        detail = _dynamics_error(response) if status >= 300 else ""
        said = f' ("{detail}")' if detail else ""
        if 200 <= status < 300:
            return self._outcome(guid, on_hold, "written", status, None, f"Dynamics accepted {what} ({status}).")
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is None:
                retry_after = DEFAULT_RETRY_AFTER_SECONDS
            return self._outcome(
                guid,
                on_hold,
                "retry",
                status,
                retry_after,
                f"Dynamics answered 429 (too many requests) to {what}: "
                f"it will be sent again in {retry_after:g} s{said}.",
            )
        if 300 <= status < 400:
            return self._outcome(
                guid, on_hold, "failed", status, None, f"Dynamics answered {status}: {_redirect(response)} ({what})."
            )
        if status >= 500:
            return self._outcome(
                guid,
                on_hold,
                "retry",
                status,
                parse_retry_after(response.headers.get("Retry-After")),
                f"Dynamics answered {status} to {what}: it will be sent again{said}.",
            )
        if status == 404:
            message = (
                f"Dynamics answered 404: account {guid} does not exist in the CRM, so {what} was not written{said}."
            )
        elif status == 412:
            message = (
                f"Dynamics answered 412 (precondition failed) to {what} with If-Match: *: "
                f"the account was not updated (the PATCH never creates a row){said}."
            )
        elif status == 401:
            self._forget_tokens()
            message = (
                f"Dynamics answered 401: it did not accept Holdfast's token for {what} "
                f"(is the application user set up in this environment?){said}."
            )
        elif status == 403:
            message = (
                f"Dynamics answered 403: Holdfast's application user may not write {what} "
                f"(check its security role){said}."
            )
        else:
            message = f"Dynamics answered {status} to {what}: it was not written{said}."
        return self._outcome(guid, on_hold, "failed", status, None, message)

    def read_row(self, entity_set: str, row_id: str, *, select: Sequence[str] | None = None) -> dict[str, Any]:
        """``GET {api}/api/data/v9.2/<entity_set>(<row_id>)``: the row as JSON. Raises ``WebApiError``."""
        if not _ENTITY_SET.fullmatch(entity_set):
            raise WebApiError(f"{entity_set!r} is not a Web API entity set name.", retryable=False)
        guid = normalise_guid(row_id)
        if guid is None:
            raise WebApiError(f"{row_id!r} is not a CRM row id (a GUID): nothing was read.", retryable=False)
        params = {"$select": ",".join(select)} if select else None
        what = f"{entity_set}({guid})"
        response = self._send("GET", f"{self.settings.api_url}{API_PATH}/{what}", params=params, what=f"reading {what}")
        status = response.status_code
        if status == 200:
            try:
                row = response.json()
            except ValueError:
                raise WebApiError(
                    f"Dynamics answered 200 to reading {what} with a body that is not JSON.",
                    retryable=True,
                    status=status,
                ) from None
            if not isinstance(row, dict):
                raise WebApiError(
                    f"Dynamics answered 200 to reading {what} with JSON that is not a row.", retryable=False, status=200
                )
            return row
        if 300 <= status < 400:
            raise WebApiError(
                f"Dynamics answered {status} to reading {what}: {_redirect(response)}.", retryable=False, status=status
            )
        detail = _dynamics_error(response)
        said = f' ("{detail}")' if detail else ""
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise WebApiError(
                f"Dynamics answered 429 (too many requests) to reading {what}{said}.",
                retryable=True,
                status=status,
                retry_after_seconds=DEFAULT_RETRY_AFTER_SECONDS if retry_after is None else retry_after,
            )
        if status >= 500:
            raise WebApiError(
                f"Dynamics answered {status} to reading {what}{said}.",
                retryable=True,
                status=status,
                retry_after_seconds=parse_retry_after(response.headers.get("Retry-After")),
            )
        if status == 404:
            raise WebApiError(
                f"Dynamics answered 404: {what} does not exist in the CRM{said}.", retryable=False, status=404
            )
        if status == 401:
            self._forget_tokens()
        raise WebApiError(f"Dynamics answered {status} to reading {what}{said}.", retryable=False, status=status)

    def close(self) -> None:
        self._token_session.close()
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is not None:
            session.close()

    # -- HTTP

    def _session(self) -> requests.Session:
        # One pooled session per thread for the Web API calls (as the provisioning client does).
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = _Session(self.settings.timeout, pool_size=self.pool_size)
            self._local.session = session
        return session

    def _send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send one request with a bearer token; network failures become ``WebApiError``."""
        token = self._token()
        all_headers = {**ODATA_HEADERS, **(headers or {}), "Authorization": f"Bearer {token}"}
        data = None if json_body is None else json.dumps(json_body, separators=(",", ":"))
        try:
            return self._session().request(
                method, url, params=params, data=data, headers=all_headers, timeout=self.settings.timeout
            )
        except requests.Timeout:
            raise WebApiError(
                f"Dynamics did not answer within {self.settings.timeout[1]:g} s while {what}.", retryable=True
            ) from None
        except requests.ConnectionError as error:
            if _is_certificate_failure(error):
                raise WebApiError(
                    f"The Dynamics Web API's TLS certificate is not trusted while {what} "
                    "(check REQUESTS_CA_BUNDLE): nothing was sent.",
                    retryable=False,
                ) from None
            raise WebApiError(
                f"Could not connect to Dynamics while {what} ({type(error).__name__}).", retryable=True
            ) from None
        except requests.RequestException as error:
            raise WebApiError(
                f"Request to Dynamics failed while {what} ({type(error).__name__}).", retryable=True
            ) from None

    # -- the token (MSAL)

    def _build_app(self) -> Any:
        settings = self.settings
        app = msal.ConfidentialClientApplication(
            settings.client_id,
            client_credential=settings.client_secret,
            authority=settings.authority,
            # Talk to the configured authority only: no instance discovery on
            # login.microsoftonline.com, no regional endpoint, no Azure IMDS probe.
            instance_discovery=False,
            validate_authority=False,
            azure_region=False,
            http_client=self._token_session,
            token_cache=self._token_cache,
        )
        token_endpoint = str(app.authority.token_endpoint)
        if not token_endpoint.lower().startswith(settings.authority_url.lower() + "/"):
            raise WebApiError(
                f"The OpenID configuration of {settings.authority} names a token endpoint outside it "
                f"({token_endpoint}): Holdfast asks for tokens only at DYNAMICS_AUTHORITY_URL.",
                retryable=False,
            )
        return app

    def _note_token_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        # MSAL turns answers into dicts or exceptions; keep the status and Retry-After it drops.
        self._token_answer = (response.status_code, parse_retry_after(response.headers.get("Retry-After")))
        return response

    def _token(self) -> str:
        with self._token_lock:
            self._token_answer = None
            try:
                if self._app is None:
                    self._app = self._build_app()
                result = self._app.acquire_token_for_client(scopes=[self.settings.scope])
            except WebApiError:
                raise
            except requests.Timeout:
                raise self._token_error("the authority did not answer in time", retryable=True) from None
            except requests.ConnectionError as error:
                if _is_certificate_failure(error):
                    raise self._token_error(
                        "its TLS certificate is not trusted (check REQUESTS_CA_BUNDLE)", retryable=False
                    ) from None
                raise self._token_error(f"could not connect ({type(error).__name__})", retryable=True) from None
            except requests.RequestException as error:
                raise self._token_error(f"the request failed ({type(error).__name__})", retryable=True) from None
            except MsalServiceError as error:  # 5xx from the OpenID configuration or the token endpoint
                answer = self._token_answer
                said = f"{answer[0]}" if answer else _first_line(str(error))
                raise self._token_error(
                    f"the authority answered {said}", retryable=True, retry_after=answer[1] if answer else None
                ) from None
            except ValueError as error:
                # While building the app: no OpenID configuration for this tenant (4xx), or an
                # authority that is not an https URL with a tenant. Later: a token answer that
                # is not JSON (a proxy's error page, most likely): worth another try.
                retryable = self._app is not None
                raise self._token_error(_first_line(str(error)), retryable=retryable) from None
            answer = self._token_answer

        if not isinstance(result, dict):
            raise self._token_error("MSAL gave no answer", retryable=True)
        token = result.get("access_token")
        if isinstance(token, str) and token:
            return token
        error_code = str(result.get("error") or "no access_token")
        description = _first_line(str(result.get("error_description") or ""))
        status, retry_after = answer if answer is not None else (None, None)
        throttled_or_down = status is not None and (status in (408, 429) or status >= 500)
        retryable = throttled_or_down or error_code not in PERMANENT_TOKEN_ERRORS
        reason = f"it answered {status} {error_code}" if status else f"it answered {error_code}"
        if description:
            reason += f" ({description})"
        if error_code in ("invalid_client", "unauthorized_client"):
            reason += ": check DYNAMICS_CLIENT_ID and DYNAMICS_CLIENT_SECRET"
        raise self._token_error(reason, retryable=retryable, retry_after=retry_after if retryable else None)

    def _token_error(self, reason: str, *, retryable: bool, retry_after: float | None = None) -> WebApiError:
        when = "nothing was sent to Dynamics; it will be tried again" if retryable else "nothing was sent to Dynamics"
        return WebApiError(
            f"No token for the Dynamics Web API from {self.settings.authority}: {reason}; {when}.",
            retryable=retryable,
            retry_after_seconds=retry_after,
        )

    def _forget_tokens(self) -> None:
        """After a 401: drop cached tokens so that the next call asks for a fresh one."""
        with self._token_lock:
            if self._app is not None:
                self._app.remove_tokens_for_client()

    # -- outcomes

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
