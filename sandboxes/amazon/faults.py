"""Fault injection settings: random 500/503 answers, injected 429s, added latency, dropped connections.

Faults are decided before an operation runs, so a faulted request never half-applies a write.
They never apply to ``/_sandbox`` routes or to the LWA token endpoint unless named in
``operations`` (use ``"lwaToken"`` for it).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class FaultSettings:
    error_rate: float = 0.0
    error_statuses: list[int] = field(default_factory=lambda: [500, 503])
    latency_ms: int = 0
    drop_rate: float = 0.0
    throttle_rate: float = 0.0
    operations: list[str] | None = None
    seed: int | None = None
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not all(0 <= rate <= 1 for rate in (self.error_rate, self.drop_rate, self.throttle_rate)):
            raise ValueError("error_rate, drop_rate and throttle_rate must be between 0 and 1")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        bad = [s for s in self.error_statuses if s not in (500, 503)]
        if bad or not self.error_statuses:
            raise ValueError("error_statuses must be a non-empty list of 500 and/or 503")
        self._rng = random.Random(self.seed)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> FaultSettings:
        allowed = {"error_rate", "error_statuses", "latency_ms", "drop_rate", "throttle_rate", "operations", "seed"}
        unknown = set(body) - allowed
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        return cls(**body)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_rng", None)
        return data

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
