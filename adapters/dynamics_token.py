"""The access token Holdfast's application user presents to the Dynamics Web API.

It comes from MSAL's confidential client (OAuth2 client credentials) and is served from MSAL's
in-memory cache (or the ``msal.TokenCache`` given) until it is within five minutes of expiring.
MSAL is configured to contact nothing but the configured authority: no instance discovery
(``instance_discovery=False``; it would otherwise ask ``login.microsoftonline.com`` about an
unfamiliar authority), no regional endpoint or Azure IMDS probe (``azure_region=False``), and
the token endpoint named by the tenant's OpenID configuration must be under the authority, or
it is refused. MSAL uses a requests session of ours, so TLS is verified against
``REQUESTS_CA_BUNDLE`` (requests' default when it is set) exactly as for the Web API calls.

When no token can be had, :class:`NoToken` says why in a sentence, and whether another try may
succeed (the authority throttled, down or unreachable) or not (the configuration is wrong).
"""

from __future__ import annotations

import threading
from typing import Any

import msal
import requests
from msal.exceptions import MsalServiceError

from adapters.peer_http import PeerSession, is_certificate_failure
from adapters.retry_after import parse_retry_after

__all__ = ["PERMANENT_TOKEN_ERRORS", "NoToken", "WebApiToken"]

MAX_DETAIL_CHARS = 300

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


class NoToken(Exception):
    """No token could be had, so nothing was sent; the message is a sentence saying why."""

    def __init__(self, message: str, *, retryable: bool, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.retry_after_seconds = retry_after_seconds


def _first_line(text: str) -> str:
    return " ".join((text.strip().splitlines() or [""])[0].split())[:MAX_DETAIL_CHARS]


class WebApiToken:
    """The bearer token for ``scope``, asked of ``{authority_url}/{tenant_id}`` as ``client_id``; one per client."""

    def __init__(
        self,
        *,
        authority_url: str,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        scope: str,
        timeout: tuple[float, float],
        token_cache: Any = None,
    ) -> None:
        self.authority_url = authority_url
        self.authority = f"{authority_url}/{tenant_id}"
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._token_cache = token_cache
        self._app: Any = None  # msal.ConfidentialClientApplication, built on first use
        self._lock = threading.Lock()  # one token request at a time; cache hits are instant
        self._session = PeerSession(timeout, pool_size=2)
        self._session.hooks["response"].append(self._note_answer)
        self._answer: tuple[int, float | None] | None = None  # status and Retry-After, last answer

    def bearer(self) -> str:
        """A token that is valid for five minutes at least; raises NoToken when none can be had."""
        with self._lock:
            result = self._acquire()
            answer = self._answer
        if not isinstance(result, dict):
            raise self._refusal("MSAL gave no answer", retryable=True)
        token = result.get("access_token")
        if isinstance(token, str) and token:
            return token
        raise self._refused_answer(result, answer)

    def _acquire(self) -> Any:
        """MSAL's answer (cached, or asked of the authority); a failure to ask raises NoToken."""
        self._answer = None
        try:
            if self._app is None:
                self._app = self._build_app()
            return self._app.acquire_token_for_client(scopes=[self._scope])
        except NoToken:
            raise
        except requests.Timeout:
            raise self._refusal("the authority did not answer in time", retryable=True) from None
        except requests.ConnectionError as error:
            if is_certificate_failure(error):
                raise self._refusal(
                    "its TLS certificate is not trusted (check REQUESTS_CA_BUNDLE)", retryable=False
                ) from None
            raise self._refusal(f"could not connect ({type(error).__name__})", retryable=True) from None
        except requests.RequestException as error:
            raise self._refusal(f"the request failed ({type(error).__name__})", retryable=True) from None
        except MsalServiceError as error:  # 5xx from the OpenID configuration or the token endpoint
            answer = self._answer
            said = f"{answer[0]}" if answer else _first_line(str(error))
            raise self._refusal(
                f"the authority answered {said}", retryable=True, retry_after=answer[1] if answer else None
            ) from None
        except ValueError as error:
            # While building the app: no OpenID configuration for this tenant (4xx), or an
            # authority that is not an https URL with a tenant. Later: a token answer that
            # is not JSON (a proxy's error page, most likely): worth another try.
            retryable = self._app is not None
            raise self._refusal(_first_line(str(error)), retryable=retryable) from None

    def _refused_answer(self, result: dict[str, Any], answer: tuple[int, float | None] | None) -> NoToken:
        """The authority answered without a token: why, and whether asking again may help."""
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
        return self._refusal(reason, retryable=retryable, retry_after=retry_after if retryable else None)

    def forget(self) -> None:
        """After a 401: drop cached tokens so that the next call asks for a fresh one."""
        with self._lock:
            if self._app is not None:
                self._app.remove_tokens_for_client()

    def close(self) -> None:
        self._session.close()

    def _build_app(self) -> Any:
        app = msal.ConfidentialClientApplication(
            self._client_id,
            client_credential=self._client_secret,
            authority=self.authority,
            # Talk to the configured authority only: no instance discovery on
            # login.microsoftonline.com, no regional endpoint, no Azure IMDS probe.
            instance_discovery=False,
            validate_authority=False,
            azure_region=False,
            http_client=self._session,
            token_cache=self._token_cache,
        )
        token_endpoint = str(app.authority.token_endpoint)
        if not token_endpoint.lower().startswith(self.authority_url.lower() + "/"):
            raise NoToken(
                f"The OpenID configuration of {self.authority} names a token endpoint outside it "
                f"({token_endpoint}): Holdfast asks for tokens only at DYNAMICS_AUTHORITY_URL.",
                retryable=False,
            )
        return app

    def _note_answer(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        # MSAL turns answers into dicts or exceptions; keep the status and Retry-After it drops.
        self._answer = (response.status_code, parse_retry_after(response.headers.get("Retry-After")))
        return response

    def _refusal(self, reason: str, *, retryable: bool, retry_after: float | None = None) -> NoToken:
        when = "nothing was sent to Dynamics; it will be tried again" if retryable else "nothing was sent to Dynamics"
        return NoToken(
            f"No token for the Dynamics Web API from {self.authority}: {reason}; {when}.",
            retryable=retryable,
            retry_after_seconds=retry_after,
        )
