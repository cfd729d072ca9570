"""Property-based requests generated from /openapi.json: no 5xx, responses match the schema,
and every request the schema calls valid is accepted (the schema says what the server
enforces), except where media is read before the answer (uploads, estimates): whether a file is
a usable video, or a URL answers, is beyond what a schema can say. What is sent is in
`server.schemafuzz`; bench/schemathesis.py sends the same and counts the outcomes.
"""

from __future__ import annotations

from server.helpers import ApiServer
from server.schemafuzz import OPERATIONS, Case, Run, drive, fuzz_key, runs


def test_api_conforms_to_its_schema(api_server: ApiServer) -> None:
    key = fuzz_key(api_server)
    planned = runs(api_server)
    assert len({run.operation.label for run in planned}) == OPERATIONS
    for run in planned:

        def check(case: Case, run: Run = run) -> None:
            case.call_and_validate(headers={"x-api-key": key}, checks=run.checks, timeout=30)

        drive(run, check)
