"""The API gateway in front of every SP-API route (a pure ASGI middleware).

For each request it resolves the selling region from the path (``/na``, ``/eu``, ``/fe`` prefixes, see
``regions.py``), identifies the operation, counts it, answers removed operations (Finances v0 when
``finances_v0_removed``) as Amazon's gateway answers an unknown resource, applies injected faults
(latency, dropped connection, 500/503) before anything runs, checks the
``x-amz-access-token`` (403 ``Unauthorized``), applies the token bucket of the seller, region and
operation (429 ``QuotaExceeded``) and adds ``x-amzn-RateLimit-Limit`` and ``x-amzn-RequestId``
to every response of a rate-limited operation.  ``/_sandbox`` routes pass straight through.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from sandboxes.amazon.ratelimit import RATE_LIMITS, format_rate
from sandboxes.amazon.regions import route_region
from sandboxes.amazon.store import SandboxState
from sandboxes.amazon.util import SpApiError, now

log = logging.getLogger(__name__)

OPERATIONS: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p), name)
    for m, p, name in [
        ("POST", r"^/auth/o2/token$", "lwaToken"),
        ("GET", r"^/orders/2026-01-01/orders$", "searchOrders"),
        ("GET", r"^/orders/2026-01-01/orders/[^/]+$", "getOrder"),
        ("POST", r"^/orders/v0/orders/[^/]+/shipmentConfirmation$", "confirmShipment"),
        ("POST", r"^/feeds/2021-06-30/documents$", "createFeedDocument"),
        ("GET", r"^/feeds/2021-06-30/documents/[^/]+$", "getFeedDocument"),
        ("POST", r"^/feeds/2021-06-30/feeds$", "createFeed"),
        ("GET", r"^/feeds/2021-06-30/feeds$", "getFeeds"),
        ("GET", r"^/feeds/2021-06-30/feeds/[^/]+$", "getFeed"),
        ("DELETE", r"^/feeds/2021-06-30/feeds/[^/]+$", "cancelFeed"),
        ("GET", r"^/finances/v0/financialEvents$", "listFinancialEvents"),
        ("GET", r"^/finances/v0/orders/[^/]+/financialEvents$", "listFinancialEventsByOrderId"),
        ("GET", r"^/finances/2024-06-19/transactions$", "listTransactions"),
        ("GET", r"^/notifications/v1/subscriptions$", "getSubscriptions"),
        ("GET", r"^/notifications/v1/subscriptions/[^/]+$", "getSubscription"),
        ("POST", r"^/notifications/v1/subscriptions/[^/]+$", "createSubscription"),
        ("GET", r"^/notifications/v1/subscriptions/[^/]+/[^/]+$", "getSubscriptionById"),
        ("DELETE", r"^/notifications/v1/subscriptions/[^/]+/[^/]+$", "deleteSubscriptionById"),
        ("GET", r"^/notifications/v1/destinations$", "getDestinations"),
        ("POST", r"^/notifications/v1/destinations$", "createDestination"),
        ("GET", r"^/notifications/v1/destinations/[^/]+$", "getDestination"),
        ("DELETE", r"^/notifications/v1/destinations/[^/]+$", "deleteDestination"),
    ]
]
# Grantless operations (Notifications v1 model: "The `...` operation is grantless"): they take an LWA
# client_credentials token with this scope, and a seller's token is refused, as a grantless token is on the others.
GRANTLESS = {
    "getSubscriptionById": "sellingpartnerapi::notifications",
    "deleteSubscriptionById": "sellingpartnerapi::notifications",
    "getDestinations": "sellingpartnerapi::notifications",
    "createDestination": "sellingpartnerapi::notifications",
    "getDestination": "sellingpartnerapi::notifications",
    "deleteDestination": "sellingpartnerapi::notifications",
}
# Rate-limit key of grantless calls: the application's, not a seller's.
APPLICATION = "application"
FINANCES_V0 = re.compile(r"^/finances/v0(/|$)")
# Amazon's gateway answer for a URI it does not serve (amzn/selling-partner-api-docs issue #2320).
RESOURCE_NOT_FOUND = ("ResourceNotFound", "Cannot find resource by the given URI")

UNAUTHORIZED = (
    "Access to requested resource is denied.",
    "The access token you provided is revoked, malformed, expired or invalid.",
)


def operation_for(method: str, path: str) -> str | None:
    for op_method, pattern, name in OPERATIONS:
        if op_method == method and pattern.match(path):
            return name
    return None


class Gateway:
    """ASGI middleware; ``on_request`` runs first on every request (advances feeds)."""

    def __init__(self, app: Any, state: SandboxState, on_request: Callable[[], None] | None = None) -> None:
        self.app = app
        self.state = state
        self.on_request = on_request

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = self.state
        region = route_region(scope, state.config.region)
        scope.setdefault("state", {})["region"] = region
        if self.on_request is not None:
            self.on_request()
        if state.config.finances_v0_removed and FINANCES_V0.match(scope["path"]):
            state.count(operation_for(scope["method"], scope["path"]) or "financesV0", "removed")
            body = SpApiError(404, *RESOURCE_NOT_FOUND).body()
            await _send_json(send, 404, body, [(b"x-amzn-requestid", str(uuid.uuid4()).encode())])
            return
        operation = operation_for(scope["method"], scope["path"])
        if operation is None:
            await self.app(scope, receive, send)
            return
        state.count(operation, "requests")
        request_id = str(uuid.uuid4())
        rate_burst = RATE_LIMITS.get(operation)
        extra_headers = [(b"x-amzn-requestid", request_id.encode())]
        if rate_burst:
            rate = rate_burst[0] * state.config.speed
            extra_headers.append((b"x-amzn-ratelimit-limit", format_rate(rate).encode()))

        faults = state.faults
        if faults.applies(operation):
            if faults.latency_ms:
                await asyncio.sleep(faults.latency_ms / 1000)
            if faults.roll_drop():
                state.count(operation, "faults")
                await self._drop(receive)
                return
            if faults.roll_throttle():
                state.count(operation, "injectedThrottles")
                body = SpApiError(429, "QuotaExceeded", "You exceeded your quota for the requested resource.")
                await _send_json(send, 429, body.body(), extra_headers)
                return
            status = faults.roll_error()
            if status:
                state.count(operation, "faults")
                code, message = (
                    ("InternalFailure", "We encountered an internal error. Please try again.")
                    if status == 500
                    else ("ServiceUnavailable", "Service is temporarily unavailable.")
                )
                await _send_json(send, status, SpApiError(status, code, message).body(), extra_headers)
                return

        if operation != "lwaToken":
            headers = dict(scope.get("headers") or [])
            token = headers.get(b"x-amz-access-token", b"").decode("latin-1").strip()
            if operation in GRANTLESS:
                seller_id = None
                allowed = state.scope_for_token(token) == GRANTLESS[operation]
            else:
                seller_id = state.seller_for_token(token)
                allowed = seller_id is not None
            if not allowed:
                await _send_json(send, 403, SpApiError(403, "Unauthorized", *UNAUTHORIZED).body(), extra_headers)
                return
            scope.setdefault("state", {})["seller_id"] = seller_id
            if rate_burst and state.config.rate_limits_enabled:
                rate = rate_burst[0] * state.config.speed
                key = (seller_id or APPLICATION, region, operation)
                if not state.limiter.acquire(key, rate, rate_burst[1], now()):
                    state.count(operation, "throttled")
                    body = SpApiError(429, "QuotaExceeded", "You exceeded your quota for the requested resource.")
                    await _send_json(send, 429, body.body(), extra_headers)
                    return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + extra_headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    async def _drop(receive: Any) -> None:
        """Close the TCP connection without answering (uvicorn exposes the transport)."""
        transport = getattr(getattr(receive, "__self__", None), "transport", None)
        if transport is None:
            raise ConnectionAbortedError("sandbox fault: connection dropped (no transport to close)")
        log.info("fault injection: dropping a connection")
        transport.abort()
        for _ in range(3):  # let uvicorn see connection_lost, so it sends nothing more
            await asyncio.sleep(0)


async def _send_json(send: Any, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
