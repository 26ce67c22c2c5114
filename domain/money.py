"""Money in major units as Decimal; Stripe's minor units converted by currency exponent."""

from __future__ import annotations

from decimal import Decimal

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


def from_minor_units(amount: int, currency: str | None) -> Decimal:
    """Stripe's integer amount in the currency's smallest unit, as major units."""
    return Decimal(amount).scaleb(-exponent(currency))


def format_amount(amount: Decimal, currency: str | None = None) -> str:
    """A decimal string in major units with the currency's number of places ("1250.00")."""
    places = Decimal(1).scaleb(-exponent(currency))
    return str(amount.quantize(places))
