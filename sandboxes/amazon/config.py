"""Configuration of the Amazon SP-API sandbox (one dataclass, plain values only).

Marketplaces and regions are Amazon's (``marketplaces.py``); a seller may sell in marketplaces of several
regions, each region answering on its own base URL (see ``regions.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from sandboxes.amazon.marketplaces import MARKETPLACES, REGIONS
from sandboxes.amazon.shapes import Realism

DEFAULT_SELLER_ID = "A2SANDBOXSELLER1"
DEFAULT_REFRESH_TOKEN = "sandbox-refresh-token"
DEFAULT_MARKETPLACES = ("ATVPDKIKX0DER", "A2EUQ1WTGCTBG2")


@dataclass
class Seller:
    """A selling partner that authorised the application."""

    seller_id: str
    refresh_token: str
    marketplace_ids: list[str]

    @classmethod
    def coerce(cls, value: Seller | dict[str, Any]) -> Seller:
        if isinstance(value, Seller):
            return value
        return cls(
            seller_id=value["seller_id"],
            refresh_token=value["refresh_token"],
            marketplace_ids=list(value.get("marketplace_ids") or DEFAULT_MARKETPLACES),
        )


def _default_sellers() -> list[Seller]:
    return [Seller(DEFAULT_SELLER_ID, DEFAULT_REFRESH_TOKEN, list(DEFAULT_MARKETPLACES))]


@dataclass
class AmazonSandboxConfig:
    """Everything that shapes one sandbox run.

    ``speed`` multiplies every rate limit's rate and divides every time-based delay
    (feed stages, live-mode interval); bursts are unchanged.  ``visibility_delay_seconds``
    is wall-clock seconds and is *not* divided by speed.
    """

    speed: float = 1.0
    seed: int = 42
    initial_orders: int = 0
    state_file: str | None = None
    live: bool = False
    live_interval_seconds: float = 60.0
    live_new_orders: int = 2
    live_events: int = 3
    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"
    sellers: list[Seller] = field(default_factory=_default_sellers)
    token_ttl_seconds: int = 3600
    visibility_delay_seconds: float = 0.0
    rate_limits_enabled: bool = True
    feed_stage_seconds: float = 30.0
    upload_url_ttl_seconds: float = 300.0
    compress_reports: bool = False
    # The selling region the base URL without a region prefix serves (NA, EU or FE); ``/na``, ``/eu`` and
    # ``/fe`` prefixes serve each region explicitly.
    region: str = "NA"
    # Finances v0 answers as a removed API (404 ResourceNotFound), as after Amazon's removal date.
    finances_v0_removed: bool = False
    # Shapes of generated orders at start and in live mode: a preset ("realistic", "compat") or rates
    # (``generator.Realism`` field names); ``/_sandbox/orders/generate`` defaults to "compat".
    realism: str | dict[str, float] = "realistic"
    # Share of Finances transactions Amazon defers (DD+7 delivery-date policy, or B2B invoiced orders), and
    # how long they stay DEFERRED before they become DEFERRED_RELEASED (seconds, divided by speed).
    deferral_rate: float = 0.5
    deferral_seconds: float = 7 * 86400.0
    # listTransactions page size (Amazon: up to 500 transactions a page).
    finances_page_size: int = 500
    # Notifications API: the application id in ORDER_CHANGE's NotificationMetadata; how long after an order
    # change Amazon delivers the notification (seconds, divided by speed; Amazon: seconds); the SQS endpoint
    # the sandbox delivers to (moto locally; None: no delivery, notifications are counted as undelivered).
    application_id: str = "amzn1.sp.solution.sandbox-application"
    notification_delay_seconds: float = 2.0
    sqs_endpoint_url: str | None = None

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError("speed must be > 0")
        self.region = self.region.upper()
        if self.region not in REGIONS:
            raise ValueError(f"region must be one of {sorted(REGIONS)}, not {self.region!r}")
        if self.notification_delay_seconds < 0:
            raise ValueError("notification_delay_seconds must be >= 0")
        if not 0 <= self.deferral_rate <= 1:
            raise ValueError("deferral_rate must be between 0 and 1")
        Realism.resolve(self.realism)  # fails early on an unknown preset or rate
        self.sellers = [Seller.coerce(s) for s in self.sellers]
        if not self.sellers:
            raise ValueError("at least one seller is required")
        for seller in self.sellers:
            unknown = [m for m in seller.marketplace_ids if m not in MARKETPLACES]
            if unknown:
                raise ValueError(f"unknown marketplace ids {unknown} for seller {seller.seller_id}")

    def seller(self, seller_id: str) -> Seller | None:
        return next((s for s in self.sellers if s.seller_id == seller_id), None)

    def as_dict(self) -> dict[str, Any]:
        """A view without secrets (for ``/_sandbox/settings``)."""
        data = dataclasses.asdict(self)
        data.pop("client_secret", None)
        for seller in data["sellers"]:
            seller.pop("refresh_token", None)
        return data
