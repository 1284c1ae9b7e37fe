"""Fault injection settings: random 500/503 answers, injected 429s, added latency, dropped connections.

Faults are decided before an operation runs, so a faulted request never half-applies a write.
They never apply to ``/_sandbox`` routes or to the LWA token endpoint unless named in
``operations`` (use ``"lwaToken"`` for it). ``NotificationFaults`` are the ORDER_CHANGE delivery faults
(``publisher.py``): duplicates, out-of-order and malformed messages, messages for another seller.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Self


class _JsonSettings:
    """``from_json`` / ``as_json`` for the settings dataclasses below (fields starting with ``_`` are private)."""

    WHAT = "settings"

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Self:
        """``cls(**body)`` when ``body`` names only public fields; else ValueError."""
        allowed = {f.name for f in fields(cls) if not f.name.startswith("_")}  # type: ignore[arg-type]
        unknown = set(body) - allowed
        if unknown:
            raise ValueError(f"unknown {cls.WHAT}: {sorted(unknown)}")
        return cls(**body)

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}  # type: ignore[call-overload]


@dataclass
class FaultSettings(_JsonSettings):
    error_rate: float = 0.0
    error_statuses: list[int] = field(default_factory=lambda: [500, 503])
    latency_ms: int = 0
    drop_rate: float = 0.0
    throttle_rate: float = 0.0
    operations: list[str] | None = None
    seed: int | None = None
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)
    WHAT = "fault settings"

    def __post_init__(self) -> None:
        if not all(0 <= rate <= 1 for rate in (self.error_rate, self.drop_rate, self.throttle_rate)):
            raise ValueError("error_rate, drop_rate and throttle_rate must be between 0 and 1")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        bad = [s for s in self.error_statuses if s not in (500, 503)]
        if bad or not self.error_statuses:
            raise ValueError("error_statuses must be a non-empty list of 500 and/or 503")
        self._rng = random.Random(self.seed)

    def applies(self, operation: str) -> bool:
        if self.operations is None:
            return operation != "lwaToken"
        return operation in self.operations

    def roll_drop(self) -> bool:
        return self.drop_rate > 0 and self._rng.random() < self.drop_rate

    def roll_throttle(self) -> bool:
        """A 429 as if another application of the seller had used up the shared quota."""
        return self.throttle_rate > 0 and self._rng.random() < self.throttle_rate

    def roll_error(self) -> int | None:
        if self.error_rate > 0 and self._rng.random() < self.error_rate:
            return self._rng.choice(self.error_statuses)
        return None


@dataclass
class NotificationFaults(_JsonSettings):
    """Faults of ORDER_CHANGE delivery (SQS is at-least-once; Amazon may deliver late, twice or garbled).

    Each rate (0..1) is rolled per published notification: ``duplicate_rate`` delivers it twice (same
    NotificationId); ``out_of_order_rate`` holds it back ``out_of_order_delay_seconds`` (divided by speed) so
    later changes of the order arrive first; ``malformed_rate`` replaces it with a body that is not JSON or not
    an ORDER_CHANGE (alternately); ``other_seller_rate`` adds a message for a seller the application does not
    serve, about an order it does not know.
    """

    duplicate_rate: float = 0.0
    out_of_order_rate: float = 0.0
    out_of_order_delay_seconds: float = 5.0
    malformed_rate: float = 0.0
    other_seller_rate: float = 0.0
    seed: int | None = None
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)
    _malformed: int = field(default=0, repr=False, compare=False)

    WHAT = "notification fault settings"
    RATES = ("duplicate_rate", "out_of_order_rate", "malformed_rate", "other_seller_rate")

    def __post_init__(self) -> None:
        if not all(0 <= getattr(self, name) <= 1 for name in self.RATES):
            raise ValueError(f"{', '.join(self.RATES)} must be between 0 and 1")
        if self.out_of_order_delay_seconds < 0:
            raise ValueError("out_of_order_delay_seconds must be >= 0")
        self._rng = random.Random(self.seed)

    def roll(self, rate_name: str) -> bool:
        rate = getattr(self, rate_name)
        return rate > 0 and self._rng.random() < rate

    def malformed(self, body: str) -> str:
        """Alternately a body that is not JSON and a JSON body that is not an ORDER_CHANGE notification."""
        self._malformed += 1
        if self._malformed % 2:
            return body[: max(1, len(body) // 2)]  # cut mid-document: not JSON
        return '{"NotificationVersion": "1.0", "NotificationType": "ORDER_CHANGE", "Payload": {}}'
