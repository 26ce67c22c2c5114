"""HTTP to a peer Holdfast depends on: a session that never follows redirects, and TLS failures told apart."""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter

__all__ = ["PeerSession", "is_certificate_failure"]


class PeerSession(requests.Session):
    """A pooled session with a default timeout (MSAL passes none) and no retries of its own.

    It never follows a redirect: a PATCH turned into a GET elsewhere would look written.
    """

    def __init__(self, timeout: tuple[float, float], pool_size: int) -> None:
        super().__init__()
        self.default_timeout = timeout
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        kwargs["allow_redirects"] = False
        return super().request(*args, **kwargs)


def is_certificate_failure(error: BaseException) -> bool:
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
