"""GET /api/policy and POST /api/policy/what-if (and `policy what-if FILE`): what a candidate would change.

Accounts are put on hold the real way (a mapped Stripe customer, a failed payment through the
webhook, processed as the worker does); the what-if must report them, page by page, reading the
database in pages of accounts, and leave every row as it was.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from adapters.policy_file import PolicyError, parse_policy, policy_document, policy_from_document
from domain.policy import HoldPolicy
from services import what_if as what_if_service
from tests.bad_input import NothingChanges, refused
from tests.conftest import post_stripe, process_pending, stripe_fixture
from tests.integration.test_roles_and_tokens import bearer, make_token

TWO_ATTEMPTS = {"non_payment": {"failed_attempts": 2}}


def add_account(client: Any, admin: dict[str, str], account_id: str, *, customer: bool = True) -> None:
    body: dict[str, Any] = {"name": account_id.title()}
    if customer:
        body["stripe_customer_id"] = f"cus_{account_id}"
    assert client.put(f"/api/accounts/{account_id}", json=body, headers=admin).status_code == 201


def order(client: Any, admin: dict[str, str], account_id: str, order_id: str) -> None:
    response = client.post(
        f"/api/accounts/{account_id}/orders", json={"order_id": order_id, "amount": "10.00"}, headers=admin
    )
    assert response.status_code == 201, response.get_data(as_text=True)


def fail_one_payment(client: Any, container: Any, account_id: str) -> None:
    """One failed attempt on an open invoice of 20.00: on hold for non_payment under the default policy."""
    failed = stripe_fixture(
        "invoice.payment_failed.stripe-ruby-mock.json", customer=f"cus_{account_id}", id=f"in_{account_id}"
    )
    assert failed["data"]["object"]["attempt_count"] == 1
    assert post_stripe(client, failed).status_code == 200
    assert process_pending(container) == ["processed"]


def held_by_one_failed_attempt(client: Any, admin: dict[str, str], container: Any, account_id: str) -> None:
    add_account(client, admin, account_id)
    fail_one_payment(client, container, account_id)


def reasons(client: Any, admin: dict[str, str], account_id: str) -> list[str]:
    return [h["reason"] for h in client.get(f"/api/accounts/{account_id}", headers=admin).json["holds"]]


@pytest.fixture
def finance(client: Any, admin: dict[str, str]) -> dict[str, str]:
    return bearer(make_token(client, admin, "fiona", "finance")["token"])


@pytest.fixture
def book(client: Any, admin: dict[str, str], container: Any, queued: list[Any]) -> None:
    """acme: held by one failed attempt, an order waiting for it; initech: the same and a manual hold;
    globex: no hold; umbrella: an account without a Stripe customer."""
    add_account(client, admin, "acme")
    order(client, admin, "acme", "SO-1")  # sent for dispatch (recorded by ``queued``), recalled by the hold
    fail_one_payment(client, container, "acme")
    held_by_one_failed_attempt(client, admin, container, "initech")
    assert client.post("/api/accounts/initech/holds", json={"reason": "manual", "note": "x"}, headers=admin)
    add_account(client, admin, "globex")
    add_account(client, admin, "umbrella", customer=False)
    assert reasons(client, admin, "acme") == ["non_payment"]
    assert reasons(client, admin, "initech") == ["manual", "non_payment"]
    waiting = client.get("/api/provisioning", query_string={"account_id": "acme"}, headers=admin).json["items"]
    assert [(r["state"], r["waiting_for"]) for r in waiting] == [("awaiting", ["non_payment"])]
    queued.clear()


def test_accounts_held_by_one_failed_attempt_appear_released_under_two_and_nothing_changes(
    client: Any, finance: dict[str, str], book: None, nothing_changes: NothingChanges
) -> None:
    with nothing_changes():
        response = client.post("/api/policy/what-if", json=TWO_ATTEMPTS, headers=finance)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json == {
        "accounts_evaluated": 4,
        "changes": [
            {
                "account_id": "acme",
                "name": "Acme",
                "holds_now": ["non_payment"],
                "holds_under_candidate": [],
                "placed": [],
                "released": ["non_payment"],
                "orders_released": 1,
                "orders_parked": 0,
            },
            {
                "account_id": "initech",
                "name": "Initech",
                "holds_now": ["manual", "non_payment"],
                "holds_under_candidate": ["manual"],
                "placed": [],
                "released": ["non_payment"],
                "orders_released": 0,
                "orders_parked": 0,
            },
        ],
        "next_cursor": None,
    }


def test_a_candidate_that_stops_a_reason_parking_releases_orders_without_changing_holds(
    client: Any, finance: dict[str, str], book: None, nothing_changes: NothingChanges
) -> None:
    candidate = {"reasons": {"non_payment": {"parks_provisioning": False}}}
    with nothing_changes():
        changes = client.post("/api/policy/what-if", json=candidate, headers=finance).json["changes"]
    assert [(c["account_id"], c["holds_now"], c["holds_under_candidate"], c["orders_released"]) for c in changes] == [
        ("acme", ["non_payment"], ["non_payment"], 1)
    ]


def test_a_stricter_candidate_places_holds_and_parks_orders(
    client: Any, admin: dict[str, str], finance: dict[str, str], container: Any, queued: list[Any]
) -> None:
    container.policy = policy_from_document(TWO_ATTEMPTS, HoldPolicy())
    add_account(client, admin, "acme")
    order(client, admin, "acme", "SO-1")
    fail_one_payment(client, container, "acme")
    assert reasons(client, admin, "acme") == []  # one attempt of the two this policy waits for
    changes = client.post("/api/policy/what-if", json={"non_payment": {"failed_attempts": 1}}, headers=finance).json[
        "changes"
    ]
    assert [(c["account_id"], c["placed"], c["orders_parked"]) for c in changes] == [("acme", ["non_payment"], 1)]


@pytest.mark.parametrize(
    ("candidate", "file_text"),
    [
        pytest.param(
            {"non_payment": {"failed_attempts": "two"}}, '[non_payment]\nfailed_attempts = "two"\n', id="type"
        ),
        pytest.param({"non_payment": {"failed_attemps": 2}}, "[non_payment]\nfailed_attemps = 2\n", id="unknown-key"),
        pytest.param({"surprise": {}}, "[surprise]\n", id="unknown-section"),
        pytest.param(
            {"non_payment": {"minimum_unpaid": "lots"}}, '[non_payment]\nminimum_unpaid = "lots"\n', id="amount"
        ),
        pytest.param({"non_payment": {"failed_attempts": -1}}, "[non_payment]\nfailed_attempts = -1\n", id="negative"),
        pytest.param(
            {"reasons": {"overdraft": {"blocks_changes": True}}},
            "[reasons.overdraft]\nblocks_changes = true\n",
            id="unknown-reason",
        ),
        pytest.param(
            {"dispute": {"release_on": ["won", "maybe"]}}, '[dispute]\nrelease_on = ["won", "maybe"]\n', id="status"
        ),
        pytest.param({"non_payment": 3}, "non_payment = 3\n", id="not-a-table"),
        pytest.param(
            {"non_payment": {"good_standing": {"invoices_paid_on_time": -1}}},
            "[non_payment.good_standing]\ninvoices_paid_on_time = -1\n",
            id="good-standing-negative",
        ),
        pytest.param(
            {"non_payment": {"good_standing": {"months": "twelve"}}},
            '[non_payment.good_standing]\nmonths = "twelve"\n',
            id="good-standing-months-text",
        ),
        pytest.param(
            {"non_payment": {"good_standing": {"extra_hours": 24}}},
            "[non_payment.good_standing]\nextra_hours = 24\n",
            id="good-standing-unknown-key",
        ),
        pytest.param(
            {"non_payment": {"good_standing": True}},
            "[non_payment]\ngood_standing = true\n",
            id="good-standing-true",
        ),
    ],
)
def test_a_bad_candidate_is_400_with_the_sentence_a_bad_policy_file_gets(
    client: Any,
    finance: dict[str, str],
    book: None,
    nothing_changes: NothingChanges,
    candidate: dict[str, Any],
    file_text: str,
) -> None:
    with pytest.raises(PolicyError) as bad_file:
        parse_policy(file_text, Path("policy.toml"))
    with nothing_changes():
        body = refused(client.post("/api/policy/what-if", json=candidate, headers=finance), 400, "invalid_policy")
    assert body["message"] == f"Hold policy candidate: {bad_file.value.problem}"


def test_a_body_that_is_not_an_object_is_400(client: Any, finance: dict[str, str]) -> None:
    refused(client.post("/api/policy/what-if", json=[1], headers=finance), 400, "validation_error")


def test_a_viewer_reads_the_policy_but_may_not_run_a_what_if_and_finance_may(
    client: Any, admin: dict[str, str], finance: dict[str, str], book: None
) -> None:
    viewer = bearer(make_token(client, admin, "vic", "viewer")["token"])
    assert client.get("/api/policy", headers=viewer).status_code == 200
    body = refused(client.post("/api/policy/what-if", json=TWO_ATTEMPTS, headers=viewer), 403, "forbidden")
    assert "what_if" in body["message"]
    assert client.post("/api/policy/what-if", json=TWO_ATTEMPTS, headers=finance).status_code == 200
    assert client.post("/api/policy/what-if", json=TWO_ATTEMPTS, headers=admin).status_code == 200


POLICY_FILE = """
[non_payment]
failed_attempts = 3
days_past_due = false
minimum_unpaid = "25.50"
grace_period_hours = 48
on_uncollectible = false

