"""Money: amounts in major units, Stripe's minor units, each currency's decimal places, how amounts are written."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.money import (
    TooManyDecimals,
    check_currency_places,
    decimal_places,
    exponent,
    format_amount,
    from_minor_units,
)


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


def test_the_message_counts_places_in_a_sentence() -> None:
    assert str(TooManyDecimals(Decimal("10.5"), "jpy")) == "The amount 10.5 has 1 decimal place; JPY has none."
    assert str(TooManyDecimals(Decimal("10.125"), "usd")) == "The amount 10.125 has 3 decimal places; USD has 2."


@pytest.mark.parametrize(
    ("currency", "places"),
    [
        ("usd", 2),
        ("eur", 2),
        ("jpy", 0),
        ("JPY", 0),  # Stripe writes codes in lower case, people in upper: the same currency
        ("krw", 0),
        ("xof", 0),
        ("kwd", 3),
        ("BHD", 3),
        ("xyz", 2),  # a code Stripe does not list
        ("", 2),
        (None, 2),  # an account whose currency is not known yet
    ],
)
def test_a_currency_has_the_decimal_places_stripe_gives_it(currency: str | None, places: int) -> None:
    assert exponent(currency) == places


@pytest.mark.parametrize(
    ("amount", "places"),
    [("10", 0), ("10.5", 1), ("10.50", 1), ("-0.05", 2), ("0.001", 3), ("1E+3", 0), ("0.000", 0), ("0", 0)],
)
def test_the_places_an_amount_uses_leave_out_trailing_zeros(amount: str, places: int) -> None:
    assert decimal_places(Decimal(amount)) == places


@pytest.mark.parametrize(
    ("minor", "currency", "major"),
    [
        (1250, "usd", "12.50"),
        (1, "usd", "0.01"),
        (-500, "usd", "-5.00"),  # a credit
        (0, "usd", "0"),
        (1250, "jpy", "1250"),
        (1250, "JPY", "1250"),
        (1250, "kwd", "1.250"),
        (1250, None, "12.50"),
        (99999999, "usd", "999999.99"),  # Stripe's largest amount
    ],
)
def test_stripes_minor_units_become_exact_major_units_by_the_currencys_places(
    minor: int, currency: str | None, major: str
) -> None:
    amount = from_minor_units(minor, currency)
    assert amount == Decimal(major)
    assert isinstance(amount, Decimal)


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        ("1250", "usd", "1250.00"),
        ("12.5", "usd", "12.50"),
        ("12.5", None, "12.50"),
        ("1E+3", "usd", "1000.00"),  # never exponent notation: the provisioning API and the timeline read it
        ("1250", "jpy", "1250"),
        ("1.25", "kwd", "1.250"),
        ("-5", "usd", "-5.00"),
        ("1" * 27, "usd", "1" * 27 + ".00"),  # more digits than the default context's 28: still exact
        ("9" * 40 + ".125", "kwd", "9" * 40 + ".125"),
        ("0.005", "usd", "0.00"),  # half to even, as before
    ],
)
def test_an_amount_is_written_with_exactly_its_currencys_places(amount: str, currency: str | None, text: str) -> None:
    assert format_amount(Decimal(amount), currency) == text


CURRENCIES = st.sampled_from(["usd", "eur", "jpy", "krw", "kwd", "bhd", "xyz", None])


@given(minor=st.integers(min_value=-(10**15), max_value=10**15), currency=CURRENCIES)
def test_every_stripe_amount_fits_its_currency_and_is_written_as_stripe_counted_it(
    minor: int, currency: str | None
) -> None:
    amount = from_minor_units(minor, currency)
    check_currency_places(amount, currency)  # never refused
    text = format_amount(amount, currency)
    whole, _, fraction = text.partition(".")
    assert len(fraction) == exponent(currency)
    assert int(whole + fraction) == minor
