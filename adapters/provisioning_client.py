"""The provisioning API client: one POST per request, keyed by the request id.

2xx or 409 (already provisioned under this key): provisioned. 3xx: refused for good, naming
the ``Location`` (redirects are never followed: a POST turned into a GET elsewhere would look
provisioned with nothing sent). 429: transient, not again before its ``Retry-After``. Other
4xx: refused for good, with the response's reason kept. 5xx, timeouts and connection errors:
transient.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import requests
import structlog
from requests.adapters import HTTPAdapter

from adapters.retry_after import parse_retry_after
from domain.money import format_amount
from domain.provisioning import Attempt, ProvisioningRequest
from services.ports import SendResult

log = structlog.get_logger(__name__)

MAX_REASON_CHARS = 500


def provisioning_body(request: ProvisioningRequest) -> dict[str, Any]:
    """The JSON body the provisioning API receives."""
    return {
        "request_id": request.request_id,
        "account_id": request.account_id,
        "order_id": request.order_id,
        "amount": format_amount(request.amount, request.currency),
        "currency": request.currency,
        "description": request.description,
    }


class HttpProvisioner:
    def __init__(
        self,
        url: str,
        clock: Callable[[], datetime],
        *,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        pool_size: int = 16,
        auth_header: tuple[str, str] | None = None,
    ) -> None:
        self.url = url
        self.clock = clock
        self.timeout = (connect_timeout, read_timeout)
        self.auth_header = auth_header
        self.pool_size = pool_size
        self._local = threading.local()

    def _session(self) -> requests.Session:
        # One pooled session per thread: connections are reused, sessions are not shared.
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.pool_size, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return session

    def send(self, request: ProvisioningRequest) -> SendResult:
        at = self.clock()
        started = time.perf_counter()

        def took() -> int:
            return int((time.perf_counter() - started) * 1000)

        headers = {"Idempotency-Key": request.request_id}
        if self.auth_header is not None:
            headers[self.auth_header[0]] = self.auth_header[1]
        try:
            response = self._session().post(
                self.url,
                json=provisioning_body(request),
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            return SendResult(Attempt(at, took(), error="timed out waiting for the provisioning API"), "transient")
        except requests.ConnectionError as error:
            return SendResult(Attempt(at, took(), error=f"connection failed: {type(error).__name__}"), "transient")
        except requests.RequestException as error:
            return SendResult(Attempt(at, took(), error=f"request failed: {type(error).__name__}"), "transient")
        status = response.status_code
        if 200 <= status < 300 or status == 409:
            return SendResult(Attempt(at, took(), status=status), "provisioned")
        if 300 <= status < 400:
            location = (response.headers.get("Location") or "no Location").strip()[:MAX_REASON_CHARS]
            reason = (
                f"The provisioning API redirected to {location}; redirects are not followed: "
                "PROVISIONING_URL must be the endpoint itself."
            )
            return SendResult(Attempt(at, took(), status=status, error=reason), "rejected")
        if status == 429:
            wait = parse_retry_after(response.headers.get("Retry-After"))
            return SendResult(Attempt(at, took(), status=status), "transient", retry_after_seconds=wait)
        if 400 <= status < 500:
            reason = (response.text or response.reason or "").strip()[:MAX_REASON_CHARS]
            return SendResult(Attempt(at, took(), status=status, error=reason or None), "rejected")
        return SendResult(Attempt(at, took(), status=status), "transient")


class LoggingProvisioner:
    """With no PROVISIONING_URL: mark requests provisioned, and say so loudly."""

    NOTE = "No PROVISIONING_URL is configured: this request was logged, not sent to a provisioning API."

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock

    def send(self, request: ProvisioningRequest) -> SendResult:
        log.warning(
            "provisioning_not_configured",
            message=self.NOTE,
            request_id=request.request_id,
            account_id=request.account_id,
            body=provisioning_body(request),
        )
        return SendResult(Attempt(self.clock(), 0, note=self.NOTE), "provisioned")
