"""The integrator's artefacts: the example EUC validates, and the committed JSON Schema
is what the model generates and agrees with the model on valid and invalid EUCs."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from eucgate.core import model
from eucgate.core.certschema import certificate_json_schema, certificate_json_schema_text
from eucgate.core.model import PAYLOAD_TYPE_JSON, certificate_from_payload
from eucgate.errors import InvalidSubmission
from eucgate_client.v1 import certificate_pb2
from google.protobuf import json_format

from tests.factories import SAMPLE_BUNDLE_PATH

DOCS = Path(__file__).resolve().parents[2] / "docs"
SCHEMA_FILE = DOCS / "euc.schema.json"
EXAMPLE_FILE = DOCS / "examples" / "euc.json"
REGENERATE = "eucgate validate --print-schema > docs/euc.schema.json"

Doc = dict[str, Any]


def _example() -> Doc:
    doc: Doc = json.loads(EXAMPLE_FILE.read_text())
    return doc


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))


def test_the_committed_schema_is_what_the_model_generates() -> None:
    assert SCHEMA_FILE.read_text() == certificate_json_schema_text(), (
        f"docs/euc.schema.json drifted from the model; regenerate it: {REGENERATE}"
    )


def test_the_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(certificate_json_schema())


def test_the_example_validates_in_the_service_and_against_the_schema() -> None:
    certificate_from_payload(PAYLOAD_TYPE_JSON, EXAMPLE_FILE.read_bytes())
    assert list(_validator().iter_errors(_example())) == []


def test_the_example_is_the_certificate_the_bundle_cases_start_from() -> None:
    """So the example is known to be APPROVED by the sample bundle's own test case."""
    base = yaml.safe_load(SAMPLE_BUNDLE_PATH.read_text())["tests"]["base"]
    from_bundle = json_format.ParseDict(base, certificate_pb2.EndUserCertificate())
    example = json_format.Parse(EXAMPLE_FILE.read_text(), certificate_pb2.EndUserCertificate())
    example.ClearField("transaction")
    assert example == from_bundle


def _drop(*path: str | int) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        target: Any = doc
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]

    return mutate


def _set(value: Any, *path: str | int) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        target: Any = doc
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return mutate


INVALID: dict[str, Callable[[Doc], None]] = {
    **{
        f"no {name}": _drop(name)
        for name in (
            "certificateNumber",
            "issuedAt",
            "validity",
            "importer",
            "endUser",
            "items",
            "endUse",
            "finalDestinationCountry",
            "signatory",
        )
    },
    "no item quantity": _drop("items", 0, "quantity"),
    "no end-user country": _drop("endUser", "countryCode"),
    "no items": _set([], "items"),
    "unassigned country": _set("XX", "finalDestinationCountry"),
    "lower-case country": _set("in", "endUser", "countryCode"),
    "malformed HS code": _set("85-05", "items", 0, "hsCode"),
    "unknown element": _set(["Xy"], "items", 0, "elements"),
    "signed quantity": _set("-5", "items", 0, "quantity", "value"),
    "exponent in an amount": _set("1e3", "items", 0, "value", "amount"),
    "currency in lower case": _set("usd", "items", 0, "value", "currencyCode"),
    "enum by model name": _set("MAGNET", "items", 0, "form"),
    "unknown property": _set("x", "endUser", "nickname"),
    "blank name": _set("   ", "signatory", "name"),
    "too many items": _set([{"hsCode": "8505.11"}] * 100, "items"),
}


@pytest.mark.parametrize("name", list(INVALID))
def test_schema_and_service_both_refuse(name: str) -> None:
    doc = copy.deepcopy(_example())
    INVALID[name](doc)
    assert list(_validator().iter_errors(doc)), f"the schema accepts: {name}"
    with pytest.raises(InvalidSubmission):
        certificate_from_payload(PAYLOAD_TYPE_JSON, json.dumps(doc).encode())


def test_text_bounds_of_the_model_reach_the_schema() -> None:
    """The bounds are read from the model's validators; losing them must not go unseen."""
    defs = certificate_json_schema()["$defs"]
    assert defs["Party"]["properties"]["legalName"]["maxLength"] == model.MAX_NAME_BYTES
    assert defs["Item"]["properties"]["description"]["maxLength"] == model.MAX_DESCRIPTION_BYTES
    assert defs["EndUse"]["properties"]["statement"]["maxLength"] == model.MAX_STATEMENT_BYTES
    root = certificate_json_schema()["properties"]
    assert root["items"]["maxItems"] == model.MAX_ITEMS
