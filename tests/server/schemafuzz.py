"""What the schemathesis run sends, shared by the test (tests/server/test_schemathesis.py, which
fails on the first broken check) and the benchmark that counts (bench/schemathesis.py).

Schemathesis' lazy pytest fixture does not work with this pytest version, so each operation's
Hypothesis strategy is driven directly, a bounded number of examples per operation: valid
requests, then invalid ones (wrong types, missing fields); an operation with no parameters and no
body has nothing to make invalid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
from schemathesis.core.result import Ok

from server.helpers import ApiServer, new_key, secret_for

EXAMPLES_PER_OPERATION = 25
OPERATIONS = 26  # 12 per prefix, /healthz, /readyz
# Operations that read their media before answering: whether an upload is a usable video, or
# whether a URL answers at all, is beyond what a schema can say, so a schema-valid request may
# be refused with a documented 400. (Generate from URLs fetches in the worker: it accepts.)
MEDIA_MEASURED_AT_ONCE = ("/generate-with-media", "/estimate", "/estimate-with-media")

# schemathesis's operations and cases are generic over its own internals (the parameter,
# response and schema classes), which nothing here names: used as schemathesis itself uses them.
Operation = schemathesis.APIOperation[Any, Any, Any, Any]
Case = schemathesis.Case[Any]


@dataclass(frozen=True)
class Run:
    """One operation in one generation mode, and the checks its responses must pass."""

    operation: Operation
    mode: GenerationMode
    checks: list[schemathesis.CheckFunction]

    @property
    def acceptance_checked(self) -> bool:
        """Whether every schema-valid request must be accepted here."""
        return positive_data_acceptance in self.checks


def fuzz_key(api_server: ApiServer) -> str:
    """A key whose generate limit stays out of the way (429 would still be a documented answer),
    on an account that may ask for webhooks, so a schema-valid webhook_url is accepted."""
    fuzz = new_key(api_server.server.data_dir, "fuzz", rate_limit_generate="100000/minute")
    secret_for(api_server.server.data_dir, fuzz.account_id)
    return fuzz.key


def runs(api_server: ApiServer) -> list[Run]:
    """Every operation of the server's /openapi.json in each mode, with its checks."""
    schema = schemathesis.openapi.from_url(f"{api_server.server.base_url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()  # the server's own document is valid
        operations.append(result.ok())
    out = []
    for mode in GenerationMode:
        for operation in operations:
            invalidable = operation.path_parameters or operation.query or operation.body
            if mode is not GenerationMode.POSITIVE and not invalidable:
                continue
            checks = [
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
            ]
            if not operation.path.endswith(MEDIA_MEASURED_AT_ONCE):
                checks.append(positive_data_acceptance)
            out.append(Run(operation, mode, checks))
    return out


def drive(run: Run, each: Callable[[Case], None]) -> None:
    """Call `each` on up to EXAMPLES_PER_OPERATION cases Hypothesis generates for `run`."""

    @given(case=run.operation.as_strategy(generation_mode=run.mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def generated(case: Case) -> None:
        each(case)

    generated()
