"""``python -m sandboxes.amazon``: serve the Amazon SP-API sandbox with uvicorn.

Every flag can also come from an environment variable ``AMAZON_SANDBOX_<FLAG>``
(e.g. ``AMAZON_SANDBOX_PORT=8701``, ``AMAZON_SANDBOX_LIVE=1``).
"""

from __future__ import annotations

import argparse
import logging
import os

import uvicorn

from sandboxes.amazon.app import create_app
from sandboxes.amazon.config import DEFAULT_MARKETPLACES, DEFAULT_SELLER_ID, AmazonSandboxConfig, Seller
from sandboxes.amazon.marketplaces import REGIONS
from sandboxes.amazon.shapes import PRESETS


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"AMAZON_SANDBOX_{name}", default)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    truthy = ("1", "true", "yes", "on")
    p = argparse.ArgumentParser(prog="python -m sandboxes.amazon", description=__doc__)
    p.add_argument("--host", default=_env("HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(_env("PORT", "8701")))
    p.add_argument("--state-file", default=_env("STATE_FILE"))
    p.add_argument("--speed", type=float, default=float(_env("SPEED", "1.0")))
    p.add_argument("--seed", type=int, default=int(_env("SEED", "42")))
    p.add_argument("--orders", type=int, default=int(_env("ORDERS", "0")), help="orders generated at start")
    p.add_argument("--live", action="store_true", default=(_env("LIVE", "") or "").lower() in truthy)
    p.add_argument("--live-interval", type=float, default=float(_env("LIVE_INTERVAL", "60")))
    p.add_argument("--client-id", default=_env("CLIENT_ID", "sandbox-client-id"))
    p.add_argument("--client-secret", default=_env("CLIENT_SECRET", "sandbox-client-secret"))
    p.add_argument("--refresh-token", default=_env("REFRESH_TOKEN", "sandbox-refresh-token"))
    p.add_argument("--visibility-delay", type=float, default=float(_env("VISIBILITY_DELAY", "0")))
    p.add_argument(
        "--no-rate-limits", action="store_true", default=(_env("NO_RATE_LIMITS", "") or "").lower() in truthy
    )
    p.add_argument(
        "--marketplaces",
        default=_env("MARKETPLACES", ",".join(DEFAULT_MARKETPLACES)),
        help="the seller's marketplace ids, comma separated (any of Amazon's, any region)",
    )
    p.add_argument(
        "--region",
        default=_env("REGION", "NA"),
        choices=sorted(REGIONS),
        type=str.upper,
        help="the region served without a /na, /eu or /fe path prefix",
    )
    p.add_argument(
        "--finances-v0-removed",
        action="store_true",
        default=(_env("FINANCES_V0_REMOVED", "") or "").lower() in truthy,
        help="answer Finances v0 as a removed API (404 ResourceNotFound)",
    )
    p.add_argument(
        "--realism",
        default=_env("REALISM", "realistic"),
        choices=sorted(PRESETS),
        help="shapes of the orders generated at start and in live mode",
    )
    p.add_argument(
        "--sqs-endpoint",
        default=_env("SQS_ENDPOINT", os.environ.get("SALES_CHANNEL_SQS_ENDPOINT")),
        help="the SQS endpoint ORDER_CHANGE notifications are delivered to (moto locally); none: not delivered",
    )
    p.add_argument(
        "--notification-delay",
        type=float,
        default=float(_env("NOTIFICATION_DELAY", "2")),
        help="seconds from an order change to its ORDER_CHANGE notification (divided by speed)",
    )
    p.add_argument("--log-level", default=_env("LOG_LEVEL", "info"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = AmazonSandboxConfig(
        speed=args.speed,
        seed=args.seed,
        initial_orders=args.orders,
        state_file=args.state_file,
        live=args.live,
        live_interval_seconds=args.live_interval,
        client_id=args.client_id,
        client_secret=args.client_secret,
        visibility_delay_seconds=args.visibility_delay,
        rate_limits_enabled=not args.no_rate_limits,
        region=args.region,
        finances_v0_removed=args.finances_v0_removed,
        realism=args.realism,
        sqs_endpoint_url=args.sqs_endpoint or None,
        notification_delay_seconds=args.notification_delay,
        sellers=[
            Seller(
                DEFAULT_SELLER_ID, args.refresh_token, [m.strip() for m in args.marketplaces.split(",") if m.strip()]
            )
        ],
    )
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level=args.log_level.lower())


if __name__ == "__main__":
    main()
