"""The TypeScript SDK (`typescript/`, npm `chamelaion`) against the real service.

The shared harness starts the service (one API-only server, one with an engine worker) and makes
keys; the tests generate the media; then the SDK's own `node --test` suites and every example of
the seed reference run against that service, and their results are asserted here. The SDK's
types are checked against the committed OpenAPI document, like the Python SDK's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import mediagen
import openapi_contract as contract
from realserver import Key, Server, create_key, running

pytest.importorskip("fastapi", reason="the server extra is not installed")

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "typescript"
SEED = REPO.parent / "shared" / "seeds" / "api-reference-sdk.md"
UPLOAD_CAP = 8 * 1024 * 1024
NODE_TIMEOUT = 600
# The seed's examples in the order the reference gives them, by the file each is copied into.
EXAMPLES = ["generate", "generate-with-media", "requests-retrieve", "requests-list"]
UUID_TEXT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _node() -> str:
    node = shutil.which("node")
    assert node, "node is not installed: `make setup` installs it"
    return node


def _run(*command: str, env: dict[str, str] | None = None, cwd: Path = PACKAGE) -> str:
    """Runs a command to completion; fails the test with its output if it fails."""
    out = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=NODE_TIMEOUT
    )
    assert out.returncode == 0, f"{' '.join(command)} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.fixture(scope="module")
def built() -> None:
    """The package (ESM, CommonJS, declarations) and its compiled tests and examples."""
    if not (PACKAGE / "node_modules" / "typescript").is_dir():
        _run("npm", "ci", "--no-audit", "--no-fund")
    _run("npm", "run", "--silent", "build")
    _run("npm", "run", "--silent", "build:tests")


@dataclass
class Service:
    api: Server
    key: Key
    spent_key: Key  # a quota of 0 requests
    slow_key: Key  # one generate a minute
    worker: Server
    worker_key: Key


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    api_dir = tmp_path_factory.mktemp("ts-api")
    worker_dir = tmp_path_factory.mktemp("ts-worker")
    keys = (
        create_key(api_dir, "ts"),
        create_key(api_dir, "ts-spent", "--max-requests", "0"),
        create_key(api_dir, "ts-slow", "--rate-limit", "1/minute"),
    )
    worker_key = create_key(worker_dir, "ts-worker")
    api = Server(api_dir, env={"CHAMELAION_MAX_UPLOAD_BYTES": str(UPLOAD_CAP)})
    with running(api), running(Server(worker_dir, workers=1)) as worker:
        yield Service(api, *keys, worker, worker_key)


def _env(**values: str) -> dict[str, str]:
    """The environment of a node process: no CHAMELAION_* of the caller's, then `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAMELAION_")}
    return {**env, **values}


# -- the SDK's types and package ----------------------------------------------------------------


def test_typescript_types_agree_with_the_document() -> None:
    problems = contract.disagreements(
        contract.document_types(contract.load_document()),
        contract.typescript_types(_node()),
        integers_are_numbers=True,
    )
    assert problems == []


def test_a_typescript_disagreement_is_reported(tmp_path: Path) -> None:
    """The TypeScript side can fail: a copy of the sources with a field made optional, one
    retyped and one renamed is reported field by field."""
    copy = tmp_path / "typescript"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("node_modules", "dist", "build"))
    (copy / "node_modules").symlink_to(PACKAGE / "node_modules")
    requests = copy / "src" / "resources" / "lipsync" / "requests.ts"
    text = requests.read_text()
    for old, new in [
        ("  created_at: string;", "  created_at?: string;"),
        ("  limit: number;", "  limit: string;"),
        ("  total: number;", "  count: number;"),
    ]:
        assert old in text
        text = text.replace(old, new)
    requests.write_text(text)
    problems = contract.disagreements(
        contract.document_types(contract.load_document()),
        contract.typescript_types(_node(), copy),
        integers_are_numbers=True,
    )
    assert problems == [
        "LipsyncRequest.created_at: optional in the SDK, required in the document",
        "Pagination.total: in the document (#/components/schemas/Pagination), not in the SDK",
        "Pagination.count: in the SDK, not in the document (#/components/schemas/Pagination)",
        "Pagination.limit: type string in the SDK, integer in the document",
    ]


def test_package_version_is_the_sources() -> None:
    version = json.loads((PACKAGE / "package.json").read_text())["version"]
    assert f"VERSION = '{version}'" in (PACKAGE / "src" / "version.ts").read_text()


def test_npm_pack_is_small(built: None) -> None:
    report = json.loads(_run("npm", "pack", "--dry-run", "--json"))[0]
    files = {entry["path"] for entry in report["files"]}
    assert {"dist/esm/index.js", "dist/esm/index.d.ts", "dist/cjs/index.js"} <= files
    assert "dist/cjs/package.json" in files
    assert not any(name.startswith(("src/", "tests/", "build/", "examples/")) for name in files)
    assert report["size"] < 100_000, f"npm pack: {report['size']} bytes"


# -- the SDK's own tests, against the real service -----------------------------------------------


def _signed_delivery() -> dict[str, str]:
    """A webhook delivery signed now by the service's own signing code, for `verifyWebhook`."""
    from chamelaion.server.webhooks import new_secret, signature_header

    secret, now = new_secret(), int(time.time())
    body = json.dumps(
        {
            "id": str(uuid.uuid4()),
            "status": "completed",
            "created_at": "2026-04-07T10:00:00Z",
            "output_url": "https://api.example.com/v1/files/x.mp4?expires=1&signature=ab",
            "reference_id": "dub-é-42",  # not ASCII: the signature is over the UTF-8 bytes
        },
        ensure_ascii=False,
    )
    return {
        "CHAMELAION_TEST_WEBHOOK_SECRET": secret,
        "CHAMELAION_TEST_WEBHOOK_BODY": body,
        "CHAMELAION_TEST_WEBHOOK_SIGNATURE": signature_header(secret, now, body.encode()),
        "CHAMELAION_TEST_WEBHOOK_TIMESTAMP": str(now),
    }


