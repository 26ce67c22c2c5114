"""Money: an amount has no more decimal places than its currency has."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.money import TooManyDecimals, check_currency_places


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("10.00", "usd"),
        ("10.5", "usd"),
        ("10.0000", "usd"),  # trailing zeros are not places the amount uses
        ("10", "jpy"),
        ("10.00", "jpy"),
        ("1E+3", "jpy"),
        ("0.000", "jpy"),
        ("10.001", "kwd"),
        ("10.001", "KWD"),
        ("10.01", None),  # no currency yet: two places, as amounts are shown
        ("10.01", "xyz"),  # a currency Stripe does not list: two places
        ("9" * 40 + ".5", "usd"),  # beyond the decimal context's precision: nothing rounds
    ],
)
def test_an_amount_within_its_currencys_places_is_accepted(amount: str, currency: str | None) -> None:
    check_currency_places(Decimal(amount), currency)


@pytest.mark.parametrize(
    ("amount", "currency", "fragment"),
    [
        ("10.001", "usd", "USD has 2"),
        ("10.5", "jpy", "JPY has none"),
        ("0.1", "krw", "KRW has none"),
        ("10.0001", "kwd", "KWD has 3"),
        ("10.001", None, "at most 2"),
        ("9" * 40 + ".001", "usd", "USD has 2"),
    ],
)
def test_an_amount_with_more_places_than_its_currency_is_refused_with_a_sentence(
    amount: str, currency: str | None, fragment: str
) -> None:
    with pytest.raises(TooManyDecimals) as raised:
        check_currency_places(Decimal(amount), currency)
    message = str(raised.value)
    assert fragment in message and message.endswith(".")
