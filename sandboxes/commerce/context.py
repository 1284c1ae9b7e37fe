"""Per-request context of the REST routes: store view resolution, body decoding and authentication."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from sandboxes.commerce.auth import authenticate
from sandboxes.commerce.errors import MSG_STORE_NOT_FOUND, MagentoError
from sandboxes.commerce.state import SandboxState
from sandboxes.commerce.wire import loads

REST_PREFIX = "/rest/{store_code}"


def route_key(request: Request) -> str:
    """'METHOD /V1/...template' of the matched route (used for stats, faults and ACL)."""
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    if path.startswith(REST_PREFIX):
        path = path[len(REST_PREFIX) :]
    return f"{request.method} {path}"


@dataclass
class Ctx:
    state: SandboxState
    store_code: str
    store: dict[str, Any]
    body: Any
    caller: str

    @property
    def store_id(self) -> int:
        return int(self.store["store_id"])


def resolve_store(state: SandboxState, store_code: str) -> dict[str, Any]:
    stores = state.config.stores
    if store_code == "all":
        return next((s for s in stores.values() if int(s["store_id"]) == 1), next(iter(stores.values())))
    if store_code not in stores:
        raise MagentoError(400, MSG_STORE_NOT_FOUND)
    return stores[store_code]


async def rest_context(request: Request, store_code: str) -> Ctx:
    """FastAPI dependency of every authenticated REST route."""
    state: SandboxState = request.app.state.sandbox
    store = resolve_store(state, store_code)
    raw = await request.body()
    caller = authenticate(state, request, raw, route_key(request))
    body: Any = None
    if raw.strip():
        try:
            body = loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MagentoError(400, "Decoding error: \nSyntax error") from exc
    return Ctx(state=state, store_code=store_code, store=store, body=body, caller=caller)


def body_object(ctx: Ctx) -> dict[str, Any]:
    if ctx.body is None:
        return {}
    if not isinstance(ctx.body, dict):
        raise MagentoError(400, "Decoding error: \nSyntax error")
    return ctx.body
