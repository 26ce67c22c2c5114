"""Roles and rights: exactly PRODUCT.md's table (People and roles)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.access import (
    RIGHTS,
    ApiToken,
    Identity,
    InvalidTokenName,
    Right,
    Role,
    check_token_name,
    may,
    person_of,
)

# PRODUCT.md: viewer reads everything; sales: viewer and submit orders; finance: sales, and
# holds, disputes, pauses, accounts and limits, retries, what-if; ops: viewer, and the ops
# routes, event replay and retries; admin: everything, and tokens and subscriptions.
EXPECTED = {
    Role.VIEWER: {Right.READ},
    Role.SALES: {Right.READ, Right.SUBMIT_ORDERS},
    Role.FINANCE: {
        Right.READ,
        Right.SUBMIT_ORDERS,
        Right.MANAGE_HOLDS,
        Right.MANAGE_ACCOUNTS,
        Right.RETRY_REQUESTS,
        Right.WHAT_IF,
    },
    Role.OPS: {Right.READ, Right.OPERATE, Right.RETRY_REQUESTS},
    Role.ADMIN: set(Right),
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("right", list(Right))
def test_each_role_has_exactly_the_rights_of_the_table(role: Role, right: Right) -> None:
    assert may(role, right) is (right in EXPECTED[role])


def test_only_admin_administers_and_every_role_reads() -> None:
    assert [r for r in Role if may(r, Right.ADMINISTER)] == [Role.ADMIN]
    assert all(Right.READ in RIGHTS[r] for r in Role)


def test_an_identity_acts_on_the_timeline_under_its_name() -> None:
    finance = Identity("maria", Role.FINANCE, "tok_1")
    assert finance.actor == "user:maria"
    assert finance.may(Right.MANAGE_HOLDS) and not finance.may(Right.OPERATE)


@pytest.mark.parametrize("name", ["maria", "Finance bot 2", "x" * 100, "Zoë"])
def test_a_token_name_is_one_to_a_hundred_printable_characters(name: str) -> None:
    assert check_token_name(name) == name


@pytest.mark.parametrize("name", ["", "  ", "x" * 101, "new\nline", "nul\x00", "admin", "ADMIN", " admin "])
def test_a_token_name_that_is_empty_long_unprintable_or_admin_is_refused(name: str) -> None:
    with pytest.raises(InvalidTokenName):
        check_token_name(name)


def test_a_token_acts_as_its_name_and_role() -> None:
    token = ApiToken("tok-1", "maria", Role.FINANCE, datetime(2026, 1, 1, tzinfo=UTC))
    assert token.identity() == Identity("maria", Role.FINANCE, "tok-1")
    assert token.identity().actor == "user:maria" and not token.revoked


def test_a_person_is_named_by_the_actor_a_token_acts_as_and_a_source_is_no_person() -> None:
    assert person_of(Identity("fiona", Role.FINANCE).actor) == "fiona"
    assert [person_of(actor) for actor in ("stripe", "holdfast", "dynamics:abc", "user:", None)] == [None] * 5
