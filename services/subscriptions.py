"""Subscriptions to Holdfast's own events, for admins: create (the secret shown once), list, delete, read the log."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlsplit

from domain.outgoing import check_event_types
from services.ports import DeliveryAttempt, Subscription, UnitOfWork

MAX_URL_LENGTH = 2000


class InvalidSubscription(ValueError):
    """A URL or list of event types a subscription cannot have; the message is a sentence."""


class SubscriptionNotFound(LookupError):
    def __init__(self, subscription_id: str) -> None:
        super().__init__(f"No subscription {subscription_id} is known.")


def check_url(url: str, *, allow_http: bool) -> str:
    """An absolute https URL (http too when ``allow_http``: OUTGOING_ALLOW_HTTP=true, for local use)."""
    if not url or len(url) > MAX_URL_LENGTH or not url.isprintable() or any(c.isspace() for c in url):
        raise InvalidSubscription(f"url: A URL is 1 to {MAX_URL_LENGTH} printable characters without spaces.")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number
    except ValueError:
        raise InvalidSubscription("url: This is not a URL Holdfast can send to.") from None
    if parts.scheme == "http" and not allow_http:
        raise InvalidSubscription(
            "url: Events are sent only over https; http is allowed for local use with OUTGOING_ALLOW_HTTP=true."
        )
    if parts.scheme not in ("https", "http") or not parts.hostname or port == 0:
        raise InvalidSubscription("url: Give an absolute https URL, such as https://example.com/holdfast-events.")
    if parts.username or parts.password:
        raise InvalidSubscription("url: A URL with a user name or password is refused: put no credentials in it.")
    return url


def new_secret() -> str:
    """``whsec_`` and the base64 of 32 random bytes (the Standard Webhooks secret format)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def create_subscription(
    uow: UnitOfWork, url: str, events: Sequence[str], now: datetime, *, allow_http: bool
) -> Subscription:
    """Subscribe ``url`` to ``events``; the subscription with its secret (shown this once)."""
    checked = check_url(url, allow_http=allow_http)
    try:
        types = check_event_types(list(events))
    except ValueError as error:
        raise InvalidSubscription(f"events: {error}") from None
    subscription = Subscription("sub_" + secrets.token_hex(10), checked, tuple(types), new_secret(), now)
    with uow:
        uow.subscriptions.add(subscription)
        uow.commit()
    return subscription


def list_subscriptions(uow: UnitOfWork, *, after: str | None, limit: int) -> list[Subscription]:
    with uow:
        return uow.subscriptions.page(after, limit)


def get_subscription(uow: UnitOfWork, subscription_id: str) -> Subscription:
    """One subscription (SubscriptionNotFound when there is none, or it was deleted)."""
    with uow:
        subscription = uow.subscriptions.get(subscription_id)
    if subscription is None:
        raise SubscriptionNotFound(subscription_id)
    return subscription


def delete_subscription(uow: UnitOfWork, subscription_id: str, now: datetime) -> Subscription:
    """Stop sending to it at once; what it had not received yet ends (the log stays)."""
    with uow:
        subscription = uow.subscriptions.get(subscription_id)
        if subscription is None:
            raise SubscriptionNotFound(subscription_id)
        uow.subscriptions.delete(subscription_id, now)
        uow.commit()
        return subscription


def delivery_attempts(
    uow: UnitOfWork, subscription_id: str, *, before_id: int | None, limit: int
) -> list[DeliveryAttempt]:
    """The subscription's delivery attempts, newest first."""
    with uow:
        if uow.subscriptions.get(subscription_id) is None:
            raise SubscriptionNotFound(subscription_id)
        return uow.outbox.attempts(subscription_id, before_id, limit)
