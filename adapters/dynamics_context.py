"""Dynamics 365 / Dataverse webhook bodies: a ``RemoteExecutionContext`` serialized as JSON.

A pure adapter: the raw bytes of a delivery in, an :class:`ExecutionContext` out, or
:class:`NotAContext` whose message is a sentence saying what is wrong (the webhook answers
400 with it). No Flask, no database, no network.

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
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any, ClassVar

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate

from domain.account import guid

__all__ = [
    "Entity",
    "EntityReference",
    "ExecutionContext",
    "NotAContext",
    "OptionSet",
    "parse_context",
    "parse_dynamics_date",
]


class NotAContext(ValueError):
    """The body is not a Dynamics 365 execution context; the message says why in a sentence."""


_EMPTY: Mapping[str, Any] = MappingProxyType({})


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
    attributes: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    formatted_values: Mapping[str, str] = field(default_factory=lambda: _EMPTY)

    def get(self, name: str, default: Any = None) -> Any:
        """The converted value of column ``name``, or ``default`` when the body does not carry it."""
        return self.attributes.get(name, default)


@dataclass(frozen=True)
class ExecutionContext:
    """The parts of a ``RemoteExecutionContext`` Holdfast reads, converted to Python values."""

    message_name: str
    primary_entity_name: str
    primary_entity_id: str | None
    operation_id: str | None
    operation_created_on: datetime | None
    correlation_id: str | None
    request_id: str | None
    user_id: str | None
    initiating_user_id: str | None
    business_unit_id: str | None
    organization_id: str | None
    organization_name: str | None
    depth: int
    mode: int
    stage: int
    target: Entity | EntityReference | None
    input_parameters: Mapping[str, Any]
    output_parameters: Mapping[str, Any]
    pre_images: Mapping[str, Entity]
    post_images: Mapping[str, Entity]
    parent: ExecutionContext | None
    shared_variables: Mapping[str, Any]
    owning_extension: EntityReference | None = None
    size_exceeded: bool = False


_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII | re.IGNORECASE)
_EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
# WCF's DateTime: UTC milliseconds since the epoch, then the sender's offset when the value was
# not UTC. JSON's "\/" escape is decoded by the parser, but a body that went through other
# hands may still carry the backslashes literally, so both spellings are read.
_DATE = re.compile(r"\\?/Date\((-?\d{1,15})(?:([+-])(\d{2})(\d{2}))?\)\\?/", re.ASCII)
# A text value shaped like a date must be one; other text that merely starts with "/Date(" is text.
_DATE_SHAPED = re.compile(r"\\?/Date\(.*\)\\?/", re.DOTALL)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The fixtures nest 13 levels deep; each ParentContext adds one. Refusing far deeper bodies
# up front keeps the recursive schemas well inside Python's recursion limit.
_MAX_NESTING = 64


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


def _mapping(pairs: list[tuple[str, Any]] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(pairs)) if pairs else _EMPTY


def _id_or_none(value: str | None) -> str | None:
    """Guid.Empty is how .NET says "no row": it becomes None."""
    return None if value is None or value == _EMPTY_GUID else value


# --- Fields -----------------------------------------------------------------------------------
# Their error messages are predicates: the sentence is "<path> <message>."


class _Value(fields.Field[Any]):
    """A value of an attribute or parameter collection, converted by its ``__type``."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        return _convert(value)


class _Guid(fields.String):
    """A row or operation id: a GUID in any case, with or without braces, read as lower case without braces."""

    default_error_messages = {"invalid_guid": "is not a GUID"}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        canonical = guid(text) if text == text.strip() else None
        if canonical is None:
            raise self.make_error("invalid_guid")
        return canonical


class _Date(fields.Field[datetime]):
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


class _WholeNumber(fields.Integer):
    """A JSON integer (``true`` is a boolean, not 1)."""

    default_error_messages = {"invalid": "is not a whole number"}

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


_NOT_EMPTY = validate.Length(min=1, error="is empty")


