"""Stripe's API through stripe-python: look-ups for disputes, the events list for reconciliation.

The API base is configurable (``STRIPE_API_BASE``) so tests run against a local server.
Failures are sorted into transient (retry later) and permanent (the event fails, replayable).
"""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import Callable, Generator, Iterable, Sequence
from datetime import UTC, datetime
from itertools import islice
from typing import Any, cast

import stripe

from services.ports import ListedEvent, PeerUnavailable

# Holdfast's own calls ask for this version, whatever stripe-python's default becomes after an
# upgrade: objects it reads (charges, payment intents) keep the shapes it was tested with.
# Webhook and listed events come in the version of the endpoint or of the day they happened.
API_VERSION = "2026-10-28.endive"
EVENTS_PAGE_SIZE = 100  # the largest page Stripe serves
MAX_TYPES_PER_LISTING = 20  # Stripe takes at most 20 types[] in one listing
ANCHOR_WINDOW_SECONDS = 600  # how far before the start an event may anchor an ending_before listing


class StripeLookupFailed(Exception):
    """A look-up that failed for good (not found, refused); the message is a sentence."""


class StripeUnavailable(PeerUnavailable):
    """Stripe could not be reached, did not answer in time or asked us to slow down: try again later."""


def _transient(error: stripe.StripeError) -> bool:
    status = getattr(error, "http_status", None)
    return isinstance(error, stripe.APIConnectionError | stripe.RateLimitError) or (
        status is not None and status >= 500
    )


class StripeApi:
    """Stripe's API with short timeouts and no retries of its own: the caller's task retries, with backoff."""

    def __init__(
        self,
        api_key: str,
        api_base: str | None = None,
        *,
        max_network_retries: int = 0,
        timeout: tuple[float, float] = (3.05, 10.0),
    ) -> None:
        self.client = stripe.StripeClient(
            api_key,
            stripe_version=API_VERSION,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=max_network_retries,
            http_client=stripe.RequestsClient(timeout=timeout),
        )

    def _call(self, what: str, call: Any) -> Any:
        try:
            return call()
        except stripe.StripeError as error:
            if _transient(error):
                raise StripeUnavailable(f"Stripe did not answer the {what}: {type(error).__name__}.") from None
            status = getattr(error, "http_status", None)
            raise StripeLookupFailed(
                f"Stripe refused the {what} (HTTP {status}): {error.user_message or error}"
            ) from None

    def customer_of_dispute(self, dispute: dict[str, Any]) -> str:
        """The customer a dispute is about, found through its charge or payment intent.

        The customer is the ``customer`` of either, or where that is null (current API versions,
        a customer represented by an Account) its ``customer_account``.
        """
        charge = dispute.get("charge")
        charge_id = charge.get("id") if isinstance(charge, dict) else charge
        if isinstance(charge, dict) and (customer := payer_of(charge)):
            return customer
        if isinstance(charge_id, str) and charge_id:
            found = self._call(f"look-up of charge {charge_id}", lambda: self.client.v1.charges.retrieve(charge_id))
            if customer := payer_of(found.to_dict()):
                return customer
        intent = dispute.get("payment_intent")
        intent_id = intent.get("id") if isinstance(intent, dict) else intent
        if isinstance(intent, dict) and (customer := payer_of(intent)):
            return customer
        if isinstance(intent_id, str) and intent_id:
            found = self._call(
                f"look-up of payment intent {intent_id}", lambda: self.client.v1.payment_intents.retrieve(intent_id)
            )
            if customer := payer_of(found.to_dict()):
                return customer
        raise StripeLookupFailed(
            f"The dispute {dispute.get('id')} leads to no customer through its charge or payment intent."
        )

    def events_since(
        self,
        created_gte: datetime,
        types: Sequence[str],
        *,
        pace: Callable[[], None] = lambda: None,
        page_size: int = EVENTS_PAGE_SIZE,
    ) -> Generator[list[ListedEvent], None, None]:
        """Events of these types created at or after ``created_gte``, oldest first, a page at a time.

        Stripe lists newest first; stripe-python pages toward newer events when a listing is
        given ``ending_before`` (``ListObject.previous_page``, what ``auto_paging_iter`` uses
        then), so each listing starts at its oldest page and walks up, one page in memory.
        ``pace`` is called before every request but the first (rate limiting). More than 20
        types are listed 20 at a time and merged by ``created``. Raises ``StripeUnavailable``
        or ``StripeLookupFailed``.
        """
        wanted = sorted(set(types))
        if not wanted:
            raise ValueError("Name the event types to list: without them Stripe lists every event.")
        since = math.floor(created_gte.timestamp())
        paced = _Paced(pace)
        listings = [
            self._ascending(since, wanted[i : i + MAX_TYPES_PER_LISTING], paced, page_size)
            for i in range(0, len(wanted), MAX_TYPES_PER_LISTING)
        ]
        if len(listings) == 1:
            yield from listings[0]
            return
        merged = heapq.merge(*(_each(listing) for listing in listings), key=lambda event: event.created)
        while page := list(islice(merged, page_size)):
            yield page

    def _ascending(
        self, since: int, types: list[str], pace: Callable[[], None], page_size: int
    ) -> Generator[list[ListedEvent], None, None]:
        """One listing, oldest first: find the page it starts with, then page toward newer events."""
        in_range: dict[str, Any] = {"created": {"gte": since}, "types": types, "limit": page_size}
        page = self._list_events(pace, in_range)  # the newest events of the range
        if not page.has_more:  # the whole range in one page: the common case
            if page.data:
                yield _oldest_first(page)
            return
        # ending_before needs an event to start from: the newest one just before the range...
        before = self._list_events(
            pace, {"created": {"gte": since - ANCHOR_WINDOW_SECONDS, "lt": since}, "types": types, "limit": 1}
        )
        if before.data:
            page = self._list_events(pace, {"types": types, "limit": page_size, "ending_before": before.data[0].id})
        else:  # ...or else the oldest page of the range itself, found by paging down to it
            while page.has_more:
                page = self._next_page(pace, page.next_page)
            yield _oldest_first(page)
            page = self._list_events(pace, {**in_range, "ending_before": page.data[0].id})
        while page.data:
            yield _oldest_first(page)
            if not page.has_more:
                return
            page = self._next_page(pace, page.previous_page)

    def _list_events(self, pace: Callable[[], None], params: dict[str, Any]) -> Any:
        pace()
        return self._call("listing of events", lambda: self.client.v1.events.list(params=cast(Any, params)))

    def _next_page(self, pace: Callable[[], None], fetch: Callable[[], Any]) -> Any:
        pace()
        return self._call("listing of events", fetch)


