"""Read the hold policy file (``HOLD_POLICY``, TOML or YAML), validate it once, build the domain policy.

A wrong file stops the service at start with a sentence that names the line and the problem. A
what-if candidate (JSON with the same sections and keys) goes through the same validator, so it
is refused with the same sentence; ``policy_document`` writes a policy back in those names.
"""

from __future__ import annotations

import re
import tomllib
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from domain.disputes import CLOSING_STATUSES
from domain.holds import HoldReason
from domain.policy import DEFAULT_POLICY, DisputePolicy, GoodStanding, HoldPolicy, NonPaymentPolicy, ReasonEffects


class PolicyError(ValueError):
    """The policy is wrong; the message names where (the file and line, or the candidate) and the problem.

    ``problem`` is the part after the place: the same for a file and for a JSON candidate.
    """

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"Hold policy {where}: {problem}")
        self.problem = problem


_SECTIONS = {"non_payment", "dispute", "reasons"}
_NON_PAYMENT_KEYS = {
    "failed_attempts",
    "days_past_due",
    "minimum_unpaid",
    "grace_period_hours",
    "on_uncollectible",
    "good_standing",
}
_GOOD_STANDING_KEYS = {"invoices_paid_on_time", "months", "extra_failed_attempts", "extra_grace_hours"}
_EFFECT_KEYS = {"parks_provisioning", "blocks_changes"}
_DISPUTE_KEYS = {"release_on"}
_MISSING = object()


def _line_of(text: str, section: str | None, key: str) -> int | None:
    """The line where ``key`` is set (inside ``section`` when given), for error messages."""
    dotted = f"{section}.{key}" if section else key
    current: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.match(r"^\[([^\]]+)\]", stripped) or re.match(r"^([A-Za-z_][\w.]*)\s*:\s*$", line)
        if header:
            current = header.group(1).strip()
            if current == dotted or current.startswith(dotted + "."):
                return number
            continue
        in_section = section is None or current == section or (current is None and not line.startswith(" "))
        if in_section and re.match(rf"^{re.escape(key)}\s*[=:]", stripped):
            return number
    return None


def _written(value: object) -> str:
    """A wrong value as the message shows it: as the file wrote it (a JSON fraction is read as a Decimal)."""
    return str(value) if isinstance(value, Decimal) else repr(value)


class _Reader:
    """Reads one document (a file's, or a JSON candidate's) over a base policy: what it leaves out stays."""

    def __init__(self, source: str, text: str | None) -> None:
        self.source, self.text = source, text

    def fail(self, section: str | None, key: str, problem: str) -> PolicyError:
        line = _line_of(self.text, section, key) if self.text is not None else None
        where = f"{self.source}, line {line}" if line else self.source
        name = f"{section}.{key}" if section else key
        return PolicyError(where, f"{name} {problem}")

    def table(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(None, key, "must be a table of settings.")
        return value

    def check_keys(self, section: str, data: dict[str, Any], allowed: set[str]) -> None:
        for key in data:
            if key not in allowed:
                raise self.fail(section, key, f"is not a known setting (known: {', '.join(sorted(allowed))}).")

    def integer(self, section: str, data: dict[str, Any], key: str, default: int, *, minimum: int = 0) -> int:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(section, key, f"must be a whole number, not {_written(value)}.")
        if value < minimum:
            raise self.fail(section, key, f"must be at least {minimum}.")
        return value

    def boolean(self, section: str, data: dict[str, Any], key: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(section, key, f"must be true or false, not {_written(value)}.")
        return value


def parse_policy(text: str, path: Path, base: HoldPolicy = DEFAULT_POLICY) -> HoldPolicy:
    """Parse and validate policy text (TOML, or YAML for .yaml/.yml files); what it leaves out is ``base``'s."""
    return _validated(_document(text, path), _Reader(str(path), text), base)


def policy_from_document(document: object, base: HoldPolicy, source: str = "candidate") -> HoldPolicy:
    """Validate a policy given as data (a JSON candidate) exactly as a file is; what it leaves out is ``base``'s."""
    if not isinstance(document, dict):
        raise PolicyError(source, "the policy must be a table of sections.")
    return _validated(document, _Reader(source, None), base)


def _validated(data: dict[str, Any], reader: _Reader, base: HoldPolicy) -> HoldPolicy:
    """The one validator of every policy document, whatever it was written in."""
    for key in data:
        if key not in _SECTIONS:
            raise reader.fail(None, key, "is not a known section (known: dispute, non_payment, reasons).")
    non_payment = _non_payment(reader, reader.table(data, "non_payment"), base.non_payment)
    dispute = _dispute(reader, reader.table(data, "dispute"), base.dispute)
    effects = _effects(reader, reader.table(data, "reasons"), base)
    return HoldPolicy(effects=effects, non_payment=non_payment, dispute=dispute)


def _document(text: str, path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) or {} if path.suffix.lower() in {".yaml", ".yml"} else tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(str(path), f"not valid TOML: {error}.") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise PolicyError(f"{path}{where}", f"not valid YAML: {getattr(error, 'problem', error)}.") from None
    if not isinstance(data, dict):
        raise PolicyError(str(path), "the file must be a table of sections.")
    return data


def _non_payment(reader: _Reader, np: dict[str, Any], base: NonPaymentPolicy) -> NonPaymentPolicy:
    reader.check_keys("non_payment", np, _NON_PAYMENT_KEYS)
    days = np.get("days_past_due", _MISSING)
    if days is _MISSING:
        days_past_due = base.days_past_due
    else:
        days_past_due = None if days is False else reader.integer("non_payment", np, "days_past_due", 0)
    grace = (
        base.grace_period
        if "grace_period_hours" not in np
        else timedelta(hours=reader.integer("non_payment", np, "grace_period_hours", 0))
    )
    return NonPaymentPolicy(
        failed_attempts=reader.integer("non_payment", np, "failed_attempts", base.failed_attempts),
        days_past_due=days_past_due,
        minimum_unpaid=_minimum_unpaid(reader, np, base.minimum_unpaid),
        grace_period=grace,
        on_uncollectible=reader.boolean("non_payment", np, "on_uncollectible", base.on_uncollectible),
        good_standing=_good_standing(reader, np, base.good_standing),
    )


def _good_standing(reader: _Reader, np: dict[str, Any], base: GoodStanding | None) -> GoodStanding | None:
    """``[non_payment.good_standing]``: a table turns it on (what it leaves out stays as it was); false, off."""
    raw = np.get("good_standing", _MISSING)
    if raw is _MISSING:
        return base
    if raw is False:
        return None
    if not isinstance(raw, dict):
        raise reader.fail("non_payment", "good_standing", "must be a table of settings, or false to turn it off.")
    section = "non_payment.good_standing"
    reader.check_keys(section, raw, _GOOD_STANDING_KEYS)
    start = base or GoodStanding()
    return GoodStanding(
        invoices_paid_on_time=reader.integer(
            section, raw, "invoices_paid_on_time", start.invoices_paid_on_time, minimum=1
        ),
        months=reader.integer(section, raw, "months", start.months, minimum=1),
        extra_failed_attempts=reader.integer(section, raw, "extra_failed_attempts", start.extra_failed_attempts),
        extra_grace_hours=reader.integer(section, raw, "extra_grace_hours", start.extra_grace_hours),
    )


def _minimum_unpaid(reader: _Reader, np: dict[str, Any], base: Decimal) -> Decimal:
    if "minimum_unpaid" not in np:
        return base
    raw = np["minimum_unpaid"]
    not_an_amount = reader.fail("non_payment", "minimum_unpaid", f'must be an amount such as "1.00", not {raw!r}.')
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float, Decimal)):
        raise not_an_amount
    try:
        minimum = Decimal(str(raw))
    except InvalidOperation:
        raise not_an_amount from None
    if not minimum.is_finite() or minimum < 0:
        raise reader.fail("non_payment", "minimum_unpaid", "must be a finite amount of at least 0.")
    return minimum