def _text(key: str, *, required: bool = False) -> fields.String:
    if required:
        return fields.String(data_key=key, required=True, validate=_NOT_EMPTY)
    return fields.String(data_key=key, load_default=None)


def _pairs(pair_schema: type[Schema], key: str, *, required: bool = False) -> fields.List[Any]:
    """A ``[{"key": ..., "value": ...}, ...]`` collection; absent or null means empty unless required."""
    if required:
        return fields.List(fields.Nested(pair_schema), data_key=key, required=True)
    return fields.List(fields.Nested(pair_schema), data_key=key, load_default=None)


# --- Schemas ----------------------------------------------------------------------------------


class _Lenient(Schema):
    """Dataverse adds properties over time: unknown ones are ignored, never refused."""

    class Meta:
        unknown = EXCLUDE


class _MoneySchema(_Lenient):
    value = _Number(data_key="Value", required=True)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Decimal:
        amount: Decimal = data["value"]
        return amount


class _OptionSetSchema(_Lenient):
    value = _WholeNumber(data_key="Value", required=True, strict=True)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> OptionSet:
        return OptionSet(data["value"])


class _EntityReferenceSchema(_Lenient):
    id = _Guid(data_key="Id", required=True)
    logical_name = _text("LogicalName", required=True)
    name = _text("Name")

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> EntityReference:
        return EntityReference(logical_name=data["logical_name"], id=data["id"], name=data["name"])


class _PairSchema(_Lenient):
    """One entry of an attribute or parameter collection (or a ``KeyValuePairOf...`` value)."""

    key = fields.String(required=True, validate=_NOT_EMPTY)
    value = _Value(required=True, allow_none=True)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> tuple[str, Any]:
        return data["key"], data["value"]


class _FormattedValuePairSchema(_Lenient):
    key = fields.String(required=True, validate=_NOT_EMPTY)
    value = fields.String(required=True, allow_none=True)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> tuple[str, str | None]:
        return data["key"], data["value"]


class _EntitySchema(_Lenient):
    logical_name = _text("LogicalName", required=True)
    id = _Guid(data_key="Id", load_default=None)
    attributes = _pairs(_PairSchema, "Attributes")
    formatted_values = _pairs(_FormattedValuePairSchema, "FormattedValues")

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Entity:
        formatted = [(key, text) for key, text in data["formatted_values"] or () if text is not None]
        return Entity(
            logical_name=data["logical_name"],
            id=_id_or_none(data["id"]),
            attributes=_mapping(data["attributes"]),
            formatted_values=_mapping(formatted),
        )


class _EntityCollectionSchema(_Lenient):
    entities = fields.List(fields.Nested(_EntitySchema), data_key="Entities", required=True)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> tuple[Entity, ...]:
        return tuple(data["entities"])


class _ImagePairSchema(_Lenient):
    """A named entity image; its value carries no ``__type``: it is an Entity by position."""

    key = fields.String(required=True, validate=_NOT_EMPTY)
    value = fields.Nested(_EntitySchema, required=True)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> tuple[str, Entity]:
        return data["key"], data["value"]


