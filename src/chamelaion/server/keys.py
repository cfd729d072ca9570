"""API keys: made from a CSPRNG, shown once, stored as prefix + SHA-256.

A key has 256 bits of entropy, so a plain SHA-256 cannot be brute-forced back and a slow
password hash would only cost latency on every request. The prefix (indexed, unique) finds the
row; the hash is compared in constant time so timing reveals nothing about the rest of the key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chamelaion.server.models import Account, ApiKey, utcnow

KEY_MARK = "chm_"
PREFIX_LENGTH = len(KEY_MARK) + 8


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    return key[:PREFIX_LENGTH]


@dataclass(frozen=True)
class CreatedKey:
    key: str  # the only time the full key exists outside the client
    record: ApiKey


def create_key(
    session: Session,
    name: str,
    account_id: str | None = None,
    max_requests: int | None = None,
    rate_limit_generate: str | None = None,
    rate_limit_read: str | None = None,
) -> CreatedKey:
    """Create a key (and, unless `account_id` is given, a new account named after it)."""
    if account_id is None:
        account = Account(name=name)
        session.add(account)
        session.flush()
        account_id = account.id
    elif session.get(Account, account_id) is None:
        raise LookupError(f"no account with id {account_id}")
    for _ in range(5):  # a prefix collision is astronomically rare; retry rather than fail
        key = KEY_MARK + secrets.token_urlsafe(32)
        record = ApiKey(
            account_id=account_id,
            name=name,
            prefix=key_prefix(key),
            key_hash=hash_key(key),
            max_requests=max_requests,
            requests_used=0,
            rate_limit_generate=rate_limit_generate,
            rate_limit_read=rate_limit_read,
        )
        try:
            with session.begin_nested():
                session.add(record)
        except IntegrityError:
            continue
        return CreatedKey(key, record)
    raise RuntimeError("could not allocate a unique key prefix")


@dataclass(frozen=True)
class KeyRecord:
    """What authentication needs to know about a key (read with one Core query, no ORM)."""

    id: str
    account_id: str
    revoked: bool
    max_requests: int | None
    requests_used: int
    rate_limit_generate: str | None
    rate_limit_read: str | None


# Built once: constructing a statement costs more than running it on every request.
_KEY_BY_PREFIX = select(
    ApiKey.id,
    ApiKey.account_id,
    ApiKey.key_hash,
    ApiKey.revoked_at,
    ApiKey.max_requests,
    ApiKey.requests_used,
    ApiKey.rate_limit_generate,
    ApiKey.rate_limit_read,
).where(ApiKey.prefix == bindparam("prefix"))


def find_key(connection: Connection, key: str) -> KeyRecord | None:
    """The key's record, or None when no stored key matches (compared in constant time)."""
    row = connection.execute(_KEY_BY_PREFIX, {"prefix": key_prefix(key)}).first()
    if row is None or not hmac.compare_digest(row.key_hash.encode(), hash_key(key).encode()):
        return None
    return KeyRecord(
        id=row.id,
        account_id=row.account_id,
        revoked=row.revoked_at is not None,
        max_requests=row.max_requests,
        requests_used=row.requests_used,
        rate_limit_generate=row.rate_limit_generate,
        rate_limit_read=row.rate_limit_read,
    )


def revoke_key(session: Session, id_or_prefix: str) -> ApiKey | None:
    record = (
        session.get(ApiKey, id_or_prefix)
        or session.scalars(select(ApiKey).where(ApiKey.prefix == id_or_prefix)).first()
    )
    if record is not None and record.revoked_at is None:
        record.revoked_at = utcnow()
    return record


def consume_quota(session: Session, key_id: str) -> bool:
    """Count one request against the key; False when its quota is used up.

    A single conditional UPDATE, so concurrent submissions can never overshoot the quota.
    """
    result = session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            (ApiKey.max_requests.is_(None)) | (ApiKey.requests_used < ApiKey.max_requests),
        )
        .values(requests_used=ApiKey.requests_used + 1)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
