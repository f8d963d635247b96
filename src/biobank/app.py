"""create_app(): routers, error handlers, middleware and lifespan. No database work at import."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from biobank import __version__
from biobank.config import Settings, get_settings
from biobank.kit.db import get_engine, session_factory
from biobank.kit.errors import BiobankError
from biobank.kit.logging import configure_logging
from biobank.model_registry import import_all_models

log = logging.getLogger("biobank.http")

STATUS_NAMES = {
    400: "BadRequest",
    401: "NotAuthenticated",
    403: "NotPermitted",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "TooLarge",
    422: "Invalid",
    429: "TooManyRequests",
}


def _validation_detail(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for error in exc.errors():
        loc = [p for p in error.get("loc", ()) if p not in ("body", "query", "path", "form")]
        item: dict[str, Any] = {"loc": loc or list(error.get("loc", ())), "msg": error.get("msg", "invalid")}
        out.append(item)
    return out


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith(
        ("/api/", "/fhir/", "/beacon/", "/iiif/")
    ) and "text/html" in request.headers.get("accept", "")


def install_error_handlers(app: FastAPI) -> None:
    """Render every error as {"error": Name, "detail": ...} (and as a page for browsers)."""

    @app.exception_handler(BiobankError)
    async def _biobank_error(request: Request, exc: BiobankError) -> Response:
        if _wants_html(request):
            from biobank.web.render import error_page

            return error_page(request, exc.status_code, exc.name, exc.detail)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return JSONResponse({"error": "Invalid", "detail": _validation_detail(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        name = STATUS_NAMES.get(exc.status_code, "HttpError")
        if _wants_html(request):
            from biobank.web.render import error_page

            return error_page(request, exc.status_code, name, exc.detail)
        return JSONResponse({"error": name, "detail": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", extra={"route": _route_of(request)})
        return JSONResponse({"error": "InternalError", "detail": "an unexpected error occurred"}, status_code=500)


def _route_of(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "unmatched")


JOB_MODULES = ("biobank.audit.jobs", "biobank.ledger.jobs")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI application for this node."""
    settings = settings or get_settings()
    import_all_models()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from biobank.kit.plugins import optional_import

        # background jobs: audit checkpoints/witnesses, then the ledger (publisher and anchoring)
        jobs = [m for m in (optional_import(name) for name in JOB_MODULES) if m is not None]
        for module in jobs:
            module.start(app)
        try:
            yield
        finally:
            for module in reversed(jobs):
                module.stop(app)

    app = FastAPI(
        title="Biobank Commons",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.session_factory = session_factory(get_engine(settings.effective_database_url))
    install_error_handlers(app)

    @app.middleware("http")
    async def access_log(request: Request, call_next: Any) -> Response:
        # Log the route template, never the concrete path or query (they may hold identifiers).
        started = time.perf_counter()
        response: Response = await call_next(request)
        log.info(
            "request",
            extra={
                "method": request.method,
                "route": _route_of(request),
                "status": response.status_code,
                "ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    from biobank.routers import include_routers

    include_routers(app)
    return app


def asgi_app() -> FastAPI:
    """Factory for `uvicorn --factory biobank.app:asgi_app` (reads settings from the environment)."""
    settings = get_settings()
    configure_logging(settings.log_level, json_logs=settings.log_json)
    return create_app(settings)
