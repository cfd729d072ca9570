"""The SDKs' types against the service's OpenAPI document (`openapi.json`, from `make openapi`).

Each side is brought to one plain form, ``{SDK type name: {field: Field(type, optional)}}``, with
types written as ``string``, ``integer``, ``number``, ``boolean``, ``file``, ``enum:a|b``,
``array<...>`` or ``ref:<SDK type name>``; then the two are compared field by field. The
Python SDK's form is read from its classes here; the TypeScript SDK's by
`typescript/scripts/sdk-types.cjs` with the TypeScript compiler.

Where the document names a type differently from the SDKs, or defines it inline (a multipart
body, query parameters), `DOCUMENT_TYPES` says where to find it.
"""

from __future__ import annotations

import json
import subprocess
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pydantic
import typing_extensions

from chamelaion import types as sdk_types
from chamelaion._files import FileTypes

OPENAPI_PATH = Path(__file__).resolve().parent.parent / "openapi.json"


@dataclass(frozen=True)
class Field:
    type: str
    optional: bool


TypeTable = dict[str, dict[str, Field]]

# SDK type name -> (role, where the document defines it). A "response" type may widen a string
# enum of the document to a plain string (the seed types `LipsyncRequest.status` as `string`, so a
# status added later does not break old clients); everything else must match exactly.
DOCUMENT_TYPES: dict[str, tuple[Literal["request", "response"], str]] = {
    "LipsyncGenerate": ("response", "#/components/schemas/LipsyncGenerate"),
    "LipsyncEstimate": ("response", "#/components/schemas/LipsyncEstimate"),
    "RequestDeleted": ("response", "#/components/schemas/LipsyncRequestDeleted"),
    "LipsyncRequest": ("response", "#/components/schemas/LipsyncRequest"),
    "OutputSync": ("response", "#/components/schemas/OutputSync"),
    "Pagination": ("response", "#/components/schemas/Pagination"),
    "RequestListResponse": ("response", "#/components/schemas/RequestListResponse"),
    "LipsyncGenerateParams": ("request", "#/components/schemas/GenerateBody"),
    "Input": ("request", "#/components/schemas/GenerateInput"),
    "SpeakerPoint": ("request", "#/components/schemas/SpeakerPoint"),
    "LipsyncGenerateWithMediaParams": (
        "request",
        "multipart /v1/lipsync/generate-with-media",
    ),
    "RequestListParams": ("request", "query /v1/lipsync/requests"),
}
_SDK_NAME_OF_SCHEMA = {
    where.rsplit("/", 1)[1]: name
    for name, (_, where) in DOCUMENT_TYPES.items()
    if where.startswith("#/")
}


def load_document(path: Path = OPENAPI_PATH) -> dict[str, Any]:
    return typing.cast(dict[str, Any], json.loads(path.read_text(encoding="utf-8")))


# -- the document's side ------------------------------------------------------------------------


def _enum(values: Iterable[object]) -> str:
    """`enum:a|b`; values that are not strings as JSON writes them (`true`, as TypeScript does)."""
    return "enum:" + "|".join(sorted(v if isinstance(v, str) else json.dumps(v) for v in values))


def schema_type(schema: dict[str, Any]) -> str:
    """One JSON schema as a type of the plain form."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f"ref:{_SDK_NAME_OF_SCHEMA.get(name, name)}"
    if "anyOf" in schema:  # `X | None`: null is what an absent optional field means here
        members = [m for m in schema["anyOf"] if m.get("type") != "null"]
        if len(members) == 1:
            return schema_type(members[0])
        return "union:" + "|".join(sorted(schema_type(m) for m in members))
    if "const" in schema:
        return _enum([schema["const"]])
    if "enum" in schema:
        return _enum(schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        return f"array<{schema_type(schema['items'])}>"
    if kind == "string" and schema.get("format") == "binary":
        return "file"
    if kind in ("string", "integer", "number", "boolean"):
        return str(kind)
    raise ValueError(f"no plain form for the schema {schema}")


def _object_fields(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Field]:
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    required = set(schema.get("required", []))
    return {
        name: Field(schema_type(prop), name not in required)
        for name, prop in schema["properties"].items()
    }


def _inline_enums(node: Any, schemas: dict[str, Any]) -> Any:
    """`node` with every reference to an enum component replaced by the enum itself: an SDK
    spells a `Literal[...]` where the document names a component."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        target = schemas.get(ref.rsplit("/", 1)[1]) if ref.startswith("#/components/") else None
        if target is not None and "enum" in target:
            return {k: v for k, v in target.items() if k in ("enum", "type")}
        return {k: _inline_enums(v, schemas) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_enums(v, schemas) for v in node]
    return node


