"""The committed OpenAPI document is the app's, and the Python SDK's types agree with it.

(The TypeScript SDK's types are checked against the same document in tests/typescript.)
"""

from __future__ import annotations

import copy

import pytest

import openapi_contract as contract

pytest.importorskip("fastapi", reason="the server extra is not installed")


def test_committed_openapi_json_is_the_apps() -> None:
    from chamelaion.server.openapi import document, render

    committed = contract.OPENAPI_PATH.read_text(encoding="utf-8")
    assert committed == render(document()), "openapi.json is stale: run `make openapi`"


def test_python_sdk_types_agree_with_the_document() -> None:
    problems = contract.disagreements(
        contract.document_types(contract.load_document()), contract.python_types()
    )
    assert problems == []


def test_a_disagreement_is_reported() -> None:
    """The comparison itself: a renamed field, a changed type and a flipped optional mark in the
    document are each reported, and a status enum in a request type is not widened."""
    document = copy.deepcopy(contract.load_document())
    schemas = document["components"]["schemas"]
    schemas["Pagination"]["properties"]["count"] = schemas["Pagination"]["properties"].pop("total")
    schemas["Pagination"]["required"] = ["limit", "offset", "count"]
    schemas["OutputSync"]["properties"]["confidence"] = {"type": "string"}
    schemas["LipsyncRequest"]["required"].remove("created_at")
    schemas["GenerateInput"]["properties"]["url"] = {"type": "string", "enum": ["a", "b"]}
    problems = contract.disagreements(contract.document_types(document), contract.python_types())
    assert problems == [
        "LipsyncRequest.created_at: required in the SDK, optional in the document",
        "OutputSync.confidence: type number in the SDK, string in the document",
        "Pagination.count: in the document (#/components/schemas/Pagination), not in the SDK",
        "Pagination.total: in the SDK, not in the document (#/components/schemas/Pagination)",
        "Input.url: type string in the SDK, enum:a|b in the document",
    ]
