"""Opaque cursors for ``{"items": [...], "next_cursor": ...}`` pages."""

from __future__ import annotations

import base64
import binascii

from webhooks.errors import ApiError


def encode_cursor(value: str | int) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(400, "invalid_cursor", "The cursor is not one this API gave out.") from None


def decode_int_cursor(cursor: str | None) -> int | None:
    raw = decode_cursor(cursor)
    if raw is None:
        return None
    if not raw.isdigit():
        raise ApiError(400, "invalid_cursor", "The cursor is not one this API gave out.")
    return int(raw)