def document_types(document: dict[str, Any]) -> TypeTable:
    """The SDK types as the document defines them."""
    document = _inline_enums(document, document["components"]["schemas"])
    table: TypeTable = {}
    for name, (_, where) in DOCUMENT_TYPES.items():
        if where.startswith("#/components/schemas/"):
            schema = document["components"]["schemas"][where.rsplit("/", 1)[1]]
            table[name] = _object_fields(schema, document)
        elif where.startswith("multipart "):
            operation = document["paths"][where.split(" ", 1)[1]]["post"]
            body = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
            table[name] = _object_fields(body, document)
        else:  # query parameters
            operation = document["paths"][where.split(" ", 1)[1]]["get"]
            table[name] = {
                p["name"]: Field(schema_type(p["schema"]), not p.get("required", False))
                for p in operation["parameters"]
                if p["in"] == "query"
            }
    return table


# -- the Python SDK's side ----------------------------------------------------------------------

_PLAIN = {str: "string", datetime: "string", int: "integer", float: "number", bool: "boolean"}


def python_type(annotation: Any) -> str:
    """One annotation of the Python SDK as a type of the plain form."""
    if annotation == FileTypes:
        return "file"
    if annotation in _PLAIN:
        return _PLAIN[annotation]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if len(members) == 1:
            return python_type(members[0])
        return "union:" + "|".join(sorted(python_type(m) for m in members))
    if origin is Literal:
        return _enum(args)
    if origin in (list, Sequence, Iterable):
        return f"array<{python_type(args[0])}>"
    if isinstance(annotation, type) and (
        issubclass(annotation, pydantic.BaseModel) or typing_extensions.is_typeddict(annotation)
    ):
        return f"ref:{annotation.__name__}"
    raise ValueError(f"no plain form for the annotation {annotation!r}")


def python_types() -> TypeTable:
    """The Python SDK's types (`chamelaion.types`), by the SDK names the document maps."""
    table: TypeTable = {}
    for name in DOCUMENT_TYPES:
        cls = getattr(sdk_types, name)
        if typing_extensions.is_typeddict(cls):
            hints = typing.get_type_hints(cls)
            table[name] = {
                field: Field(python_type(hint), field not in cls.__required_keys__)
                for field, hint in hints.items()
            }
        else:
            table[name] = {
                field: Field(python_type(info.annotation), not info.is_required())
                for field, info in cls.model_fields.items()
            }
    return table


# -- comparing ------------------------------------------------------------------------------------


def disagreements(
    document: TypeTable, sdk: TypeTable, *, integers_are_numbers: bool = False
) -> list[str]:
    """Every field where the SDK and the document differ, as readable lines (none: they agree).

    ``integers_are_numbers``: the SDK's language has one number type (TypeScript).
    """

    def plain(text: str) -> str:
        return text.replace("integer", "number") if integers_are_numbers else text

    problems: list[str] = []
    for name, (role, where) in DOCUMENT_TYPES.items():
        expected, actual = document.get(name), sdk.get(name)
        if expected is None or actual is None:
            problems.append(f"{name}: missing from the {'SDK' if actual is None else 'document'}")
            continue
        for field in sorted(expected.keys() - actual.keys()):
            problems.append(f"{name}.{field}: in the document ({where}), not in the SDK")
        for field in sorted(actual.keys() - expected.keys()):
            problems.append(f"{name}.{field}: in the SDK, not in the document ({where})")
        for field in sorted(expected.keys() & actual.keys()):
            want, got = expected[field], actual[field]
            want_type, got_type = plain(want.type), plain(got.type)
            widened = role == "response" and got_type == "string" and want_type.startswith("enum:")
            if want_type != got_type and not widened:
                problems.append(
                    f"{name}.{field}: type {got.type} in the SDK, {want.type} in the document"
                )
            if want.optional != got.optional:
                problems.append(
                    f"{name}.{field}: {'optional' if got.optional else 'required'} in the SDK, "
                    f"{'optional' if want.optional else 'required'} in the document"
                )
    return problems


# -- the TypeScript SDK's side --------------------------------------------------------------------

TYPESCRIPT_DIR = OPENAPI_PATH.parent / "typescript"


def typescript_types(node: str = "node", package: Path = TYPESCRIPT_DIR) -> TypeTable:
    """The TypeScript SDK's exported types, read by its compiler (needs `npm ci` done)."""
    out = subprocess.run(
        [node, "scripts/sdk-types.cjs", *DOCUMENT_TYPES],
        cwd=package,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return {
        name: {field: Field(**spec) for field, spec in fields.items()}
        for name, fields in json.loads(out.stdout).items()
        if fields is not None
    }
