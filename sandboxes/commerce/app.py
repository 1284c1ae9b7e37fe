"""The Commerce sandbox application: ``create_app(config)`` → FastAPI, state in ``app.state.sandbox``."""

from __future__ import annotations

import random
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from sandboxes.commerce import admin, catalog, creditmemos, customers, directory, documents, orders, tracks
from sandboxes.commerce.auth import issue_admin_token
from sandboxes.commerce.config import CommerceSandboxConfig
from sandboxes.commerce.context import resolve_store
from sandboxes.commerce.errors import MSG_ROUTE_NOT_FOUND, MagentoError, magento_error_handler
from sandboxes.commerce.faults import FaultSettings, SandboxMiddleware
from sandboxes.commerce.state import SandboxState
from sandboxes.commerce.wire import MagentoJSONResponse, loads, ok

token_router = APIRouter()


@token_router.post("/V1/integration/admin/token")
async def admin_token(request: Request, store_code: str) -> Response:
    state: SandboxState = request.app.state.sandbox
    resolve_store(state, store_code)
    raw = await request.body()
    try:
        body: Any = loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise MagentoError(400, "Decoding error: \nSyntax error") from exc
    if not isinstance(body, dict):
        body = {}
    return ok(issue_admin_token(state, body.get("username"), body.get("password")))


async def _not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    if status in (404, 405):
        return MagentoJSONResponse({"message": MSG_ROUTE_NOT_FOUND}, status_code=404)
    return MagentoJSONResponse({"message": str(getattr(exc, "detail", "Error"))}, status_code=status)


async def _invalid_request(_request: Request, exc: Exception) -> Response:
    return MagentoJSONResponse({"message": "Invalid request: %1", "parameters": [str(exc)[:200]]}, status_code=400)


def create_app(config: CommerceSandboxConfig | None = None) -> FastAPI:
    """Build a sandbox; with ``config.state_file`` set, state is loaded from and saved to it."""
    config = config or CommerceSandboxConfig()
    app = FastAPI(
        title="Adobe Commerce sandbox",
        version="2.4.9-sandbox",
        docs_url="/_sandbox/docs",
        redoc_url=None,
        openapi_url="/_sandbox/openapi.json",
        default_response_class=MagentoJSONResponse,
    )
    state = SandboxState(config)
    state.faults = FaultSettings()
    state.fault_rng = random.Random(config.fault_seed)  # type: ignore[attr-defined]
    app.state.sandbox = state
    for module_router in (
        token_router,
        catalog.router,
        directory.router,
        customers.router,
        orders.router,
        documents.router,
        creditmemos.router,
        tracks.router,
    ):
        app.include_router(module_router, prefix="/rest/{store_code}")
    app.include_router(admin.router)
    app.add_exception_handler(MagentoError, magento_error_handler)
    app.add_exception_handler(StarletteHTTPException, _not_found)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_middleware(SandboxMiddleware)
    return app
