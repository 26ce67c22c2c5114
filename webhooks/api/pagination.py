"""Opaque cursors for ``{"items": [...], "next_cursor": ...}`` pages."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from domain.provisioning import ProvisioningRequest
from webhooks.errors import ApiError

_MAX_ID = 2**63 - 1  # the largest row id any backend stores (BIGINT)
T = TypeVar("T")


def _invalid() -> ApiError:
    return ApiError(400, "invalid_cursor", "The cursor is not one this API gave out.")


def encode_cursor(value: str | int) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:  # validate=True: characters outside the alphabet are refused, not skipped
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _invalid() from None
    if not raw or "\x00" in raw:  # encode_cursor never gives these out; PostgreSQL refuses NUL
        raise _invalid()
    return raw


def decode_int_cursor(cursor: str | None) -> int | None:
    raw = decode_cursor(cursor)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) > _MAX_ID:
        raise _invalid()
    return int(raw)


def request_cursor(request: ProvisioningRequest) -> str:
    """The cursor after this request in a page of requests: its creation time and id."""
    return encode_cursor(json.dumps([request.created_at.isoformat(), request.request_id]))


def decode_request_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    raw = decode_cursor(cursor)
    if raw is None:
        return None
    try:
        created, request_id = json.loads(raw)
        return datetime.fromisoformat(created), str(request_id)
    except (ValueError, TypeError):
        raise _invalid() from None


def page_of(rows: Sequence[T], limit: int, cursor_of: Callable[[T], str]) -> tuple[list[T], str | None]:
    """The page of ``rows`` read with ``limit + 1`` (one more tells whether there is a next page): its first
    ``limit``, and the cursor of its last one when more follow (None on the last page)."""
    page = list(rows[:limit])
    return page, cursor_of(page[-1]) if len(rows) > limit else None
