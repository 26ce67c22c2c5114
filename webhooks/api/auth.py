"""The admin API's bearer token."""

from __future__ import annotations

import hmac

from flask import request

from webhooks.context import container
from webhooks.errors import ApiError


def require_admin_token() -> None:
    """Every /api route needs ``Authorization: Bearer <ADMIN_API_TOKEN>``, compared in constant time."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    expected = container().settings.admin_api_token
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise ApiError(401, "unauthorized", "Send Authorization: Bearer <ADMIN_API_TOKEN> to use the admin API.")
