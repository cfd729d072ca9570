"""`Idempotency-Key` on the generate endpoints: a retried create makes no second job.

A client sends any key it likes (the SDK sends a fresh UUID per create and keeps it across its
retries). The first request with a key records (account, key) → (fingerprint of what it asked
for, the request id it created), in the same transaction as its job and its quota, so the key
exists exactly when the job does. Within `KEY_LIFETIME`:

- the same key and the same request returns the first response and creates nothing (no job,
  no quota spent);
- the same key with another request is a 409, since it cannot be what the client meant;
- two requests racing with one key create one job: the key row is the first thing each
  transaction writes, so the loser waits on the primary key until the winner commits, then
  fails to insert and answers with the winner's request id (on SQLite the database-wide write
  lock does the same). A first request that fails (402, 429) records nothing, so its retry is
  judged afresh.

Keys are per account. Rows older than `KEY_LIFETIME` are taken over by the next request with
the key, and purged in bulk at most once a minute by each API process.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from chamelaion.server import errors
from chamelaion.server.errors import ApiError
from chamelaion.server.models import IdempotencyKey, utcnow

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_LIFETIME = timedelta(hours=24)
KEY_PATTERN = r"^[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?$"
_KEY = re.compile(KEY_PATTERN)
PURGE_INTERVAL_S = 60.0


def check_key(value: str | None) -> str | None:
    """The header's key (1-255 printable ASCII characters), None if absent, else a 400."""
    if value is None:
        return None
    if not _KEY.match(value):
        raise ApiError(400, errors.INVALID_IDEMPOTENCY_KEY)
    return value


def fingerprint(*parts: str | bytes) -> str:
    """SHA-256 over `parts`, each length-prefixed so that no two sequences of parts collide."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True)
class IdempotentCreate:
    """One create's key and fingerprint, given to `claim` in the create's transaction."""

    account_id: str
    key: str
    fingerprint: str

    def claim(self, session: Session, request_id: str) -> str | None:
        """Record the key for `request_id`, as the transaction's first write; or return the
        request id of an earlier create with this key and fingerprint (after rolling back:
        the caller must create nothing then). Raises 409 for another fingerprint.

        Three rounds at most: an expired row taken over, then a row purged under our feet,
        then the answer."""
        for _ in range(3):
            try:
                session.add(
                    IdempotencyKey(
                        account_id=self.account_id,
                        key=self.key,
                        fingerprint=self.fingerprint,
                        request_id=request_id,
                        created_at=utcnow(),
                    )
                )
                session.flush()
                return None
            except IntegrityError:
                session.rollback()
            earlier = session.get(IdempotencyKey, (self.account_id, self.key))
            if earlier is None:
                continue  # purged since our insert failed: try again
            if earlier.created_at < utcnow() - KEY_LIFETIME:
                session.delete(earlier)
                session.flush()
                continue
            if earlier.fingerprint != self.fingerprint:
                session.rollback()
                raise ApiError(409, errors.IDEMPOTENCY_KEY_REUSED)
            request_id = earlier.request_id
            session.rollback()
            return request_id
        raise ApiError(409, errors.IDEMPOTENCY_KEY_REUSED)


class Purger:
    """Deletes expired keys, at most once per `PURGE_INTERVAL_S` in this process."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()
        self._next = 0.0

    def maybe_purge(self) -> None:
        with self._lock:
            if time.monotonic() < self._next:
                return
            self._next = time.monotonic() + PURGE_INTERVAL_S
        with self._sessions() as session:
            session.execute(
                delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - KEY_LIFETIME)
            )
            session.commit()
