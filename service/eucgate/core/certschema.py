"""The JSON Schema of an EUC as integrators write it, generated from the model.

The EUC travels as `eucgate.v1.EndUserCertificate` in the protobuf JSON mapping, so the
schema speaks that form, not the model's: property names are the proto's JSON names
(lowerCamelCase, what protobuf printers write by default), enum values the proto's
names (`ITEM_FORM_MAGNET`), decimals strings, timestamps RFC 3339 strings. Everything
else is read from the model: which fields are required, nesting, list and text bounds,
and the formats its validators check (country and currency codes, element symbols, HS
codes, decimals). The model stays the authority (`eucgate validate`); the schema is a
guide for editors and CI that cannot say everything (e.g. a validity that ends after it
starts). `docs/euc.schema.json` is this output; `eucgate validate --print-schema`
regenerates it, and a test fails when the two drift apart. Pure: reads no file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from eucgate_client.v1 import certificate_pb2
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from eucgate.core import model

DIALECT = "https://json-schema.org/draft/2020-12/schema"
_MARK = "x-eucgate-def"  # a stand-in for a shared definition, replaced by a $ref

# Shared definitions that validators of the model stand for.
_DEFS: dict[str, JsonSchemaValue] = {
    "CountryCode": {
        "description": "An officially assigned ISO 3166-1 alpha-2 country code.",
        "type": "string",
        "enum": sorted(model.ISO_3166_ALPHA2),
    },
    "ElementSymbol": {
        "description": "A chemical element symbol, e.g. Dy, Tb, Sm.",
        "type": "string",
        "enum": sorted(model.ELEMENT_SYMBOLS),
    },
}


def _anchored(pattern: str) -> str:
    return f"^{pattern}$"


# What each scalar validator of the model means in JSON Schema terms.
_VALIDATORS: dict[Callable[..., Any], JsonSchemaValue] = {
    model._country: {_MARK: "CountryCode"},
    model._element: {_MARK: "ElementSymbol"},
    model._currency: {"pattern": _anchored("[A-Z]{3}"), "description": "An ISO 4217 code."},
    model._hs_code: {
        "pattern": _anchored(model._HS_RE.pattern),
        "description": "A Harmonized System code, read at the 6-digit subheading or finer "
        "(e.g. 8505.11); a 4-digit heading is accepted but refers.",
    },
    model._scheme: {"pattern": _anchored(model._SCHEME_RE.pattern)},
    model._unit: {"pattern": _anchored(model._UNIT_RE.pattern)},
    model._not_blank: {"pattern": r"\S"},
}


class _WireSchema(GenerateJsonSchema):
    """pydantic's schema generator, taught what the model's validators check."""

    def function_after_schema(
        self, schema: core_schema.AfterValidatorFunctionSchema
    ) -> JsonSchemaValue:
        inner = super().function_after_schema(schema)
        function = schema["function"]["function"]
        extra = _VALIDATORS.get(function) or _text_bound(function)
        if _MARK in extra:
            return dict(extra)
        return {**inner, **extra}

    def function_before_schema(
        self, schema: core_schema.BeforeValidatorFunctionSchema
    ) -> JsonSchemaValue:
        if schema["function"]["function"] is not model._decimal:
            return super().function_before_schema(schema)
        return {
            "type": "string",
            "pattern": _anchored(model._DECIMAL_RE.pattern),
            "description": "A decimal string, no sign or exponent.",
        }


# pydantic writes a Decimal's bounds under these keys, which JSON Schema has only for
# numbers: they become words in the description.
_BOUNDS = {"gt": "greater than", "ge": "at least", "lt": "less than", "le": "at most"}


def _text_bound(function: Callable[..., Any]) -> JsonSchemaValue:
    """A text bound of the model (a closure over `limit` bytes): maxLength counts code
    points, so it is necessary, not sufficient; the description says the byte bound."""
    code = getattr(function, "__code__", None)
    cells = getattr(function, "__closure__", None) or ()
    if code is None or "limit" not in code.co_freevars:
        return {}
    limit = dict(zip(code.co_freevars, (c.cell_contents for c in cells), strict=True))["limit"]
    if not isinstance(limit, int):
        return {}
    return {
        "maxLength": limit,
        "description": f"At most {limit} bytes of UTF-8; no control characters but tab, "
        "line feed and carriage return.",
    }


def certificate_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of `eucgate.v1.EndUserCertificate` in JSON."""
    generated = model.Certificate.model_json_schema(schema_generator=_WireSchema)
    definitions: dict[str, Any] = generated.pop("$defs")
    root = _wire(generated, certificate_pb2.EndUserCertificate.DESCRIPTOR)
    defs: dict[str, Any] = {}
    for name, schema in definitions.items():
        if "properties" in schema:
            defs[name] = _wire(schema, certificate_pb2.DESCRIPTOR.message_types_by_name[name])
        else:
            defs[name] = _proto_enum(name, schema)
    defs.update(_DEFS)
    root.pop("title", None)
    root.pop("description", None)  # the model's docstring speaks to Python callers
    return {
        "$schema": DIALECT,
        "title": "eucgate.v1.EndUserCertificate",
        "description": "An end-user certificate in the protobuf JSON mapping, as signed "
        "(DSSE payload type application/vnd.eucgate.euc.v1+json). Property names are the "
        "proto's JSON names; the service also accepts the proto field names "
        "(certificate_number), which this schema does not list. Generated from the "
        "service's model: `eucgate validate --print-schema`.",
        **root,
        "$defs": dict(sorted(defs.items())),
    }


def certificate_json_schema_text() -> str:
    """The schema as the committed file holds it: 2-space indent, a final newline."""
    return json.dumps(certificate_json_schema(), indent=2, ensure_ascii=False) + "\n"


def _wire(schema: dict[str, Any], descriptor: Any) -> dict[str, Any]:
    """A model's object schema with the proto's JSON names, no titles or defaults (proto3
    defaults are implicit), and markers replaced by $refs."""
    json_names = {f.name: f.json_name for f in descriptor.fields}
    out = {k: v for k, v in schema.items() if k not in ("properties", "required")}
    out["properties"] = {
        json_names[name]: _clean(value) for name, value in schema["properties"].items()
    }
    if schema.get("required"):
        out["required"] = [json_names[name] for name in schema["required"]]
    return out


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        if _MARK in value:
            return {"$ref": f"#/$defs/{value[_MARK]}"}
        out = {k: _clean(v) for k, v in value.items() if k not in ("title", "default", *_BOUNDS)}
        bounds = [f"{word} {value[key]}" for key, word in _BOUNDS.items() if key in value]
        if bounds:
            out["description"] = f"{out['description'].rstrip('.')} ({', '.join(bounds)})."
        return out
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _proto_enum(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """An enum of the model as the proto names its values (with the type's prefix)."""
    enum = certificate_pb2.DESCRIPTOR.enum_types_by_name[name]
    prefix = model._enum_prefix(enum)
    return {
        "type": "string",
        "enum": [prefix + value for value in schema["enum"]],
        "description": f"eucgate.v1.{name}, by name.",
    }
