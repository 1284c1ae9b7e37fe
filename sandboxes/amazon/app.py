"""Builds the FastAPI application of the Amazon SP-API sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sandboxes.amazon import admin, auth, feeds, finances, notifications, orders, publisher, transactions
from sandboxes.amazon.config import AmazonSandboxConfig
from sandboxes.amazon.gateway import RESOURCE_NOT_FOUND, Gateway
from sandboxes.amazon.generator import generate_orders
from sandboxes.amazon.live import run_live
from sandboxes.amazon.store import SandboxState
from sandboxes.amazon.util import SpApiError, now

log = logging.getLogger(__name__)


def create_app(config: AmazonSandboxConfig | None = None) -> FastAPI:
    """A new sandbox; its state is ``app.state.sandbox`` (a :class:`SandboxState`)."""
    config = config or AmazonSandboxConfig()
    state = SandboxState(config)
    if not state.load() and config.initial_orders:
        seller = config.sellers[0]
        for order in generate_orders(
            config.seed, config.initial_orders, now(), marketplace_ids=seller.marketplace_ids, realism=config.realism
        ):
            state.put_order(seller.seller_id, order)
        state.save()
    deliveries = publisher.attach(state)  # after the initial orders: they were never notified

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(run_live(state)) if config.live else None
        try:
            yield
        finally:
            deliveries.close()
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        title="Amazon SP-API sandbox",
        lifespan=lifespan,
        docs_url="/_sandbox/docs",
        openapi_url="/_sandbox/openapi.json",
        redoc_url=None,
    )
    app.state.sandbox = state
    for module in (auth, orders, feeds, finances, transactions, notifications, admin):
        app.include_router(module.router)
    app.add_middleware(Gateway, state=state, on_request=lambda: feeds.process_due_feeds(state))

    @app.exception_handler(SpApiError)
    async def sp_api_error(request: Request, exc: SpApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(
            SpApiError(400, "InvalidInput", "Invalid input.", f"{where}: {first.get('msg', '')}").body(),
            status_code=400,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:  # no such route: Amazon's gateway answer for an unknown URI
            return JSONResponse(SpApiError(404, *RESOURCE_NOT_FOUND).body(), status_code=404)
        code = {405: "MethodNotAllowed"}.get(exc.status_code, "InvalidInput")
        return JSONResponse(SpApiError(exc.status_code, code, str(exc.detail)).body(), status_code=exc.status_code)

    return app
