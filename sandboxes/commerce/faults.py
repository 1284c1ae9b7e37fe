"""Fault injection, latency and call statistics for the REST routes (a pure ASGI middleware).

Kinds of fault:
- ``error``: answer a 5xx without doing the work;
- ``drop``: close the TCP connection without any response (the client sees a connection error);
- ``commit_then_fail``: do the work (and persist it), then answer 500 (mode ``error``) or hold the
  response past ``timeout_seconds`` and drop the connection (mode ``timeout``) — how naive
  integrations end up with duplicate orders.
Random faults follow the rates; ``fail_next`` entries fail the next N matching calls deterministically.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import random
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from sandboxes.commerce.errors import MagentoError
from sandboxes.commerce.wire import dumps

log = logging.getLogger(__name__)

KINDS = ("error", "drop", "commit_then_fail")
# A request with this header is never faulted: a test's own back-office calls (a merchant shipping an order) are
# not the integration under test.
EXEMPT_HEADER = b"x-sandbox-no-faults"
MODES = ("error", "timeout")
REST_PREFIX = "/rest/{store_code}"


@dataclass
class FailNext:
    route: str
    kind: str
    count: int = 1
    status: int = 500
    mode: str | None = None


@dataclass
class FaultSettings:
    error_rate: float = 0.0
    error_statuses: list[int] = field(default_factory=lambda: [500, 503])
    latency_ms: float = 0.0
    drop_rate: float = 0.0
    commit_then_fail_rate: float = 0.0
    commit_then_fail_mode: str = "error"
    timeout_seconds: float = 5.0
    routes: list[str] | None = None
    fail_next: list[FailNext] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any], previous: FaultSettings | None = None) -> FaultSettings:
        """Settings from a POST body: given fields over defaults; ``fail_next`` adds to the queue."""
        if not isinstance(data, dict):
            raise MagentoError(400, "Fault settings must be a JSON object.")
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise MagentoError(400, "Unknown fault setting(s): %1", [", ".join(sorted(unknown))])
        out = cls()
        for name in ("error_rate", "drop_rate", "commit_then_fail_rate", "latency_ms", "timeout_seconds"):
            if name in data:
                value = float(data[name])
                if value < 0 or (name.endswith("_rate") and value > 1):
                    raise MagentoError(400, "Invalid value of %1.", [name])
                setattr(out, name, value)
        if "error_statuses" in data:
            out.error_statuses = [int(s) for s in data["error_statuses"]] or [500]
        if "commit_then_fail_mode" in data:
            if data["commit_then_fail_mode"] not in MODES:
                raise MagentoError(400, "Invalid value of %1.", ["commit_then_fail_mode"])
            out.commit_then_fail_mode = data["commit_then_fail_mode"]
        if data.get("routes") is not None:
            out.routes = [str(r) for r in data["routes"]]
        out.fail_next = list(previous.fail_next) if previous else []
        for raw in data.get("fail_next") or []:
            if raw.get("kind") not in KINDS or not raw.get("route"):
                raise MagentoError(400, "Invalid fail_next entry: %1", [str(raw)])
            if raw.get("mode") is not None and raw["mode"] not in MODES:
                raise MagentoError(400, "Invalid fail_next entry: %1", [str(raw)])
            out.fail_next.append(
                FailNext(
                    route=str(raw["route"]),
                    kind=raw["kind"],
                    count=int(raw.get("count", 1)),
                    status=int(raw.get("status", 500)),
                    mode=raw.get("mode"),
                )
            )
        return out

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def route_matches(pattern: str, template_key: str, actual_key: str) -> bool:
    """``"POST /V1/orders"`` or ``"GET /V1/orders/*"`` against the template or the actual path."""
    method, _, path = pattern.strip().partition(" ")
    if not path:
        method, path = "*", method
    candidates = []
    for key in (template_key, actual_key):
        key_method, _, key_path = key.partition(" ")
        if fnmatch.fnmatchcase(key_method, method.upper() if method != "*" else "*"):
            candidates.append(key_path)
    return any(fnmatch.fnmatchcase(p, path) or p == path for p in candidates)


def _template_key(scope: Scope) -> str:
    app = scope.get("app")
    method = scope.get("method", "GET")
    router = getattr(app, "router", None)
    partial = None
    for route in getattr(router, "routes", []):
        match, _child = route.matches(scope)
        if match == Match.FULL:  # the route of this method (GET and PUT /V1/orders/{id} are different routes)
            partial = route
            break
        if match == Match.PARTIAL and partial is None:
            partial = route
    if partial is not None:
        path = partial.path
        return f"{method} {path[len(REST_PREFIX) :] if path.startswith(REST_PREFIX) else path}"
    return f"{method} {_actual_path(scope)}"


def _actual_path(scope: Scope) -> str:
    parts = scope["path"].split("/", 3)  # '', 'rest', '<store>', 'V1/...'
    return "/" + parts[3] if len(parts) > 3 else scope["path"]


def drop_connection(receive: Receive) -> bool:
    """Close the client's TCP connection without a response (uvicorn: via the cycle's transport)."""
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if transport is None:
        return False
    transport.close()
    return True


class SandboxMiddleware:
    """Counts calls per route template, adds latency and injects faults on ``/rest/`` routes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/rest/"):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state.sandbox
        key = _template_key(scope)
        actual = f"{scope.get('method', 'GET')} {_actual_path(scope)}"
        faults: FaultSettings = state.faults
        exempt = (EXEMPT_HEADER, b"1") in scope.get("headers", [])
        with state.lock:
            state.stats[key] += 1
            kind, status, mode = (None, 0, "") if exempt else self._decide(state, faults, key, actual)
        delay = (float(state.config.latency_ms) + faults.latency_ms) / 1000.0
        if delay > 0:
            await asyncio.sleep(delay)
        if kind is None:
            await self.app(scope, receive, send)
            return
        log.info("commerce sandbox: injecting %s on %s", kind, key)
        if kind == "error":
            await _send_error(send, status)
        elif kind == "drop":
            if not drop_connection(receive):
                await _send_error(send, 500)
        else:
            await self._commit_then_fail(scope, receive, send, faults, status, mode)

    @staticmethod
    def _decide(state: Any, faults: FaultSettings, key: str, actual: str) -> tuple[str | None, int, str]:
        for entry in faults.fail_next:
            if entry.count > 0 and route_matches(entry.route, key, actual):
                entry.count -= 1
                if entry.count <= 0:
                    faults.fail_next.remove(entry)
                return entry.kind, entry.status, entry.mode or faults.commit_then_fail_mode
        if faults.routes is not None and not any(route_matches(r, key, actual) for r in faults.routes):
            return None, 0, ""
        rng: random.Random = state.fault_rng
        status = rng.choice(faults.error_statuses) if faults.error_statuses else 500
        if faults.drop_rate and rng.random() < faults.drop_rate:
            return "drop", status, ""
        if faults.error_rate and rng.random() < faults.error_rate:
            return "error", status, ""
        if faults.commit_then_fail_rate and rng.random() < faults.commit_then_fail_rate:
            return "commit_then_fail", status, faults.commit_then_fail_mode
        return None, 0, ""

    async def _commit_then_fail(
        self, scope: Scope, receive: Receive, send: Send, faults: FaultSettings, status: int, mode: str
    ) -> None:
        async def swallow(_message: Any) -> None:
            return None

        await self.app(scope, receive, swallow)  # the write happens and is persisted
        if mode == "timeout":
            await asyncio.sleep(faults.timeout_seconds)
            if not drop_connection(receive):
                await _send_error(send, 504)
            return
        await _send_error(send, status if status >= 500 else 500)


async def _send_error(send: Send, status: int) -> None:
    if status == 503:
        body: dict[str, Any] = {"message": "Service Unavailable"}
    else:
        body = {
            "message": "Internal Error. Details are available in Magento log file. Report ID: %1",
            "parameters": [f"webapi-{secrets.token_hex(6)}"],
        }
    payload = dumps(body).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json; charset=utf-8"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
