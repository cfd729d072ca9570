"""The service's commands: `keys create|list|revoke`, `db upgrade`, and `serve`'s first key."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import select

from chamelaion.server.models import Base
from server.helpers import Server, database_url, sessions_for


def chamelaion(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHAMELAION_DATABASE_URL": database_url(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "chamelaion.cli", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_keys_lifecycle(tmp_path: Path) -> None:
    created = chamelaion("keys", "create", "--name", "ci", "--max-requests", "5", data_dir=tmp_path)
    assert created.returncode == 0, created.stderr
    key = re.search(r"(chm_[A-Za-z0-9_-]{43})", created.stdout)
    key_id = re.search(r"key id: (\S+)", created.stdout)
    assert key and key_id
    listed = chamelaion("keys", "list", data_dir=tmp_path)
    assert key_id.group(1) in listed.stdout and "0/5" in listed.stdout and "active" in listed.stdout
    assert key.group(1) not in listed.stdout  # the secret is shown once, at creation only
    assert key.group(1)[:12] in listed.stdout  # the prefix identifies it
    revoked = chamelaion("keys", "revoke", key_id.group(1), data_dir=tmp_path)
    assert revoked.returncode == 0, revoked.stdout
    assert "revoked" in chamelaion("keys", "list", data_dir=tmp_path).stdout
    with sessions_for(tmp_path)() as session:
        stored = [session.execute(select(table)).all() for table in Base.metadata.sorted_tables]
    assert key.group(1) not in repr(stored)  # only its hash is kept


def test_keys_create_refuses_bad_options(tmp_path: Path) -> None:
    bad_limit = chamelaion(
        "keys", "create", "--name", "x", "--rate-limit", "lots", data_dir=tmp_path
    )
    assert bad_limit.returncode == 2 and "rate limit" in bad_limit.stdout
    no_account = chamelaion("keys", "create", "--name", "x", "--account", "nope", data_dir=tmp_path)
    assert no_account.returncode == 1 and "no account" in no_account.stdout
    assert chamelaion("keys", "revoke", "nope", data_dir=tmp_path).returncode == 1
    no_owner = chamelaion("keys", "webhook-secret", "nope", data_dir=tmp_path)
    assert no_owner.returncode == 1 and "no account, key id or key prefix nope" in no_owner.stdout


def test_db_upgrade_is_idempotent(tmp_path: Path) -> None:
    for _ in range(2):
        result = chamelaion("db", "upgrade", data_dir=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "database at head" in result.stdout


def test_first_serve_creates_and_prints_a_working_key(tmp_path: Path) -> None:
    server = Server(tmp_path).start()
    try:
        printed = server.stdout_path.read_text()
        key = re.search(r"CHAMELAION_API_KEY=(chm_\S+)", printed)
        assert key, printed
        assert f"CHAMELAION_BASE_URL={server.base_url}/api" in printed
        response = httpx.get(f"{server.api}/lipsync/requests", headers={"x-api-key": key.group(1)})
        assert response.status_code == 200
    finally:
        server.stop()
    server.start()  # a second start has keys already: it prints none
    server.stop()
    assert "CHAMELAION_API_KEY" not in server.stdout_path.read_text()