class _ContextSchema(_Lenient):
    stripped: ClassVar[bool] = False

    message_name = _text("MessageName", required=True)
    primary_entity_name = _text("PrimaryEntityName", required=True)
    primary_entity_id = _Guid(data_key="PrimaryEntityId", load_default=None)
    operation_id = _Guid(data_key="OperationId", load_default=None)
    operation_created_on = _Date(data_key="OperationCreatedOn", load_default=None)
    correlation_id = _Guid(data_key="CorrelationId", load_default=None)
    request_id = _Guid(data_key="RequestId", load_default=None)
    user_id = _Guid(data_key="UserId", load_default=None)
    initiating_user_id = _Guid(data_key="InitiatingUserId", load_default=None)
    business_unit_id = _Guid(data_key="BusinessUnitId", load_default=None)
    organization_id = _Guid(data_key="OrganizationId", load_default=None)
    organization_name = _text("OrganizationName")
    depth = _WholeNumber(data_key="Depth", required=True, strict=True)
    mode = _WholeNumber(data_key="Mode", required=True, strict=True)
    stage = _WholeNumber(data_key="Stage", required=True, strict=True)
    input_parameters = _pairs(_PairSchema, "InputParameters", required=True)
    output_parameters = _pairs(_PairSchema, "OutputParameters")
    pre_images = _pairs(_ImagePairSchema, "PreEntityImages")
    post_images = _pairs(_ImagePairSchema, "PostEntityImages")
    parent = fields.Nested(lambda: _ContextSchema(), data_key="ParentContext", load_default=None)
    shared_variables = _pairs(_PairSchema, "SharedVariables")
    owning_extension = fields.Nested(_EntityReferenceSchema, data_key="OwningExtension", load_default=None)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> ExecutionContext:
        inputs = _mapping(data["input_parameters"])
        target = inputs.get("Target")
        return ExecutionContext(
            message_name=data["message_name"],
            primary_entity_name=data["primary_entity_name"],
            primary_entity_id=_id_or_none(data["primary_entity_id"]),
            operation_id=_id_or_none(data["operation_id"]),
            operation_created_on=data["operation_created_on"],
            correlation_id=_id_or_none(data["correlation_id"]),
            request_id=_id_or_none(data["request_id"]),
            user_id=_id_or_none(data["user_id"]),
            initiating_user_id=_id_or_none(data["initiating_user_id"]),
            business_unit_id=_id_or_none(data["business_unit_id"]),
            organization_id=_id_or_none(data["organization_id"]),
            organization_name=data["organization_name"],
            depth=data["depth"],
            mode=data["mode"],
            stage=data["stage"],
            target=target if isinstance(target, Entity | EntityReference) else None,
            input_parameters=inputs,
            output_parameters=_mapping(data["output_parameters"]),
            pre_images=_mapping(data["pre_images"]),
            post_images=_mapping(data["post_images"]),
            parent=data["parent"],
            shared_variables=_mapping(data["shared_variables"]),
            owning_extension=data["owning_extension"],
            size_exceeded=self.stripped,
        )


class _StrippedContextSchema(_ContextSchema):
    """A body over 256 KB: Dataverse removes InputParameters, the images and ParentContext."""

    stripped: ClassVar[bool] = True

    input_parameters = _pairs(_PairSchema, "InputParameters")


_TYPED_VALUES: dict[str, Schema] = {
    "Money": _MoneySchema(),
    "OptionSetValue": _OptionSetSchema(),
    "EntityReference": _EntityReferenceSchema(),
    "Entity": _EntitySchema(),
    "EntityCollection": _EntityCollectionSchema(),
}
_PAIR = _PairSchema()
_CONTEXT = _ContextSchema()
_STRIPPED_CONTEXT = _StrippedContextSchema()


# --- Parsing ----------------------------------------------------------------------------------

_NOT_A_CONTEXT = "The body is not a Dynamics 365 execution context"
_TOO_DEEP = f"The body is nested more than {_MAX_NESTING} levels deep, which no execution context is."
_TOO_DEEP_TO_READ = "The body is nested too deeply to be read as an execution context."


def parse_context(raw: bytes, *, size_exceeded: bool = False) -> ExecutionContext:
    """Parse a Dataverse webhook body (UTF-8, a BOM tolerated) or raise NotAContext with a sentence.

    ``size_exceeded`` is true when the delivery carried the ``x-ms-dynamics-msg-size-exceeded``
    header: Dataverse then removes InputParameters, the images and ParentContext from a body
    over 256 KB, so a missing InputParameters is accepted (and ``target`` is None) and the row
    must be read through the Web API. Without it, a body with no InputParameters is refused.
    """
    document = _read_json(raw)
    if not isinstance(document, dict):
        raise NotAContext(f"The body is a JSON {_json_kind(document)}, not a Dynamics 365 execution context.")
    _check_nesting(document)
    schema = _STRIPPED_CONTEXT if size_exceeded else _CONTEXT
    try:
        context = schema.load(document)
    except ValidationError as error:
        raise NotAContext(_sentence(error.messages, document)) from None
    except RecursionError:  # _check_nesting leaves ample room, but a deep stack must not become a 500
        raise NotAContext(_TOO_DEEP_TO_READ) from None
    assert isinstance(context, ExecutionContext)
    return context


