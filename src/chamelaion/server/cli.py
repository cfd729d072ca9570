"""`chamelaion serve`, `worker`, `keys create|list|revoke|webhook-secret` and `db upgrade`.

Handlers import the server modules when they run, so `chamelaion --help` stays instant.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from chamelaion.server.config import Settings


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument("--data-dir", help="data directory (default CHAMELAION_DATA_DIR or ./data)")

    serve = commands.add_parser("serve", parents=[data], help="run the HTTP API and job workers")
    serve.add_argument("--host", help="bind address (default CHAMELAION_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default CHAMELAION_PORT or 8000)")
    serve.add_argument("--workers", type=int, help="engine worker processes (0: API only)")
    serve.add_argument(
        "--no-worker",
        dest="workers",
        action="store_const",
        const=0,
        help="API only: run no engine workers here (replicas; implied by CHAMELAION_QUEUE=celery)",
    )
    serve.set_defaults(handler=_serve)

    worker = commands.add_parser(
        "worker", parents=[data], help="run a Celery worker for the jobs (CHAMELAION_QUEUE=celery)"
    )
    worker.add_argument(
        "--concurrency",
        type=int,
        help="engine processes in this worker (default CHAMELAION_WORKERS or 1)",
    )
    worker.add_argument("--hostname", help="Celery node name (default chamelaion@<host>)")
    worker.add_argument("--loglevel", default="INFO", help="Celery log level (INFO)")
    worker.set_defaults(handler=_worker)

    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = key_commands.add_parser("create", parents=[data], help="create a key (shown once)")
    create.add_argument("--name", required=True, help="a label for the key")
    create.add_argument("--account", help="add the key to this account id (default: new account)")
    create.add_argument("--max-requests", type=int, help="lifetime request quota (default none)")
    create.add_argument("--rate-limit", help='generate limit for this key, e.g. "120/minute"')
    create.add_argument("--read-rate-limit", help='read limit for this key, e.g. "1200/minute"')
    create.set_defaults(handler=_keys_create)
    listing = key_commands.add_parser(
        "list", parents=[data], help="list keys (never the keys themselves)"
    )
    listing.set_defaults(handler=_keys_list)
    revoke = key_commands.add_parser("revoke", parents=[data], help="revoke a key by id or prefix")
    revoke.add_argument("key", help="key id or prefix (from `keys list`)")
    revoke.set_defaults(handler=_keys_revoke)
    webhook = key_commands.add_parser(
        "webhook-secret",
        parents=[data],
        help="create (or replace) the secret that signs an account's webhooks (shown once)",
    )
    webhook.add_argument("account", help="account id, or the id or prefix of one of its keys")
    webhook.set_defaults(handler=_keys_webhook_secret)

    database = commands.add_parser("db", help="database maintenance")
    db_commands = database.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_commands.add_parser("upgrade", parents=[data], help="apply pending migrations")
    upgrade.set_defaults(handler=_db_upgrade)


def _settings(args: argparse.Namespace) -> Settings:
    from chamelaion.server.config import Settings

    overrides = {
        name: getattr(args, name)
        for name in ("host", "port", "workers", "data_dir")
        if getattr(args, name, None) is not None
    }
    return Settings(**overrides)


def _migrated_sessions(settings: Settings) -> sessionmaker[Session]:
    from chamelaion.server.db import make_engine, make_session_factory
    from chamelaion.server.migrate import upgrade_database

    settings.prepare_data_dir()
    engine = make_engine(settings.resolved_database_url, settings.database_lock_timeout_seconds)
    upgrade_database(engine)
    return make_session_factory(engine)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from sqlalchemy import func, select

    from chamelaion.server.app import create_app
    from chamelaion.server.keys import create_key
    from chamelaion.server.models import ApiKey

    settings = _settings(args)
    sessions = _migrated_sessions(settings)
    with sessions() as session:
        if not session.scalar(select(func.count()).select_from(ApiKey)):
            created = create_key(session, "default")
            session.commit()
            base_url = settings.public_base_url or f"http://{settings.host}:{settings.port}"
            print("No API keys yet: created one. It is shown only this once; store it now.")
            print(f"  CHAMELAION_API_KEY={created.key}")
            print(f"  CHAMELAION_BASE_URL={base_url.rstrip('/')}/api")
            print(f"  try: curl -H 'x-api-key: ...' {base_url.rstrip('/')}/api/v1/lipsync/requests")
    if settings.queue == "celery":
        print(f"jobs go to Celery at {_redacted(settings.broker_url)}; run `chamelaion worker`")
    app = create_app(settings, run_jobs=True)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        access_log=False,  # ours is structured and key-free
        log_level="info",
        timeout_graceful_shutdown=15,
        backlog=2048,
    )
    return 0


def _worker(args: argparse.Namespace) -> int:
    """A Celery prefork worker on the configured broker, running the engine in its pool
    processes, plus the sweep that re-publishes jobs no message stands for."""
    import socket

    from chamelaion.server.queue.celery_app import create_celery

    settings = _settings(args)
    if settings.queue != "celery" or not settings.broker_url:
        print("error: `chamelaion worker` needs CHAMELAION_QUEUE=celery and CHAMELAION_BROKER_URL")
        return 2
    if args.concurrency is not None and args.concurrency < 1:
        print("error: --concurrency must be 1 or more")
        return 2
    _migrated_sessions(settings)  # so the worker never runs against an older schema
    concurrency = args.concurrency or max(1, settings.workers)
    # Its pool processes share this machine's cores (`Worker.job_cores`).
    app = create_celery(settings.model_copy(update={"workers": concurrency}))
    app.worker_main(
        [
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            f"--hostname={args.hostname or f'chamelaion@{socket.gethostname()}'}",
            f"--loglevel={args.loglevel}",
            "--without-mingle",  # peers' state is in the database, not gossiped at start
        ]
    )
    return 0


def _keys_create(args: argparse.Namespace) -> int:
    from chamelaion.server.keys import create_key
    from chamelaion.server.ratelimit import parse_limit

    for limit in (args.rate_limit, args.read_rate_limit):
        if limit is not None:
            try:
                parse_limit(limit)
            except ValueError:
                print(f'error: rate limit {limit!r} is not like "60/minute"')
                return 2
    if args.max_requests is not None and args.max_requests < 0:
        print("error: --max-requests must be 0 or more")
        return 2
    sessions = _migrated_sessions(_settings(args))
    with sessions() as session:
        try:
            created = create_key(
                session,
                args.name,
                account_id=args.account,
                max_requests=args.max_requests,
                rate_limit_generate=args.rate_limit,
                rate_limit_read=args.read_rate_limit,
            )
        except LookupError as exc:
            print(f"error: {exc}")
            return 1
        session.commit()
        print(f"API key (shown only this once; store it now): {created.key}")
        print(f"key id: {created.record.id}")
        print(f"account id: {created.record.account_id}")
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from chamelaion.server.models import ApiKey

    sessions = _migrated_sessions(_settings(args))
    with sessions() as session:
        rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at)).all()
        print(f"{'id':36}  {'prefix':12}  {'name':16}  {'account':36}  {'used':>11}  status")
        for key in rows:
            quota = (
                f"{key.requests_used}/{key.max_requests if key.max_requests is not None else '-'}"
            )
            status = "revoked" if key.revoked_at else "active"
            print(
                f"{key.id:36}  {key.prefix:12}  {key.name[:16]:16}  {key.account_id:36}  "
                f"{quota:>11}  {status}"
            )
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    from chamelaion.server.keys import revoke_key

    sessions = _migrated_sessions(_settings(args))
    with sessions() as session:
        record = revoke_key(session, args.key)
        if record is None:
            print(f"error: no key with id or prefix {args.key}")
            return 1
        session.commit()
        print(f"revoked key {record.id} ({record.prefix}…)")
    return 0


def _keys_webhook_secret(args: argparse.Namespace) -> int:
    from sqlalchemy import or_, select

    from chamelaion.server.models import Account, ApiKey
    from chamelaion.server.webhooks import new_secret

    sessions = _migrated_sessions(_settings(args))
    with sessions() as session:
        account = session.get(Account, args.account) or session.scalar(
            select(Account)
            .join(ApiKey, ApiKey.account_id == Account.id)
            .where(or_(ApiKey.id == args.account, ApiKey.prefix == args.account))
        )
        if account is None:
            print(f"error: no account, key id or key prefix {args.account}")
            return 1
        replaced = account.webhook_secret is not None
        account.webhook_secret = new_secret()
        session.commit()
        print(f"webhook secret (shown only this once; store it now): {account.webhook_secret}")
        print(f"account id: {account.id}")
        if replaced:
            print("the previous secret no longer signs anything")
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _migrated_sessions(settings)
    print(f"database at head: {settings.resolved_database_url}")
    return 0


def _redacted(url: str | None) -> str:
    """A URL without its password, for printing."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True) if url else "-"
