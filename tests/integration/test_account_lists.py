"""Lists of accounts and an account's page: the reason filter across pages, who placed a hold, paging, query counts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event

from domain.holds import HoldReason, WantedHold
from domain.provisioning import ProvisioningRequest, RequestState
from domain.timeline import Change, TimelineEntry
from tests.conftest import post_stripe, process_pending, stripe_fixture
from tests.integration.test_dashboard import as_role, post_form, sign_in
from webhooks.dashboard import views

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def held(container: Any, account_id: str, reason: HoldReason, *, manual_too: bool = False) -> None:
    """An account held for ``reason`` by a Stripe event as the domain records it (and by hand: ``manual_too``).

    Written straight to the database: listing reads what is stored, and nothing re-evaluates these.
    """
    change = Change(container.clock(), "stripe", f"stripe:evt_{account_id}")
    with container.uow() as uow:
        account, _ = uow.accounts.create_or_lock(account_id, change.at)
        entries = account.settle_hold(reason, WantedHold(reason, change.cause, "test"), change)
        if manual_too:
            entries += account.place_manual_hold("call them", Change(change.at, "user:fiona", "api"))
        uow.accounts.save(account, change.at)
        uow.timeline.append(account_id, entries)
        uow.commit()


@pytest.fixture
def mixed(client: Any, admin: dict[str, str], container: Any) -> dict[str, list[str]]:
    """Eight accounts, in id order: non_payment on every other one, a manual hold on some, and one not held."""
    by_reason: dict[str, list[str]] = {"non_payment": [], "manual": []}
    for n in range(7):
        account_id = f"acct-{n}"
        if n % 2 == 0:
            held(container, account_id, HoldReason.NON_PAYMENT, manual_too=n == 4)
            by_reason["non_payment"].append(account_id)
        else:
            assert client.put(f"/api/accounts/{account_id}", json={}, headers=admin).status_code == 201
            if n == 1:
                body = {"reason": "manual", "note": "call them"}
                assert client.post(f"/api/accounts/{account_id}/holds", json=body, headers=admin).status_code == 201
        if n in (1, 4):
            by_reason["manual"].append(account_id)
    assert client.put("/api/accounts/acct-9", json={}, headers=admin).status_code == 201  # in good standing
    return by_reason


def every_page(client: Any, admin: dict[str, str], **query: Any) -> list[list[str]]:
    """The account ids of each page of GET /api/accounts, following next_cursor."""
    pages, cursor = [], None
    while True:
        response = client.get(
            "/api/accounts", query_string={**query, **({"cursor": cursor} if cursor else {})}, headers=admin
        )
        assert response.status_code == 200, response.json
        pages.append([a["account_id"] for a in response.json["items"]])
        cursor = response.json["next_cursor"]
        if cursor is None:
            return pages


def test_the_api_lists_the_accounts_held_for_a_reason_across_pages(
    client: Any, admin: dict[str, str], mixed: dict[str, list[str]]
) -> None:
    assert mixed == {"non_payment": ["acct-0", "acct-2", "acct-4", "acct-6"], "manual": ["acct-1", "acct-4"]}
    pages = every_page(client, admin, on_hold="true", reason="non_payment", limit=2)
    assert pages == [["acct-0", "acct-2"], ["acct-4", "acct-6"]]
    assert every_page(client, admin, reason="manual", limit=1) == [["acct-1"], ["acct-4"]]
    assert every_page(client, admin, reason="dispute", limit=2) == [[]]
    held = [a for page in every_page(client, admin, on_hold="true", limit=3) for a in page]
    assert held == ["acct-0", "acct-1", "acct-2", "acct-4", "acct-6"]
    both = client.get("/api/accounts", query_string={"reason": "manual"}, headers=admin).json["items"]
    assert [h["reason"] for h in both[1]["holds"]] == ["manual", "non_payment"], "an account shows all its holds"


def test_an_unknown_reason_is_400_with_a_sentence(client: Any, admin: dict[str, str]) -> None:
    response = client.get("/api/accounts", query_string={"on_hold": "true", "reason": "late"}, headers=admin)
    assert response.status_code == 400 and response.json["error"] == "validation_error"
    assert response.json["message"].startswith("reason: There is no hold reason late; it is one of credit_review")
    without = client.get("/api/accounts", query_string={"on_hold": "false", "reason": "manual"}, headers=admin)
    assert without.status_code == 400 and "on_hold=false" in without.json["message"]


def test_the_dashboard_filters_by_reason_across_pages(
    client: Any, mixed: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "PAGE", 2)
    sign_in(client)
    seen, path = [], "/?reason=non_payment"
    while path:
        html = client.get(path).get_data(as_text=True)
        seen.append(re.findall(r'href="/accounts/(acct-\d)"', html))
        following = re.search(r'href="(/\?[^"]+)">Next page', html)
        path = following.group(1).replace("&amp;", "&") if following else ""
    assert seen == [["acct-0", "acct-2"], ["acct-4", "acct-6"]]
    manual = client.get("/?reason=manual").get_data(as_text=True)
    assert re.findall(r'href="/accounts/(acct-\d)"', manual) == ["acct-1", "acct-4"]
    assert "Next page" not in manual


def test_the_home_list_names_the_person_for_a_hold_or_pause_by_hand_and_links_the_event_otherwise(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    account = {"name": "Acme", "stripe_customer_id": "cus_acme", "currency": "usd"}
    assert client.put("/api/accounts/acme", json=account, headers=admin).status_code == 201
    failed = stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_acme", id="in_acme")
    assert post_stripe(client, failed).status_code == 200
    assert process_pending(container) == ["processed"]
    sign_in(client)
    as_role(client, container, "finance", name="fiona")
    post_form(client, "/accounts/acme", "/accounts/acme/holds", note="Cheque bounced")
    post_form(client, "/accounts/acme", "/accounts/acme/pause", until="2099-01-31", note="Promised to pay")
    html = client.get("/").get_data(as_text=True)
    manual, non_payment = html.split("tag-manual", 1)[1].split("tag-non_payment", 1)
    cause_cell = re.compile(r'data-label="Cause or person">(.*?)</td>', re.S)
    assert re.sub(r"<[^>]+>", "", cause_cell.search(manual).group(1)).strip() == "fiona"  # type: ignore[union-attr]
    event_cell = cause_cell.search(non_payment).group(1)  # type: ignore[union-attr]
    assert 'href="/accounts/acme#timeline"' in event_cell and f"stripe:{failed['id']}" in event_cell
    assert "paused until 2099-01-31 by fiona" in html
    account = client.get("/api/accounts/acme", headers=admin).json
    placed = {h["reason"]: (h["cause"], h["placed_by"]) for h in account["holds"]}
    assert placed == {"manual": ("api", "user:fiona"), "non_payment": (f"stripe:{failed['id']}", "stripe")}
    assert account["enforcement_paused_by"] == "user:fiona"
    page = client.get("/accounts/acme").get_data(as_text=True)
    text = re.sub(r"<[^>]+>", "", page)
    assert 'by <span class="person">fiona</span>' in page and "paused until 2099-01-31 00:00 UTC by fiona:" in text


@contextmanager
def counted_queries(container: Any) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(container.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(container.engine, "before_cursor_execute", count)


def test_a_page_of_held_accounts_takes_a_few_queries_not_a_few_per_account(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    for n in range(30):
        customer = {"stripe_customer_id": f"cus_many{n:02d}"} if n % 2 else {}
        assert client.put(f"/api/accounts/many-{n:02d}", json=customer, headers=admin).status_code == 201
        body = {"reason": "manual", "note": "review"}
        assert client.post(f"/api/accounts/many-{n:02d}/holds", json=body, headers=admin).status_code == 201
    with counted_queries(container) as few:
        one = client.get("/api/accounts", query_string={"on_hold": "true", "limit": 1}, headers=admin)
    with counted_queries(container) as many:
        thirty = client.get("/api/accounts", query_string={"on_hold": "true", "limit": 30}, headers=admin)
    assert len(one.json["items"]) == 1 and len(thirty.json["items"]) == 30
    assert len(many) == len(few), "the same queries for 30 accounts as for one:\n" + "\n".join(many)
    assert len(many) <= 10
    sign_in(client)
    with counted_queries(container) as home:
        assert "many-29" in client.get("/").get_data(as_text=True)
    assert len(home) <= 10, "\n".join(home)


def add_requests(container: Any, account_id: str, count: int) -> list[str]:
    """``count`` provisioned orders, a minute apart; their ids, newest first."""
    with container.uow() as uow:
        for n in range(count):
            created = T0 + timedelta(minutes=n)
            request = ProvisioningRequest(
                f"req-{n:03d}",
                account_id,
                f"SO-{n:03d}",
                Decimal("1.00"),
                "usd",
                None,
                RequestState.PROVISIONED,
                created,
            )
            uow.requests.add(request, created)
        uow.commit()
    return [f"req-{n:03d}" for n in reversed(range(count))]


def add_timeline(container: Any, account_id: str, count: int) -> None:
    change = Change(T0, "user:admin", "api")
    with container.uow() as uow:
        uow.timeline.append(account_id, [TimelineEntry.of(change, "noted", n=f"entry-{n:03d}") for n in range(count)])
        uow.commit()


def test_an_account_page_shows_its_newest_requests_and_timeline_and_pages_to_older_ones(
    client: Any, admin: dict[str, str], container: Any
) -> None:
    assert client.put("/api/accounts/busy", json={"name": "Busy", "currency": "usd"}, headers=admin).status_code == 201
    requests = add_requests(container, "busy", 60)
    add_timeline(container, "busy", 120)
    sign_in(client)
    html = client.get("/accounts/busy").get_data(as_text=True)
    shown = re.findall(r"<small class=\"muted\">(SO-\d+)</small>", html)
    assert shown == [r.replace("req-", "SO-") for r in requests[:50]], "the newest 50 orders, newest first"
    entries = re.findall(r"entry-(\d{3})", html)
    assert entries == [f"{n:03d}" for n in range(119, 69, -1)], "the newest 50 entries"
    assert "Older orders" in html and "Older entries" in html and "Newest" not in html

    older = re.search(r'href="([^"]+)"[^>]*>Older entries', html).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    assert older.endswith("#timeline")
    second = client.get(older).get_data(as_text=True)
    assert re.findall(r"entry-(\d{3})", second) == [f"{n:03d}" for n in range(69, 19, -1)]
    assert re.findall(r"<small class=\"muted\">(SO-\d+)</small>", second) == shown, "the orders stay on their page"
    third_path = re.search(r'href="([^"]+)"[^>]*>Older entries', second).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    third = client.get(third_path).get_data(as_text=True)
    assert re.findall(r"entry-(\d{3})", third) == [f"{n:03d}" for n in range(19, -1, -1)]
    assert "Older entries" not in third and "Newest" in third

    older_orders = re.search(r'href="([^"]+)"[^>]*>Older orders', html).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    last = client.get(older_orders).get_data(as_text=True)
    assert re.findall(r"<small class=\"muted\">(SO-\d+)</small>", last) == [f"SO-{n:03d}" for n in range(9, -1, -1)]
    assert "Older orders" not in last
    assert client.get("/accounts/busy?timeline_before=!!!").status_code == 400
    assert client.get("/accounts/busy?requests_before=bm9wZQ").status_code == 400
