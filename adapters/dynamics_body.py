"""The raw body of a Dynamics 365 delivery as a JSON document, and a refusal that says what is wrong.

``read_document`` takes the bytes of a delivery (UTF-8, a BOM tolerated) to a JSON object, read
with numbers exact (``parse_float=Decimal``), or raises :class:`NotAContext` with a sentence;
``problem_sentence`` turns marshmallow's error messages about that document into one sentence
naming the first problem by its path (``InputParameters[Target].Attributes[name] is not ...``).
"""

from __future__ import annotations

import codecs
import json
from decimal import Decimal
from typing import Any

__all__ = ["TOO_DEEP_TO_READ", "NotAContext", "problem_sentence", "read_document"]


class NotAContext(ValueError):
    """The body is not a Dynamics 365 execution context; the message says why in a sentence."""


# The fixtures nest 13 levels deep; each ParentContext adds one. Refusing far deeper bodies
# up front keeps the recursive schemas well inside Python's recursion limit.
_MAX_NESTING = 64
# Far more digits than any column holds (a BigInt has 19); Python refuses to convert 4,301.
_MAX_WHOLE_NUMBER_DIGITS = 100

_NOT_A_CONTEXT = "The body is not a Dynamics 365 execution context"
_TOO_DEEP = f"The body is nested more than {_MAX_NESTING} levels deep, which no execution context is."
TOO_DEEP_TO_READ = "The body is nested too deeply to be read as an execution context."


def read_document(raw: bytes) -> dict[str, Any]:
    """The JSON object a body holds, nested no deeper than any context is; else NotAContext."""
    document = _read_json(raw)
    if not isinstance(document, dict):
        raise NotAContext(f"The body is a JSON {_json_kind(document)}, not a Dynamics 365 execution context.")
    _check_nesting(document)
    return document


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
        raise NotAContext(TOO_DEEP_TO_READ) from None
    except ValueError as error:  # NaN/Infinity
        raise NotAContext(f"The body is not valid JSON: {str(error).rstrip('.')}.") from None


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


# --- The sentence -----------------------------------------------------------------------------

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


def problem_sentence(messages: Any, document: Any) -> str:
    """One sentence naming the first of marshmallow's ``messages`` about ``document``, and how many more."""
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
