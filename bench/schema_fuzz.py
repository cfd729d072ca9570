"""Counts of the schemathesis run: what `make test`'s test_schemathesis.py sends, tallied.

    .venv/bin/python bench/schema_fuzz.py

The test stops at the first broken check; this sends the very same cases (tests/server/
schemafuzz.py: every operation of /openapi.json, valid then invalid requests, the same number of
Hypothesis examples each) to the same kind of server (API only, jobs stay queued) and prints how
many of each outcome there were: operations, cases generated, server errors (5xx), schema-valid
requests rejected (4xx other than 401/403/404, which schemathesis counts as acceptance), and every
check that failed, by name. So a closing note can quote figures, not just "it passed".
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path

from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the test harness

from server.helpers import close_databases, contract_server  # noqa: E402
from server.schemafuzz import EXAMPLES_PER_OPERATION, Case, Run, drive, fuzz_key, runs  # noqa: E402

ACCEPTED_4XX = {401, 403, 404}  # what positive_data_acceptance also takes as acceptance


def main() -> int:
    cases = Counter[str]()  # by mode
    statuses = Counter[str]()  # "<mode> <status class>"
    rejected = Counter[str]()  # "<operation> <status>" of valid requests refused
    failed_checks = Counter[str]()
    server_errors = 0
    with tempfile.TemporaryDirectory(prefix="schema-fuzz-") as folder:
        try:
            with contract_server(Path(folder)) as api_server:
                key = fuzz_key(api_server)
                planned = runs(api_server)
                for run in planned:

                    def tally(case: Case, run: Run = run) -> None:
                        nonlocal server_errors
                        response = case.call(headers={"x-api-key": key}, timeout=30)
                        mode = run.mode.value
                        cases[mode] += 1
                        status = response.status_code
                        statuses[f"{mode} {status // 100}xx"] += 1
                        server_errors += status >= 500
                        if run.mode is GenerationMode.POSITIVE and (
                            400 <= status < 500 and status not in ACCEPTED_4XX
                        ):
                            where = "" if run.acceptance_checked else " (media read at once)"
                            rejected[f"{run.operation.label} {status}{where}"] += 1
                        try:
                            case.validate_response(response, checks=run.checks)
                        except FailureGroup as group:
                            for failure in group.exceptions:
                                failed_checks[f"{run.operation.label}: {failure.title}"] += 1

                    drive(run, tally)
        finally:
            close_databases()

    operations = len({run.operation.label for run in planned})
    print(
        f"operations {operations}; runs (operation x mode) {len(planned)}; up to "
        f"{EXAMPLES_PER_OPERATION} examples each"
    )
    print(
        f"cases generated {sum(cases.values())}: "
        + ", ".join(f"{mode} {n}" for mode, n in sorted(cases.items()))
    )
    print("responses: " + ", ".join(f"{k} {n}" for k, n in sorted(statuses.items())))
    print(f"server errors (5xx): {server_errors}")
    checked = sum(n for k, n in rejected.items() if not k.endswith("(media read at once)"))
    print(
        f"schema-valid requests rejected: {sum(rejected.values())} ({checked} where the "
        "schema must say all the server enforces)"
    )
    for where, n in rejected.most_common():
        print(f"  {n:>4}  {where}")
    print(f"failed checks: {sum(failed_checks.values())}")
    for what, n in failed_checks.most_common():
        print(f"  {n:>4}  {what}")
    return 1 if server_errors or failed_checks else 0


if __name__ == "__main__":
    raise SystemExit(main())
