"""Token buckets per (seller, region, operation) with Amazon's default usage plans."""

from __future__ import annotations

import threading

# operation -> (requests per second, burst), from the models' usage plans (reference/sp-api/models)
RATE_LIMITS: dict[str, tuple[float, int]] = {
    "searchOrders": (0.0056, 20),
    "getOrder": (0.5, 30),
    "confirmShipment": (2.0, 10),
    "createFeedDocument": (0.5, 15),
    "createFeed": (0.0083, 15),
    "getFeed": (2.0, 15),
    "cancelFeed": (2.0, 15),
    "getFeeds": (0.0222, 10),
    "getFeedDocument": (0.0222, 10),
    "listFinancialEvents": (0.5, 30),
    "listFinancialEventsByOrderId": (0.5, 30),
    "listTransactions": (0.5, 10),  # Finances 2024-06-19 model, usage plan of listTransactions
    # Notifications v1 model: every operation's usage plan is 1 request/s, burst 5.
    **{
        name: (1.0, 5)
        for name in (
            "getSubscriptions",
            "getSubscription",
            "createSubscription",
            "getSubscriptionById",
            "deleteSubscriptionById",
            "getDestinations",
            "createDestination",
            "getDestination",
            "deleteDestination",
        )
    },
}


def format_rate(rate: float) -> str:
    """The ``x-amzn-RateLimit-Limit`` value: the applied rate, without float noise."""
    text = f"{rate:.6f}".rstrip("0").rstrip(".")
    return text or "0"


class RateLimiter:
    """Classic token bucket: starts full at ``burst``, refills at ``rate`` tokens a second."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, ...], tuple[float, float]] = {}

    def acquire(self, key: tuple[str, ...], rate: float, burst: int, t: float) -> bool:
        with self._lock:
            tokens, last = self._buckets.get(key, (float(burst), t))
            tokens = min(float(burst), tokens + max(0.0, t - last) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, t)
                return True
            self._buckets[key] = (tokens, t)
            return False
