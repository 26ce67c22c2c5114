"""Typed values and columns of a Dataverse webhook body, read by marshmallow schemas.

The body is what WCF's ``DataContractJsonSerializer`` writes. Collections (attributes,
parameters, images, formatted values) are lists of ``{"key": ..., "value": ...}`` pairs;
typed values name their type in ``"__type"`` (``"Money:http://schemas.microsoft.com/xrm/2011/Contracts"``);
dates are ``/Date(ms)/`` or ``/Date(ms+hhmm)/`` strings and GUIDs are plain strings. Values are
converted as follows: Money -> ``Decimal``; OptionSetValue -> :class:`OptionSet`; a multi-select
choice (a list of OptionSetValue) -> ``tuple[OptionSet, ...]``; EntityReference ->
:class:`EntityReference`; Entity -> :class:`Entity`; EntityCollection -> ``tuple[Entity, ...]``;
``KeyValuePairOf...`` -> a ``(key, value)`` tuple; a ``/Date(...)/`` string -> an aware UTC
``datetime``; a GUID string -> the same string in lower case (ids of rows and operations may
come in braces too: they are read without them); a JSON number with a fraction ->
``Decimal`` (the body is read with ``parse_float=Decimal``, so ``2154.32`` stays exact); other
lists -> tuples. Objects of any other ``__type`` (``QueryExpression``, ...) are kept as given,
as read-only mappings. Text is never "repaired": mojibake in a body stays as it came.

Conversion is recursive (an Entity's column may hold an EntityCollection of Entities), so the
converter and the schemas of typed values live together here. Error messages of the fields
are predicates: :mod:`adapters.dynamics_body` makes the sentence "<path> <message>." of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate

from adapters.dynamics_rows import EMPTY, Entity, EntityReference, OptionSet
from domain.account import guid

__all__ = [
    "DateField",
    "EntityReferenceSchema",
    "EntitySchema",
    "GuidField",
    "LenientSchema",
    "PairSchema",
    "WholeNumberField",
    "frozen_mapping",
    "key_field",
    "pairs_field",
    "parse_dynamics_date",
    "row_id",
    "text_field",
]

_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII | re.IGNORECASE)
_EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
# WCF's DateTime: UTC milliseconds since the epoch, then the sender's offset when the value was
# not UTC. JSON's "\/" escape is decoded by the parser, but a body that went through other
# hands may still carry the backslashes literally, so both spellings are read.
_DATE = re.compile(r"\\?/Date\((-?\d{1,15})(?:([+-])(\d{2})(\d{2}))?\)\\?/", re.ASCII)
# A text value shaped like a date must be one; other text that merely starts with "/Date(" is text.
_DATE_SHAPED = re.compile(r"\\?/Date\(.*\)\\?/", re.DOTALL)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_dynamics_date(value: str) -> datetime:
    """The instant of a WCF JSON date, ``/Date(ms)/`` or ``/Date(ms+hhmm)/`` (also ``\\/Date(...)\\/``), in UTC.

    The milliseconds count from the Unix epoch in UTC; an offset only records the zone the
    sender was in and does not move the instant. Raises ValueError for anything else.
    """
    match = _DATE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r:.60} is not a /Date(milliseconds)/ value.")
    milliseconds, sign, hours, minutes = match.groups()
    if sign and (int(hours) > 23 or int(minutes) > 59):
        raise ValueError(f"{value!r:.60} has an offset that is not a time zone offset.")
    try:
        return _EPOCH + timedelta(milliseconds=int(milliseconds))
    except OverflowError:
        raise ValueError(f"{value!r:.60} is outside the years a date can hold.") from None


def frozen_mapping(pairs: list[tuple[str, Any]] | None) -> Mapping[str, Any]:
    """The read-only mapping of a key/value collection (an absent one is empty)."""
    return MappingProxyType(dict(pairs)) if pairs else EMPTY


def row_id(value: str | None) -> str | None:
    """Guid.Empty is how .NET says "no row": it becomes None."""
    return None if value is None or value == _EMPTY_GUID else value


# --- Values of attribute and parameter collections --------------------------------------------


def _convert(value: Any) -> Any:
    """A value as Dataverse serialized it, converted as the module docstring says."""
    if value is None or isinstance(value, bool | int | Decimal):
        return value
    if isinstance(value, str):
        return _convert_text(value)
    if isinstance(value, list):
        return _convert_list(value)
    if isinstance(value, dict):
        return _convert_object(value)
    raise ValidationError("is not a JSON value")


def _convert_text(value: str) -> str | datetime:
    if _DATE_SHAPED.fullmatch(value):
        try:
            return parse_dynamics_date(value)
        except ValueError:
            raise ValidationError("is not a valid /Date(milliseconds)/ date") from None
    if _GUID.fullmatch(value):
        return value.lower()
    return value


def _convert_list(value: list[Any]) -> tuple[Any, ...]:
    items: list[Any] = []
    errors: dict[int, Any] = {}
    for index, item in enumerate(value):
        try:
            items.append(_convert(item))
        except ValidationError as error:
            errors[index] = error.messages
    if errors:
        raise ValidationError(errors)
    return tuple(items)


def _convert_object(value: dict[str, Any]) -> Any:
    type_name = value.get("__type")
    kind = type_name.split(":", 1)[0] if isinstance(type_name, str) else ""
    schema = _TYPED_VALUES.get(kind)
    if schema is None and kind.startswith("KeyValuePairOf"):
        schema = _PAIR
    if schema is None:  # a type Holdfast does not read (QueryExpression, ...): kept as given
        return _freeze(value)
    return schema.load(value)  # its ValidationError names the inner field


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


# --- Fields -----------------------------------------------------------------------------------


class _Value(fields.Field[Any]):
    """A value of an attribute or parameter collection, converted by its ``__type``."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        return _convert(value)


