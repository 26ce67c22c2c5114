"""Roles and rights: exactly PRODUCT.md's table (People and roles)."""

from __future__ import annotations

import pytest

from domain.access import RIGHTS, Identity, Right, Role, may

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
