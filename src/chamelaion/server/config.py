"""Service settings, read from `CHAMELAION_*` environment variables (or a `.env` file).

Everything has a default that works on a fresh machine: a `data` directory in the working
directory holds the SQLite database, the uploaded and fetched inputs, the outputs and the URL
signing secret. Scaling out (issue 6) only changes values here, never code paths.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_SECRET_FILE = "secret_key"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHAMELAION_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Database, inputs, outputs and secret.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///<data_dir>/chamelaion.db."
    )
    database_lock_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="SQLite: how long a write waits for another's lock before the request gets "
        "503 database unavailable.",
    )
    secret_key: str | None = Field(
        None, description="HMAC key for output URLs; default generated once into the data dir."
    )
    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str | None = Field(
        None,
        description="Base of output URLs, e.g. https://api.example.com; default: the request's "
        "if its Host is trusted (see allowed_hosts), else output URLs are relative.",
    )
    allowed_hosts: str = Field(
        "",
        description="Comma-separated host names whose Host header output URLs may be built "
        "from when public_base_url is unset; loopback names and `host` are always trusted.",
    )
    workers: int = Field(1, ge=0, description="Engine worker processes; 0 runs the API only.")
    rate_limit_generate: str = "60/minute"
    rate_limit_read: str = "600/minute"
    rate_limit_storage_uri: str | None = Field(
        None,
        description="limits storage, e.g. redis://; default memory://, or the broker with celery.",
    )
    allow_private_urls: bool = Field(
        False, description="Let URL inputs reach loopback/private/link-local/reserved addresses."
    )
    max_upload_bytes: int = Field(512 * 1024 * 1024, gt=0, description="Per uploaded file.")
    max_fetch_bytes: int = Field(512 * 1024 * 1024, gt=0, description="Per fetched URL input.")
    fetch_connect_timeout: float = 10.0
    fetch_read_timeout: float = Field(30.0, gt=0, description="Longest wait for the next bytes.")
    fetch_total_timeout: float = Field(
        600.0, gt=0, description="Whole download of one URL input, however slowly it trickles."
    )
    job_time_limit_seconds: float = Field(
        600.0, gt=0, description="Wall-clock limit of a job attempt: this much, plus ..."
    )
    job_time_limit_per_media_second: float = Field(
        30.0, ge=0, description="... this much per second of the longer input's duration."
    )
    output_url_ttl_seconds: int = Field(24 * 3600, gt=0)
    job_lease_seconds: float = Field(
        30.0, gt=0, description="A processing job with no heartbeat for this long is re-queued."
    )
    max_attempts: int = Field(3, ge=1, description="Starts per job before it is failed for good.")
    segment_seconds: float = Field(
        30.0,
        gt=0,
        description="Longest segment a job's output is rendered in: a worker that dies loses at "
        "most this much rendering, and one job spreads over that many workers.",
    )
    job_cores: int | None = Field(
        None,
        ge=1,
        description="Threads one job's render draws faces on. Default: the cores the worker may "
        "use divided by the engine processes beside it (`workers`, or `chamelaion worker "
        "--concurrency`), at least 1, so busy workers do not oversubscribe the machine.",
    )
    output_retention_seconds: int = Field(
        7 * 24 * 3600, ge=0, description="How long outputs are kept after the job; 0: forever."
    )
    min_free_bytes: int = Field(
        1024**3,
        ge=0,
        description="Free space the data dir must keep: below it new jobs get 507 and /readyz "
        "fails.",
    )
    reaper_interval_seconds: float = Field(
        300.0, gt=0, description="How often expired outputs and orphaned files are removed."
    )
    orphan_grace_seconds: float = Field(
        3600.0,
        ge=0,
        description="An input dir with no request is removed once untouched this long (an "
        "upload still arriving has none yet).",
    )
    estimate_pixels_per_second: float = Field(
        37e6,
        gt=0,
        description="Engine throughput the estimate endpoint assumes: output pixels rendered "
        "per second (37e6 is 720p25 on 2 cores, bench/engine.py).",
    )
    access_log: bool = True
    queue: Literal["embedded", "celery"] = Field(
        "embedded",
        description="embedded: worker processes inside `serve`; celery: `chamelaion worker`s.",
    )
    broker_url: str | None = Field(
        None, description="Celery broker (Redis), e.g. redis://h:6379/0."
    )
    broker_visibility_timeout: float = Field(
        3600.0,
        gt=0,
        description="Seconds before Redis hands an unacknowledged job message out again.",
    )
    redis_key_prefix: str = Field(
        "chamelaion", description="Prefix of every Redis key (broker and rate limits)."
    )
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, description="Per webhook attempt: connect, send and the receiver's answer."
    )
    webhook_retry_base_seconds: float = Field(
        10.0, gt=0, description="Wait after a webhook's first failed attempt; doubles each time."
    )
    webhook_retry_max_seconds: float = Field(
        3600.0, gt=0, description="Longest wait between two attempts of a webhook."
    )
    webhook_retry_window_seconds: float = Field(
        24 * 3600.0, ge=0, description="A webhook is retried this long after the job finished."
    )

    @model_validator(mode="after")
    def _celery_needs_a_broker(self) -> Settings:
        if self.queue == "celery" and not self.broker_url:
            raise ValueError("CHAMELAION_QUEUE=celery needs CHAMELAION_BROKER_URL")
        return self

    @property
    def resolved_rate_limit_storage_uri(self) -> str:
        """Counters must be shared by every API replica, so with Celery they live in the
        broker's Redis unless configured otherwise."""
        if self.rate_limit_storage_uri:
            return self.rate_limit_storage_uri
        if self.queue == "celery" and self.broker_url:
            return self.broker_url
        return "memory://"

    @property
    def trusted_hosts(self) -> frozenset[str]:
        """Host names a request's Host header may name for links to be built from it."""
        names = {"localhost", "127.0.0.1", "::1", self.host.strip("[]").lower()}
        names.update(name.strip().lower() for name in self.allowed_hosts.split(","))
        return frozenset(names - {"", "0.0.0.0", "::"})

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'chamelaion.db').resolve()}"

    @property
    def inputs_dir(self) -> Path:
        return self.data_dir / "inputs"

    @property
    def outputs_dir(self) -> Path:
        return self.data_dir / "outputs"

    def prepare_data_dir(self) -> None:
        """Create the data directories (idempotent); needed before the database opens."""
        for directory in (self.data_dir, self.inputs_dir, self.outputs_dir):
            directory.mkdir(parents=True, exist_ok=True)

    def signing_key(self) -> bytes:
        """The configured secret, else one generated on first use and kept in the data dir.

        Persisting it means output URLs stay valid across restarts without any setup.
        """
        if self.secret_key:
            return self.secret_key.encode()
        self.prepare_data_dir()
        path = self.data_dir / _SECRET_FILE
        try:
            return path.read_bytes().strip()
        except FileNotFoundError:
            pass
        # Written whole to a private temporary file, then hard-linked into place: the link
        # fails if the file exists, so when two processes race exactly one key wins, and
        # neither can ever read a half-written one.
        draft = path.with_name(f".{_SECRET_FILE}.{os.getpid()}")
        draft.write_bytes(secrets.token_hex(32).encode())
        draft.chmod(0o600)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
        return path.read_bytes().strip()