def _read_json(raw: bytes) -> Any:
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        text = raw[bom:].decode("utf-8")
    except UnicodeDecodeError as error:
        raise NotAContext(
            f"The body is not UTF-8 text: the byte at offset {bom + error.start} cannot be decoded."
        ) from None
    if not text.strip():
        raise NotAContext("The body is empty.")
    try:
        return json.loads(text, parse_int=_whole_number, parse_float=Decimal, parse_constant=_reject_constant)
    except NotAContext:
        raise
    except json.JSONDecodeError as error:
        raise NotAContext(
            f"The body is not valid JSON: {error.msg.lower()} at line {error.lineno}, column {error.colno}."
        ) from None
    except RecursionError:
        raise NotAContext(_TOO_DEEP_TO_READ) from None
    except ValueError as error:  # NaN/Infinity
        raise NotAContext(f"The body is not valid JSON: {str(error).rstrip('.')}.") from None


# Far more digits than any column holds (a BigInt has 19); Python refuses to convert 4,301.
_MAX_WHOLE_NUMBER_DIGITS = 100


def _whole_number(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_WHOLE_NUMBER_DIGITS:
        raise NotAContext(
            f"The body has a whole number of {len(text.lstrip('-')):,} digits, "
            f"more than the {_MAX_WHOLE_NUMBER_DIGITS} any column holds."
        )
    return int(text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _check_nesting(document: Any) -> None:
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, level = stack.pop()
        if level > _MAX_NESTING:
            raise NotAContext(_TOO_DEEP)
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))


# marshmallow's own messages, as predicates for "<path> <predicate>."
_PREDICATES = {
    "Missing data for required field.": "is missing",
    "Field may not be null.": "is null",
    "Not a valid string.": "is not a string",
    "Not a valid list.": "is not a list",
    "Not a valid integer.": "is not a whole number",
    "Invalid input type.": "is not an object",
    "Invalid type.": "is not an object",
}


def _sentence(messages: Any, document: Any) -> str:
    path, message = _first_problem(messages, document, "")
    predicate = _PREDICATES.get(message, message.rstrip("."))
    others = _count(messages) - 1
    more = f" (and {others} more problem{'s' if others > 1 else ''})" if others > 0 else ""
    return f"{_NOT_A_CONTEXT}: {path} {predicate}{more}." if path else f"{_NOT_A_CONTEXT}: {predicate}{more}."


def _first_problem(messages: Any, node: Any, path: str) -> tuple[str, str]:
    """The path of the first error, naming key/value entries by their key (``Attributes[name]``)."""
    if isinstance(messages, dict) and messages:
        key, inner = next(iter(messages.items()))
        if key == "_schema":  # about the object at ``path`` itself
            return _first_problem(inner, node, path)
        if isinstance(key, int):
            item = node[key] if isinstance(node, list) and 0 <= key < len(node) else None
            if isinstance(item, dict) and _is_named(item) and isinstance(inner, dict) and set(inner) == {"value"}:
                return _first_problem(inner["value"], item.get("value"), f"{path}[{item['key']}]")
            return _first_problem(inner, item, f"{path}[{key}]")
        child = node.get(key) if isinstance(node, dict) else None
        return _first_problem(inner, child, f"{path}.{key}" if path else str(key))
    if isinstance(messages, list) and messages:
        return _first_problem(messages[0], node, path)
    return path, str(messages)


def _is_named(pair: dict[str, Any]) -> bool:
    name = pair.get("key")
    return isinstance(name, str) and bool(name)


def _count(messages: Any) -> int:
    if isinstance(messages, dict):
        return sum(_count(inner) for inner in messages.values())
    if isinstance(messages, list):
        return sum(_count(inner) for inner in messages)
    return 1
