"""Sending Holdfast's own events: one signed POST to a subscriber (Standard Webhooks, signed by its library)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import requests
from standardwebhooks import Webhook

from adapters.peer_http import PeerSession
from services.ports import SendOutcome


class HttpSubscriber:
    """POSTs the stored body as is, with ``webhook-id``, ``webhook-timestamp`` (this attempt's) and
    ``webhook-signature``; bounded by its timeout, never following a redirect."""

    def __init__(self, timeout: float, pool_size: int = 16) -> None:
        self.session = PeerSession((min(timeout, 5.0), timeout), pool_size)

    def send(self, url: str, secret: str, webhook_id: str, body: str) -> SendOutcome:
        now = datetime.now(UTC)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Holdfast",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(webhook_id, now, body),
        }
        started = time.monotonic()
        try:
            response = self.session.post(url, data=body.encode("utf-8"), headers=headers)
            response.close()
        except requests.Timeout:
            return SendOutcome(None, "The subscriber did not answer in time.", _ms(started))
        except requests.RequestException as error:
            return SendOutcome(None, f"{type(error).__name__}: the subscriber could not be reached.", _ms(started))
        return SendOutcome(response.status_code, None, _ms(started))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
