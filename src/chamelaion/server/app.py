"""The FastAPI application: routes under /api/v1 and /v1, errors, docs, the job runner, and the
Studio page at /."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from chamelaion.server.accesslog import AccessLogMiddleware, configure_logging
from chamelaion.server.config import Settings
from chamelaion.server.db import make_engine, make_session_factory
from chamelaion.server.errors import install_error_handlers
from chamelaion.server.idempotency import Purger
from chamelaion.server.ratelimit import RateLimiter
from chamelaion.server.routes import files, health, lipsync, requests, studio
from chamelaion.server.schemas import GenerateBody, GenerateWithMediaForm
from chamelaion.server.state import AppState
from chamelaion.server.storage import OutputSigner

API_PREFIXES = ("/api/v1", "/v1")  # the seed's curl uses /api/v1; the SDK paths are /v1
_SECURED_TAGS = {"lipsync", "requests"}


def create_app(settings: Settings, run_jobs: bool = False) -> FastAPI:
    """The app over `settings`' database (already migrated); `run_jobs` starts the embedded
    workers (with the Celery queue, `chamelaion worker` runs jobs and the app only publishes)."""
    settings.prepare_data_dir()
    engine = make_engine(settings.resolved_database_url, settings.database_lock_timeout_seconds)
    sessions = make_session_factory(engine)
    dispatcher = None
    if settings.queue == "celery":
        from chamelaion.server.queue.celery_app import create_celery
        from chamelaion.server.queue.dispatch import Dispatcher

        dispatcher = Dispatcher(create_celery(settings), sessions, settings)
    state = AppState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        rate_limiter=RateLimiter(
            settings.resolved_rate_limit_storage_uri,
            settings.rate_limit_generate,
            settings.rate_limit_read,
            key_prefix=f"{settings.redis_key_prefix}:limits",
        ),
        signer=OutputSigner(settings.signing_key(), settings.output_url_ttl_seconds),
        idempotency_purger=Purger(sessions),
        dispatcher=dispatcher,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Everything loaded so far lives as long as the process: keep it out of the cyclic
        # collector's full passes, which otherwise pause the event loop for tens of ms.
        gc.collect()
        gc.freeze()
        runner = None
        # With no workers (`--workers 0`, an API-only server) the runner still runs its
        # supervisor: stale-job recovery and the reaper keep the data dir bounded.
        if run_jobs and settings.queue == "embedded":
            from chamelaion.server.queue.runner import EmbeddedRunner

            runner = EmbeddedRunner(settings)
            runner.start()
        try:
            yield
        finally:
            if runner is not None:
                runner.stop()
            engine.dispose()

    app = FastAPI(
        title="Chamelaion",
        version="1.0.0",
        summary="Lip-sync API: re-animate a speaker's mouth to new-language audio.",
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.chamelaion = state
    install_error_handlers(app)
    configure_logging()
    if settings.access_log:
        app.add_middleware(AccessLogMiddleware)
    for prefix in API_PREFIXES:
        for module in (lipsync, requests, files):
            app.include_router(module.router, prefix=prefix)
    app.include_router(health.router)
    app.include_router(studio.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus what it cannot infer from hand-parsed bodies and header auth."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, summary=app.summary, routes=app.routes
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in (GenerateBody, GenerateWithMediaForm):
        body_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(body_schema.pop("$defs", {}))
        schemas[model.__name__] = body_schema
    _not_nullable(schemas["GenerateWithMediaForm"]["properties"]["reference_id"])
    components["securitySchemes"] = {
        "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "x-api-key"},
        "BearerAuth": {"type": "http", "scheme": "bearer"},
    }
    for path_item in schema["paths"].values():
        for operation in path_item.values():
            if _SECURED_TAGS & set(operation.get("tags", [])):
                operation["security"] = [{"ApiKeyHeader": []}, {"BearerAuth": []}]
            # Validation is mapped to our 400 body; FastAPI's 422 never happens.
            operation.get("responses", {}).pop("422", None)
            for parameter in operation.get("parameters", []):
                _not_nullable(parameter["schema"])
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    app.openapi_schema = schema
    return schema


def _not_nullable(schema: dict[str, Any]) -> None:
    """A header, query parameter or form field is a string or absent, never null: turn
    pydantic's `anyOf: [X, null]` for an optional one into X."""
    options = schema.pop("anyOf", None)
    if options is None:
        return
    schema.update(next(option for option in options if option.get("type") != "null"))
    if schema.get("default", "") is None:
        del schema["default"]