def payer_of(obj: dict[str, Any]) -> str | None:
    """The customer of a charge or payment intent: ``customer``, else ``customer_account``."""
    for key in ("customer", "customer_account"):
        value = obj.get(key)
        value = value.get("id") if isinstance(value, dict) else value
        if isinstance(value, str) and value:
            return value
    return None


class _Paced:
    """Calls ``pace`` before every request but the first."""

    def __init__(self, pace: Callable[[], None]) -> None:
        self.pace, self.started = pace, False

    def __call__(self) -> None:
        if self.started:
            self.pace()
        self.started = True


def _each(pages: Iterable[list[ListedEvent]]) -> Generator[ListedEvent, None, None]:
    for page in pages:
        yield from page


def _oldest_first(page: Any) -> list[ListedEvent]:
    """A page (newest first) as listed events, oldest first, each with its JSON as Stripe sent it."""
    return [_listed(item) for item in reversed(_raw_items(page))]


def _raw_items(page: Any) -> list[Any]:
    body = getattr(page.last_response, "data", None)
    items = body.get("data") if isinstance(body, dict) else None
    ids = [getattr(event, "id", None) for event in page.data]
    if isinstance(items, list) and [item.get("id") if isinstance(item, dict) else None for item in items] == ids:
        return items
    return [event.to_dict(for_json=True) for event in page.data]


def _listed(item: Any) -> ListedEvent:
    event_id, event_type, created = item.get("id"), item.get("type"), item.get("created")
    if not (isinstance(event_id, str) and event_id and isinstance(event_type, str) and event_type):
        raise StripeLookupFailed("Stripe listed an event without an id or a type.")
    if isinstance(created, bool) or not isinstance(created, int):
        raise StripeLookupFailed(f"Stripe listed the event {event_id} without a created time.")
    return ListedEvent(event_id, event_type, datetime.fromtimestamp(created, UTC), json.dumps(item))
