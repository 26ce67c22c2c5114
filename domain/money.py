"""Money in major units as Decimal; Stripe's minor units converted by currency exponent."""

from __future__ import annotations

from decimal import Decimal, getcontext

# Stripe's zero-decimal and three-decimal currencies (https://docs.stripe.com/currencies).
_ZERO_DECIMAL = frozenset(
    ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"]
)
_THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])

ZERO = Decimal("0")


def exponent(currency: str | None) -> int:
    """Digits after the decimal point for a currency (2 when unknown)."""
    code = (currency or "").lower()
    if code in _ZERO_DECIMAL:
        return 0
    if code in _THREE_DECIMAL:
        return 3
    return 2


class TooManyDecimals(ValueError):
    """An amount with more decimal places than its currency has; the message is a sentence."""

    def __init__(self, amount: Decimal, currency: str | None) -> None:
        used, places = decimal_places(amount), exponent(currency)
        allowed = (
            f"{currency.upper()} has {places or 'none'}"
            if currency
            else f"without a currency, an amount has at most {places}"
        )
        super().__init__(f"The amount {amount} has {used} decimal place{'s' * (used != 1)}; {allowed}.")


def decimal_places(amount: Decimal) -> int:
    """The places an amount uses after the point, trailing zeros aside ("10.50" uses 1, "1E+3" none)."""
    if not amount.is_finite() or not amount:
        return 0
    _, digits, exp = amount.as_tuple()
    assert isinstance(exp, int)
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exp + trailing_zeros))


def check_currency_places(amount: Decimal, currency: str | None) -> None:
    """Raise TooManyDecimals when the amount cannot be written in its currency ("10.5" yen, "10.001" dollars)."""
    if decimal_places(amount) > exponent(currency):
        raise TooManyDecimals(amount, currency)


def from_minor_units(amount: int, currency: str | None) -> Decimal:
    """Stripe's integer amount in the currency's smallest unit, as major units."""
    return Decimal(amount).scaleb(-exponent(currency))


def format_amount(amount: Decimal, currency: str | None = None) -> str:
    """A decimal string in major units with the currency's number of places ("1250.00")."""
    places = exponent(currency)
    # Precision for every digit of the amount and its places: a large amount is never refused.
    context = getcontext().copy()
    context.prec = max(context.prec, amount.adjusted() + 1 + places)
    return str(amount.quantize(Decimal(1).scaleb(-places), context=context))
