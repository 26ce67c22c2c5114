"""One way between the domain's dataclasses and their rows: copied field by field, by name.

A fact (``InvoiceFact``, ``Hold``, ``ProvisioningRequest``, ...) and its row share the names of
what they share, so the repositories say only what differs: a value converted on the way (an
enum stored as text, occurrences stored as JSON), a field kept elsewhere (an account's holds
have their own table), a column the fact has no field for (``updated_at``).

Why not SQLAlchemy's imperative mapping (``registry.map_imperatively``) of the domain classes
onto the tables? It would instrument the domain's classes (their ``__init__`` and attributes),
bind what services hold to a session (expired on commit, refreshed by lazy loads), and fight
frozen dataclasses, whose fields it sets on load and on change; and every conversion above
would need its own column type or composite. The domain stays plain Python, loaded facts are
plain values, and copying by name is a few dictionary operations per row.

A name on one side that the other lacks fails loudly: a field with no column is an
``AttributeError`` on reading, and a value for a column the row does not have is refused on
writing (SQLAlchemy would keep it as a plain attribute and store nothing).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import inspect

from adapters.db.tables import Base

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    Fact = TypeVar("Fact", bound=DataclassInstance)
else:
    Fact = TypeVar("Fact")

__all__ = ["column_values", "copy_to_row", "fact_from_row"]


@cache
def _field_names(fact_type: type[Any]) -> tuple[str, ...]:
    return tuple(field.name for field in fields(fact_type))


@cache
def _columns(row_type: type[Base]) -> tuple[frozenset[str], frozenset[str]]:
    """The row's column attributes, and those of its primary key."""
    mapper = inspect(row_type)
    key = frozenset(mapper.get_property_by_column(column).key for column in mapper.primary_key)
    return frozenset(mapper.column_attrs.keys()), key


def fact_from_row(fact_type: type[Fact], row: Base, **converted: Any) -> Fact:
    """A ``fact_type`` whose fields are the row's columns of the same names, but for those ``converted``."""
    values = {name: getattr(row, name) for name in _field_names(fact_type) if name not in converted}
    return fact_type(**values, **converted)


def column_values(fact: DataclassInstance, *, leave_out: Iterable[str] = (), **converted: Any) -> dict[str, Any]:
    """The fact's fields by name as column values, but ``leave_out``; ``converted`` (or extra) ones as given."""
    skipped = set(leave_out) | converted.keys()
    values = {name: getattr(fact, name) for name in _field_names(type(fact)) if name not in skipped}
    values.update(converted)
    return values


def copy_to_row(row: Base, fact: DataclassInstance, *, leave_out: Iterable[str] = (), **converted: Any) -> None:
    """Set the row's columns from the fact's fields of the same names (as ``column_values``).

    The primary key is the row's identity, set when the row was made: it is never copied.
    """
    columns, key = _columns(type(row))
    values = column_values(fact, leave_out=leave_out, **converted)
    unknown = values.keys() - columns
    if unknown:
        raise AttributeError(f"{type(row).__name__} has no column {', '.join(sorted(unknown))}.")
    for name, value in values.items():
        if name not in key:
            setattr(row, name, value)