class GuidField(fields.String):
    """A row or operation id: a GUID in any case, with or without braces, read as lower case without braces."""

    default_error_messages = {"invalid_guid": "is not a GUID"}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        canonical = guid(text) if text == text.strip() else None
        if canonical is None:
            raise self.make_error("invalid_guid")
        return canonical


class DateField(fields.Field[datetime]):
    default_error_messages = {"invalid": "is not a valid /Date(milliseconds)/ date"}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> datetime:
        try:
            return parse_dynamics_date(value)
        except ValueError:
            raise self.make_error("invalid") from None


class _Number(fields.Field[Decimal]):
    """A JSON number, as a Decimal (``true`` and ``"12.50"`` are not numbers)."""

    default_error_messages = {"invalid": "is not a number"}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise self.make_error("invalid")
        return Decimal(value)


class WholeNumberField(fields.Integer):
    """A JSON integer (``true`` is a boolean, not 1)."""

    default_error_messages = {"invalid": "is not a whole number"}

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


_NOT_EMPTY = validate.Length(min=1, error="is empty")


def text_field(key: str, *, required: bool = False) -> fields.String:
    """A text property; a required one may not be empty, an optional one defaults to None."""
    if required:
        return fields.String(data_key=key, required=True, validate=_NOT_EMPTY)
    return fields.String(data_key=key, load_default=None)


def key_field() -> fields.String:
    """The key of a ``{"key": ..., "value": ...}`` pair: text, not empty."""
    return fields.String(required=True, validate=_NOT_EMPTY)


def pairs_field(pair_schema: type[Schema], key: str, *, required: bool = False) -> fields.List[Any]:
    """A ``[{"key": ..., "value": ...}, ...]`` collection; absent or null means empty unless required."""
    if required:
        return fields.List(fields.Nested(pair_schema), data_key=key, required=True)
    return fields.List(fields.Nested(pair_schema), data_key=key, load_default=None)


# --- Schemas ----------------------------------------------------------------------------------


class LenientSchema(Schema):
    """Dataverse adds properties over time: unknown ones are ignored, never refused."""

    class Meta:
        unknown = EXCLUDE


class _MoneySchema(LenientSchema):
    value = _Number(data_key="Value", required=True)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Decimal:
        amount: Decimal = data["value"]
        return amount


class _OptionSetSchema(LenientSchema):
    value = WholeNumberField(data_key="Value", required=True, strict=True)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> OptionSet:
        return OptionSet(data["value"])


class EntityReferenceSchema(LenientSchema):
    id = GuidField(data_key="Id", required=True)
    logical_name = text_field("LogicalName", required=True)
    name = text_field("Name")

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> EntityReference:
        return EntityReference(logical_name=data["logical_name"], id=data["id"], name=data["name"])


class PairSchema(LenientSchema):
    """One entry of an attribute or parameter collection (or a ``KeyValuePairOf...`` value)."""

    key = key_field()
    value = _Value(required=True, allow_none=True)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> tuple[str, Any]:
        return data["key"], data["value"]


class _FormattedValuePairSchema(LenientSchema):
    key = key_field()
    value = fields.String(required=True, allow_none=True)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> tuple[str, str | None]:
        return data["key"], data["value"]


class EntitySchema(LenientSchema):
    logical_name = text_field("LogicalName", required=True)
    id = GuidField(data_key="Id", load_default=None)
    attributes = pairs_field(PairSchema, "Attributes")
    formatted_values = pairs_field(_FormattedValuePairSchema, "FormattedValues")

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Entity:
        formatted = [(key, text) for key, text in data["formatted_values"] or () if text is not None]
        return Entity(
            logical_name=data["logical_name"],
            id=row_id(data["id"]),
            attributes=frozen_mapping(data["attributes"]),
            formatted_values=frozen_mapping(formatted),
        )


class _EntityCollectionSchema(LenientSchema):
    entities = fields.List(fields.Nested(EntitySchema), data_key="Entities", required=True)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> tuple[Entity, ...]:
        return tuple(data["entities"])


_TYPED_VALUES: dict[str, Schema] = {
    "Money": _MoneySchema(),
    "OptionSetValue": _OptionSetSchema(),
    "EntityReference": EntityReferenceSchema(),
    "Entity": EntitySchema(),
    "EntityCollection": _EntityCollectionSchema(),
}
_PAIR = PairSchema()
