"""The sandbox's state: orders (with delayed publication), tokens, feeds, documents,
shipment confirmations, refunds and financial events; JSON persistence.

All access goes through one re-entrant lock (``SandboxState.lock``); a change is
persisted atomically (write to a temporary file, then rename) by :meth:`SandboxState.save`.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import secrets
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandboxes.amazon.config import AmazonSandboxConfig
from sandboxes.amazon.faults import FaultSettings, NotificationFaults
from sandboxes.amazon.ratelimit import RateLimiter
from sandboxes.amazon.util import iso, now

log = logging.getLogger(__name__)

PERSISTED = (
    "orders",
    "tokens",
    "documents",
    "feeds",
    "confirmations",
    "refunds",
    "shipment_events",
    "counter",
    "destinations",
    "subscriptions",
)
# An order listener: (record, previous order or None, change time in epoch seconds) -> None; called under the lock.
OrderListener = Callable[[dict[str, Any], "dict[str, Any] | None", float], None]


class SandboxState:
    """Everything one sandbox holds; reachable as ``app.state.sandbox``."""

    def __init__(self, config: AmazonSandboxConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.faults = FaultSettings()
        self.notification_faults = NotificationFaults()
        self.limiter = RateLimiter()
        self.stats: dict[str, dict[str, int]] = {}
        # Called after every order change (put_order, touch): the Notifications API's publisher registers here.
        self.order_listeners: list[OrderListener] = []
        self._clear()

    def _clear(self) -> None:
        # orderId -> {"sellerId", "order", "history": [{"visibleAt", "order"|None}]}
        self.orders: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.documents: dict[str, dict[str, Any]] = {}
        self.feeds: dict[str, dict[str, Any]] = {}
        self.confirmations: list[dict[str, Any]] = []
        self.refunds: list[dict[str, Any]] = []
        self.shipment_events: list[dict[str, Any]] = []
        self.counter = 0
        # Notifications API: destinationId -> Destination (per application); subscriptionId ->
        # {"sellerId", "notificationType", "subscription": Subscription} (per seller).
        self.destinations: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}

    # ---------------------------------------------------------------- lifecycle
    def reset(self) -> None:
        with self.lock:
            self._clear()
            self.faults = FaultSettings()
            self.notification_faults = NotificationFaults()
            self.limiter = RateLimiter()
            self.stats = {}
            self.save()

    def next_id(self) -> int:
        self.counter += 1
        return self.counter

    def load(self) -> bool:
        path = self.config.state_file
        if not path or not Path(path).exists():
            return False
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        with self.lock:
            for name in PERSISTED:
                if name in data:
                    setattr(self, name, data[name])
        log.info("loaded sandbox state from %s: %s orders, %s feeds", path, len(self.orders), len(self.feeds))
        return True

    def save(self) -> None:
        path = self.config.state_file
        if not path:
            return
        with self.lock:
            data = {name: getattr(self, name) for name in PERSISTED}
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".amazon-sandbox-", dir=str(target.parent))
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(data, handle, ensure_ascii=False)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    # ---------------------------------------------------------------- stats
    def count(self, operation: str, key: str) -> None:
        with self.lock:
            entry = self.stats.setdefault(operation, {"requests": 0, "throttled": 0, "faults": 0})
            entry[key] = entry.get(key, 0) + 1

    # ---------------------------------------------------------------- tokens
    def issue_token(self, seller_id: str) -> str:
        token = "Atza|sandbox-" + secrets.token_urlsafe(32)
        with self.lock:
            t = now()
            self.tokens = {k: v for k, v in self.tokens.items() if v["expiresAt"] > t}
            self.tokens[token] = {"sellerId": seller_id, "expiresAt": t + self.config.token_ttl_seconds}
            self.save()
        return token

    def issue_grantless_token(self, scope: str) -> str:
        """An LWA ``client_credentials`` token: no seller, only ``scope`` (grantless operations)."""
        token = "Atc|sandbox-" + secrets.token_urlsafe(32)
        with self.lock:
            t = now()
            self.tokens = {k: v for k, v in self.tokens.items() if v["expiresAt"] > t}
            self.tokens[token] = {"sellerId": None, "scope": scope, "expiresAt": t + self.config.token_ttl_seconds}
            self.save()
        return token

    def _live_token(self, token: str | None) -> dict[str, Any]:
        with self.lock:
            entry = self.tokens.get(token or "")
        return entry if entry and entry["expiresAt"] > now() else {}

    def scope_for_token(self, token: str | None) -> str | None:
        """The scope of a live grantless token (None for a seller's token or an unknown/expired one)."""
        return self._live_token(token).get("scope")

    def seller_for_token(self, token: str | None) -> str | None:
        return self._live_token(token).get("sellerId")

    # ---------------------------------------------------------------- orders
    def put_order(self, seller_id: str, order: dict[str, Any], *, at: float | None = None) -> None:
        """Store ``order`` as given (its lastUpdatedTime kept); visible after the delay."""
        with self.lock:
            existing = self.orders.get(order["orderId"])
            record = {"sellerId": seller_id, "order": copy.deepcopy(order), "history": []}
            if existing and existing.get("sellerId") == seller_id:
                record["history"] = existing.get("history", [])
                previous = existing["order"]
            else:
                previous = None
            self.orders[order["orderId"]] = record
            t = now() if at is None else at
            self._publish(record, previous, t)
            self._changed(record, previous, t)

    def touch(self, record: dict[str, Any], previous: dict[str, Any] | None, at: float | None = None) -> None:
        """Record that ``record['order']`` changed at ``at`` (default now): bump lastUpdatedTime."""
        t = now() if at is None else at
        record["order"]["lastUpdatedTime"] = iso(t)
        self._publish(record, previous, t)
        self._changed(record, previous, t)

    def _changed(self, record: dict[str, Any], previous: dict[str, Any] | None, t: float) -> None:
        for listener in self.order_listeners:
            try:
                listener(record, previous, t)
            except Exception:  # a notification problem never undoes or fails the order change
                log.exception("order listener failed for order %s", record["order"].get("orderId"))

    def _publish(self, record: dict[str, Any], previous: dict[str, Any] | None, t: float) -> None:
        delay = float(self.config.visibility_delay_seconds or 0)
        history = record.setdefault("history", [])
        if delay <= 0 and not history:
            return
        if not history:
            history.append({"visibleAt": 0, "order": copy.deepcopy(previous) if previous else None})
        history.append({"visibleAt": t + max(delay, 0), "order": copy.deepcopy(record["order"])})
        self._prune(record, now())

    @staticmethod
    def _prune(record: dict[str, Any], t: float) -> None:
        history = record.get("history") or []
        visible = [i for i, h in enumerate(history) if h["visibleAt"] <= t]
        if visible:
            del history[: visible[-1]]
        if len(history) == 1 and history[0]["visibleAt"] <= t:
            history.clear()

    def visible_order(self, record: dict[str, Any], t: float) -> dict[str, Any] | None:
        """The version of the order searchOrders shows at time ``t`` (None: not yet published)."""
        history = record.get("history") or []
        if not history:
            return record["order"]
        for entry in reversed(history):
            if entry["visibleAt"] <= t:
                return entry["order"]
        return None

    def order_marketplace(self, order_id: str) -> str | None:
        """The marketplace id of a stored order (None when the order is unknown)."""
        record = self.orders.get(order_id)
        return record["order"]["salesChannel"].get("marketplaceId") if record else None

    def order_record(self, order_id: str, seller_id: str | None = None) -> dict[str, Any] | None:
        record = self.orders.get(order_id)
        if record is None or (seller_id is not None and record["sellerId"] != seller_id):
            return None
        return record
