"""Dynamics 365 / Dataverse webhook bodies: a ``RemoteExecutionContext`` serialized as JSON.

A pure adapter: the raw bytes of a delivery in, an :class:`ExecutionContext` out, or
:class:`NotAContext` whose message is a sentence saying what is wrong (the webhook answers
400 with it). No Flask, no database, no network.

This module reads the context itself: the message, stage and ids, the parameters (the Target
among them), the entity images and the parent context. The parts it stands on are beside it:
:mod:`adapters.dynamics_body` (the bytes as a JSON document, and the sentence of a refusal),
:mod:`adapters.dynamics_values` (typed values and columns, converted as its docstring says) and
:mod:`adapters.dynamics_rows` (the rows, lookups and choices they become). The rows and the
refusal are named here too, as the parts of what ``parse_context`` gives and raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from marshmallow import ValidationError, fields, post_load

from adapters.dynamics_body import TOO_DEEP_TO_READ, NotAContext, problem_sentence, read_document
from adapters.dynamics_rows import Entity, EntityReference
from adapters.dynamics_values import (
    DateField,
    EntityReferenceSchema,
    EntitySchema,
    GuidField,
    LenientSchema,
    PairSchema,
    WholeNumberField,
    frozen_mapping,
    key_field,
    pairs_field,
    row_id,
    text_field,
)


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


class _ImagePairSchema(LenientSchema):
    """A named entity image; its value carries no ``__type``: it is an Entity by position."""

    key = key_field()
    value = fields.Nested(EntitySchema, required=True)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> tuple[str, Entity]:
        return data["key"], data["value"]


class _ContextSchema(LenientSchema):
    stripped: ClassVar[bool] = False

    message_name = text_field("MessageName", required=True)
    primary_entity_name = text_field("PrimaryEntityName", required=True)
    primary_entity_id = GuidField(data_key="PrimaryEntityId", load_default=None)
    operation_id = GuidField(data_key="OperationId", load_default=None)
    operation_created_on = DateField(data_key="OperationCreatedOn", load_default=None)
    correlation_id = GuidField(data_key="CorrelationId", load_default=None)
    request_id = GuidField(data_key="RequestId", load_default=None)
    user_id = GuidField(data_key="UserId", load_default=None)
    initiating_user_id = GuidField(data_key="InitiatingUserId", load_default=None)
    business_unit_id = GuidField(data_key="BusinessUnitId", load_default=None)
    organization_id = GuidField(data_key="OrganizationId", load_default=None)
    organization_name = text_field("OrganizationName")
    depth = WholeNumberField(data_key="Depth", required=True, strict=True)
    mode = WholeNumberField(data_key="Mode", required=True, strict=True)
    stage = WholeNumberField(data_key="Stage", required=True, strict=True)
    input_parameters = pairs_field(PairSchema, "InputParameters", required=True)
    output_parameters = pairs_field(PairSchema, "OutputParameters")
    pre_images = pairs_field(_ImagePairSchema, "PreEntityImages")
    post_images = pairs_field(_ImagePairSchema, "PostEntityImages")
    parent = fields.Nested(lambda: _ContextSchema(), data_key="ParentContext", load_default=None)
    shared_variables = pairs_field(PairSchema, "SharedVariables")
    owning_extension = fields.Nested(EntityReferenceSchema, data_key="OwningExtension", load_default=None)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> ExecutionContext:
        inputs = frozen_mapping(data["input_parameters"])
        target = inputs.get("Target")
        return ExecutionContext(
            message_name=data["message_name"],
            primary_entity_name=data["primary_entity_name"],
            primary_entity_id=row_id(data["primary_entity_id"]),
            operation_id=row_id(data["operation_id"]),
            operation_created_on=data["operation_created_on"],
            correlation_id=row_id(data["correlation_id"]),
            request_id=row_id(data["request_id"]),
            user_id=row_id(data["user_id"]),
            initiating_user_id=row_id(data["initiating_user_id"]),
            business_unit_id=row_id(data["business_unit_id"]),
            organization_id=row_id(data["organization_id"]),
            organization_name=data["organization_name"],
            depth=data["depth"],
            mode=data["mode"],
            stage=data["stage"],
            target=target if isinstance(target, Entity | EntityReference) else None,
            input_parameters=inputs,
            output_parameters=frozen_mapping(data["output_parameters"]),
            pre_images=frozen_mapping(data["pre_images"]),
            post_images=frozen_mapping(data["post_images"]),
            parent=data["parent"],
            shared_variables=frozen_mapping(data["shared_variables"]),
            owning_extension=data["owning_extension"],
            size_exceeded=self.stripped,
        )


class _StrippedContextSchema(_ContextSchema):
    """A body over 256 KB: Dataverse removes InputParameters, the images and ParentContext."""

    stripped: ClassVar[bool] = True

    input_parameters = pairs_field(PairSchema, "InputParameters")


_CONTEXT = _ContextSchema()
_STRIPPED_CONTEXT = _StrippedContextSchema()


def parse_context(raw: bytes, *, size_exceeded: bool = False) -> ExecutionContext:
    """Parse a Dataverse webhook body (UTF-8, a BOM tolerated) or raise NotAContext with a sentence.

    ``size_exceeded`` is true when the delivery carried the ``x-ms-dynamics-msg-size-exceeded``
    header: Dataverse then removes InputParameters, the images and ParentContext from a body
    over 256 KB, so a missing InputParameters is accepted (and ``target`` is None) and the row
    must be read through the Web API. Without it, a body with no InputParameters is refused.
    """
    document = read_document(raw)
    schema = _STRIPPED_CONTEXT if size_exceeded else _CONTEXT
    try:
        context = schema.load(document)
    except ValidationError as error:
        raise NotAContext(problem_sentence(error.messages, document)) from None
    except RecursionError:  # read_document leaves ample room, but a deep stack must not become a 500
        raise NotAContext(TOO_DEEP_TO_READ) from None
    assert isinstance(context, ExecutionContext)
    return context