def _dispute(reader: _Reader, dispute_data: dict[str, Any], base: DisputePolicy) -> DisputePolicy:
    reader.check_keys("dispute", dispute_data, _DISPUTE_KEYS)
    release_on = dispute_data.get("release_on", sorted(base.release_on))
    if not isinstance(release_on, list) or not all(isinstance(s, str) for s in release_on):
        raise reader.fail("dispute", "release_on", "must be a list of dispute statuses.")
    unknown = set(release_on) - CLOSING_STATUSES
    if unknown:
        raise reader.fail(
            "dispute",
            "release_on",
            f"names statuses that do not close a dispute: {', '.join(sorted(unknown))} "
            f"(closing statuses: {', '.join(sorted(CLOSING_STATUSES))}).",
        )
    return DisputePolicy(frozenset(release_on))


def _effects(reader: _Reader, reasons: dict[str, Any], base: HoldPolicy) -> dict[HoldReason, ReasonEffects]:
    effects = {reason: base.effects_of(reason) for reason in HoldReason}
    for name, settings in reasons.items():
        try:
            reason = HoldReason(name)
        except ValueError:
            raise reader.fail(
                "reasons", name, f"is not a hold reason (known: {', '.join(r.value for r in HoldReason)})."
            ) from None
        if not isinstance(settings, dict):
            raise reader.fail("reasons", name, "must be a table with parks_provisioning and blocks_changes.")
        section = f"reasons.{name}"
        reader.check_keys(section, settings, _EFFECT_KEYS)
        default = effects[reason]
        effects[reason] = ReasonEffects(
            parks_provisioning=reader.boolean(section, settings, "parks_provisioning", default.parks_provisioning),
            blocks_changes=reader.boolean(section, settings, "blocks_changes", default.blocks_changes),
        )
    return effects


def policy_document(policy: HoldPolicy) -> dict[str, Any]:
    """The policy as the file writes it: its sections and keys (``policy_from_document`` reads it back as is)."""
    np = policy.non_payment
    return {
        "non_payment": {
            "failed_attempts": np.failed_attempts,
            "days_past_due": False if np.days_past_due is None else np.days_past_due,
            "minimum_unpaid": str(np.minimum_unpaid),
            "grace_period_hours": int(np.grace_period.total_seconds() // 3600),
            "on_uncollectible": np.on_uncollectible,
            "good_standing": False
            if np.good_standing is None
            else {
                "invoices_paid_on_time": np.good_standing.invoices_paid_on_time,
                "months": np.good_standing.months,
                "extra_failed_attempts": np.good_standing.extra_failed_attempts,
                "extra_grace_hours": np.good_standing.extra_grace_hours,
            },
        },
        "dispute": {"release_on": sorted(policy.dispute.release_on)},
        "reasons": {
            str(reason): {
                "parks_provisioning": policy.effects_of(reason).parks_provisioning,
                "blocks_changes": policy.effects_of(reason).blocks_changes,
            }
            for reason in HoldReason
        },
    }


def load_policy(path: str | None, base: HoldPolicy = DEFAULT_POLICY) -> HoldPolicy:
    """The policy from ``path`` (what it leaves out: ``base``'s), or ``base`` when no file is configured."""
    if not path:
        return base
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(str(file), f"cannot be read ({error.strerror}).") from None
    return parse_policy(text, file, base)
