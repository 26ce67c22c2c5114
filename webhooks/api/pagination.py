"""Opaque cursors for ``{"items": [...], "next_cursor": ...}`` pages."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from webhooks.errors import ApiError

_MAX_ID = 2**63 - 1  # the largest row id any backend stores (BIGINT)


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


def encode_request_cursor(created_at: datetime, request_id: str) -> str:
    """The cursor of a page of requests: the last one's creation time and id."""
    return encode_cursor(json.dumps([created_at.isoformat(), request_id]))


def decode_request_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    raw = decode_cursor(cursor)
    if raw is None:
        return None
    try:
        created, request_id = json.loads(raw)
        return datetime.fromisoformat(created), str(request_id)
    except (ValueError, TypeError):
        raise _invalid() from None