@pytest.mark.parametrize("suite", ["live", "retries", "wait-download", "webhooks"])
def test_node_suite(
    suite: str, built: None, service: Service, short_face_video: Path, short_speech: Path
) -> None:
    output = _run(
        _node(),
        "--test",
        f"build/tests/{suite}.test.js",
        env=_env(
            CHAMELAION_API_KEY=service.key.key,
            CHAMELAION_BASE_URL=service.api.sdk_base_url,
            CHAMELAION_TEST_SPENT_KEY=service.spent_key.key,
            CHAMELAION_TEST_SLOW_KEY=service.slow_key.key,
            CHAMELAION_TEST_WORKER_BASE_URL=service.worker.sdk_base_url,
            CHAMELAION_TEST_WORKER_API_KEY=service.worker_key.key,
            CHAMELAION_TEST_VIDEO=str(short_face_video),
            CHAMELAION_TEST_AUDIO=str(short_speech),
            CHAMELAION_TEST_UPLOAD_CAP=str(UPLOAD_CAP),
            **_signed_delivery(),
        ),
    )
    passed = re.search(r"^# pass (\d+)$", output, re.M)
    failed = re.search(r"^# fail (\d+)$", output, re.M)
    assert passed and failed, output
    assert int(failed.group(1)) == 0 and int(passed.group(1)) > 0, output


# -- the seed's examples, exactly as the reference gives them ------------------------------------


def test_examples_are_the_seeds_verbatim() -> None:
    # The seed lives beside the checkout, as the real footage does (CI has both); a clone made
    # elsewhere skips this comparison, as it skips the footage tests, rather than failing.
    if not SEED.is_file():
        pytest.skip(f"the seed reference is not present at {SEED}")
    blocks = re.findall(r"```typescript\n(.*?)```", SEED.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == len(EXAMPLES)
    for name, block in zip(EXAMPLES, blocks, strict=True):
        assert (PACKAGE / "examples" / f"{name}.ts").read_text(encoding="utf-8") == block


@pytest.fixture(scope="module")
def examples_key(service: Service) -> Key:
    """A key on an account of its own, so the list example shows exactly the examples' requests."""
    return create_key(service.api.data_dir, "ts-examples")


@pytest.fixture(scope="module")
def examples_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The examples' working directory: `path/to/file`, which the upload example sends as both
    its video and its audio, is a talking-head MP4 with speech."""
    directory = tmp_path_factory.mktemp("ts-examples")
    (directory / "path" / "to").mkdir(parents=True)
    speech = mediagen.phrases_with_gaps(["hello mama"], gap=0.3)
    video = mediagen.write_face_video(directory / "file.mp4", 2.0, 25.0, 320, 240, audio=speech)
    video.rename(directory / "path" / "to" / "file")
    return directory


def _run_example(name: str, service: Service, key: Key, directory: Path) -> str:
    return _run(
        _node(),
        "--require",
        str(PACKAGE / "examples" / "node-repl-globals.cjs"),
        str(PACKAGE / "build" / "examples" / f"{name}.js"),
        env=_env(CHAMELAION_API_KEY=key.key, CHAMELAION_BASE_URL=service.api.sdk_base_url),
        cwd=directory,
    ).strip()


def _request(service: Service, key: Key, id: str) -> dict[str, object]:
    response = httpx.get(f"{service.api.api}/lipsync/requests/{id}", headers={"x-api-key": key.key})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_seed_examples_run(
    built: None, service: Service, examples_key: Key, examples_dir: Path
) -> None:
    """Each example, unchanged, against the real service: only the key and base URL come from
    the environment."""
    generated = _run_example("generate", service, examples_key, examples_dir)
    assert UUID_TEXT.match(generated), generated
    assert _request(service, examples_key, generated)["reference_id"] == "dub-episode-42"

    uploaded = _run_example("generate-with-media", service, examples_key, examples_dir)
    assert UUID_TEXT.match(uploaded), uploaded
    assert _request(service, examples_key, uploaded)["reference_id"] == "upload-demo-01"

    # The retrieve example asks for the seed's own request id; the service finds a request by
    # its UUID or by its reference_id, so a request carrying that reference_id answers.
    seed_id = "6f82a2d8-a6d4-4e8a-a0fa-e8b09823a2d8"
    response = httpx.post(
        f"{service.api.api}/lipsync/generate",
        headers={"x-api-key": examples_key.key},
        json={
            "inputs": [
                {"type": "video", "url": "https://cdn.example.com/episodes/42.mp4"},
                {"type": "audio", "url": "https://cdn.example.com/dubs/42-japanese.wav"},
            ],
            "reference_id": seed_id,
        },
    )
    assert response.status_code == 200, response.text
    retrieved = _run_example("requests-retrieve", service, examples_key, examples_dir)
    assert retrieved == response.json()["request_id"]
    assert uuid.UUID(retrieved)

    listed = _run_example("requests-list", service, examples_key, examples_dir)
    for request_id in (generated, uploaded, retrieved):
        assert f"id: '{request_id}'" in listed, listed
