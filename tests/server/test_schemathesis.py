"""Property-based requests generated from /openapi.json: no 5xx, responses match the schema,
and every request the schema calls valid is accepted (the schema says what the server
enforces), except where media is read before the answer (uploads, estimates): whether a file is
a usable video, or a URL answers, is beyond what a schema can say.

Schemathesis' lazy pytest fixture does not work with this pytest version, so each operation's
Hypothesis strategy is driven directly, a bounded number of examples per operation.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from server.helpers import ApiServer, new_key, secret_for

EXAMPLES_PER_OPERATION = 25
# Operations that read their media before answering: whether an upload is a usable video, or
# whether a URL answers at all, is beyond what a schema can say, so a schema-valid request may
# be refused with a documented 400. (Generate from URLs fetches in the worker: it accepts.)
MEDIA_MEASURED_AT_ONCE = ("/generate-with-media", "/estimate", "/estimate-with-media")


def test_api_conforms_to_its_schema(api_server: ApiServer) -> None:
    # A key whose generate limit stays out of the way (429 would still be a documented answer).
    fuzz = new_key(api_server.server.data_dir, "fuzz", rate_limit_generate="100000/minute")
    key = fuzz.key
    # and an account that may ask for webhooks, so a schema-valid webhook_url is accepted
    secret_for(api_server.server.data_dir, fuzz.account_id)
    schema = schemathesis.openapi.from_url(f"{api_server.server.base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 26  # 12 per prefix, /healthz, /readyz
    # valid requests, then invalid ones (wrong types, missing fields): never a 5xx either way
    # (an operation with no parameters and no body has nothing to make invalid)
    runs = [
        (op, mode)
        for mode in GenerationMode
        for op in operations
        if mode is GenerationMode.POSITIVE or op.path_parameters or op.query or op.body
    ]
    for operation, mode in runs:
        checks = [
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ]
        if not operation.path.endswith(MEDIA_MEASURED_AT_ONCE):
            checks.append(positive_data_acceptance)

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(
                headers={"x-api-key": key},
                checks=checks,  # noqa: B023 - check() runs within this iteration
                timeout=30,
            )

        check()