[dispute]
release_on = ["won"]

[reasons.credit_review]
parks_provisioning = false
"""


def test_the_policy_in_force_reads_as_the_file_writes_it_and_posted_back_changes_nothing(
    client: Any, admin: dict[str, str], finance: dict[str, str], container: Any, book: None
) -> None:
    container.policy = parse_policy(POLICY_FILE, Path("policy.toml"))
    shown = client.get("/api/policy", headers=finance)
    assert shown.status_code == 200
    assert shown.json["non_payment"] == {
        "failed_attempts": 3,
        "days_past_due": False,
        "minimum_unpaid": "25.50",
        "grace_period_hours": 48,
        "on_uncollectible": False,
        "good_standing": False,
    }
    assert shown.json["dispute"] == {"release_on": ["won"]}
    assert shown.json["reasons"]["credit_review"] == {"parks_provisioning": False, "blocks_changes": False}
    assert shown.json["reasons"]["manual"] == {"parks_provisioning": True, "blocks_changes": True}
    assert policy_from_document(shown.json, HoldPolicy()) == container.policy
    # The held accounts were held under the default policy: against this one, the round trip changes nothing.
    answer = client.post("/api/policy/what-if", json=shown.json, headers=finance).json
    assert answer["changes"] == [] and answer["accounts_evaluated"] == 4


def test_the_default_policy_posted_back_changes_nothing(
    client: Any, finance: dict[str, str], book: None, container: Any
) -> None:
    shown = client.get("/api/policy", headers=finance).json
    assert shown == policy_document(container.policy)
    assert client.post("/api/policy/what-if", json=shown, headers=finance).json == {
        "accounts_evaluated": 4,
        "changes": [],
        "next_cursor": None,
    }


def test_changes_come_page_by_page_and_the_pages_add_up_to_the_book(
    client: Any, admin: dict[str, str], finance: dict[str, str], container: Any, queued: list[Any]
) -> None:
    held = [f"held{n}" for n in range(5)]
    for account_id in held:
        held_by_one_failed_attempt(client, admin, container, account_id)
    for account_id in ("aaa", "held2a", "zzz"):  # unchanged, before, between and after the held ones
        add_account(client, admin, account_id)
    seen: list[str] = []
    evaluated = 0
    cursor: str | None = None
    pages = 0
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.post("/api/policy/what-if", json=TWO_ATTEMPTS, query_string=query, headers=finance).json
        pages += 1
        assert len(page["changes"]) <= 2
        seen += [c["account_id"] for c in page["changes"]]
        evaluated += page["accounts_evaluated"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == held and pages == 3
    assert evaluated == 8
    refused(client.post("/api/policy/what-if", json=TWO_ATTEMPTS, query_string={"limit": 501}, headers=finance), 400)
    refused(
        client.post("/api/policy/what-if", json=TWO_ATTEMPTS, query_string={"cursor": "!!"}, headers=finance),
        400,
        "invalid_cursor",
    )


def test_the_database_is_read_in_pages_of_accounts_with_a_few_queries_each_not_one_per_account(
    client: Any, admin: dict[str, str], container: Any, queued: list[Any]
) -> None:
    for n in range(7):
        held_by_one_failed_attempt(client, admin, container, f"acct{n}")
    candidate = policy_from_document(TWO_ATTEMPTS, container.policy)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(container.engine, "before_cursor_execute", count)
    try:
        page = what_if_service.what_if(container.uow(), container.policy, candidate, container.clock(), page_size=3)
    finally:
        event.remove(container.engine, "before_cursor_execute", count)
    assert [d.account_id for d in page.changes] == [f"acct{n}" for n in range(7)]
    assert page.accounts_evaluated == 7 and page.next_after is None
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    # Three pages (3, 3, 1 accounts), each: accounts, holds, invoices, disputes, requests.
    assert 3 <= len(selects) <= 3 * 5, selects
    writes = [s for s in statements if s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    assert writes == []


def test_the_command_line_prints_the_same_what_if(
    app: Any, client: Any, finance: dict[str, str], book: None, tmp_path: Path, nothing_changes: NothingChanges
) -> None:
    runner = app.test_cli_runner()
    candidate = tmp_path / "candidate.toml"
    candidate.write_text("[non_payment]\nfailed_attempts = 2\n")
    with nothing_changes():
        as_json = runner.invoke(args=["policy", "what-if", str(candidate), "--json"])
        readable = runner.invoke(args=["policy", "what-if", str(candidate)])
    assert as_json.exit_code == 0, as_json.output
    api = client.post("/api/policy/what-if", json=TWO_ATTEMPTS, headers=finance).json
    assert json.loads(as_json.output) == {"accounts_evaluated": 4, "changes": api["changes"]}
    assert readable.exit_code == 0, readable.output
    lines = readable.output.strip().splitlines()
    assert lines[0] == f"4 account(s) evaluated; 2 would change under {candidate}."
    assert lines[1].startswith("acme\tAcme\tholds non_payment -> none\tplaced none\treleased non_payment")
    assert "orders released 1, parked 0" in lines[1]
    assert lines[2].startswith("initech\tInitech\tholds manual, non_payment -> manual")


def test_the_command_line_refuses_a_bad_candidate_file_with_the_policy_files_sentence(app: Any, tmp_path: Path) -> None:
    candidate = tmp_path / "candidate.toml"
    candidate.write_text('[non_payment]\nfailed_attempts = "two"\n')
    result = app.test_cli_runner().invoke(args=["policy", "what-if", str(candidate)])
    assert result.exit_code == 1
    assert f"Hold policy {candidate}, line 2: non_payment.failed_attempts must be a whole number" in result.output
