"""Rows, lookups and choices as a Dataverse webhook body carries them, converted to Python values.

Plain frozen values, with nothing about how they are read (that is :mod:`adapters.dynamics_values`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["EMPTY", "Entity", "EntityReference", "OptionSet"]

EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class EntityReference:
    """A lookup: the table's logical name and the row's id, with its primary name when sent."""

    logical_name: str
    id: str
    name: str | None = None


@dataclass(frozen=True)
class OptionSet:
    """The value of a choice column (``OptionSetValue``)."""

    value: int


@dataclass(frozen=True)
class Entity:
    """A row: its table, its id (None when the body has none) and the columns the body carries.

    An Update's Target carries only the changed columns, so a column that is absent was not
    changed; a column present with None was cleared.
    """

    logical_name: str
    id: str | None
    attributes: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    formatted_values: Mapping[str, str] = field(default_factory=lambda: EMPTY)

    def get(self, name: str, default: Any = None) -> Any:
        """The converted value of column ``name``, or ``default`` when the body does not carry it."""
        return self.attributes.get(name, default)
