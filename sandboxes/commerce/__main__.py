"""Command line: ``python -m sandboxes.commerce --host 127.0.0.1 --port 8702 [--state-file F] ...``.

Every flag also reads a ``COMMERCE_SANDBOX_*`` environment variable (flags win).
"""

from __future__ import annotations

import argparse
import logging
import os

import uvicorn

from sandboxes.commerce.app import create_app
from sandboxes.commerce.config import config_from_env


def main(argv: list[str] | None = None) -> None:
    cfg = config_from_env()
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m sandboxes.commerce", description=__doc__)
    parser.add_argument("--host", default=env("COMMERCE_SANDBOX_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("COMMERCE_SANDBOX_PORT", "8702")))
    parser.add_argument("--state-file", default=cfg.state_file)
    parser.add_argument("--admin-username", default=cfg.admin_username)
    parser.add_argument("--admin-password", default=cfg.admin_password)
    parser.add_argument("--admin-token-ttl-seconds", type=int, default=cfg.admin_token_ttl_seconds)
    parser.add_argument("--latency-ms", type=float, default=cfg.latency_ms)
    parser.add_argument("--allow-oauth-tokens-as-bearer", action="store_true", default=cfg.allow_oauth_tokens_as_bearer)
    parser.add_argument("--fault-seed", type=int, default=cfg.fault_seed)
    for key in ("consumer_key", "consumer_secret", "access_token", "access_token_secret"):
        parser.add_argument(f"--oauth-{key.replace('_', '-')}", dest=f"oauth_{key}", default=cfg.integration[key])
    parser.add_argument("--log-level", default=env("COMMERCE_SANDBOX_LOG_LEVEL", "info"))
    args = parser.parse_args(argv)

    cfg.state_file = args.state_file
    cfg.admin_username = args.admin_username
    cfg.admin_password = args.admin_password
    cfg.admin_token_ttl_seconds = args.admin_token_ttl_seconds
    cfg.latency_ms = args.latency_ms
    cfg.allow_oauth_tokens_as_bearer = args.allow_oauth_tokens_as_bearer
    cfg.fault_seed = args.fault_seed
    for key in ("consumer_key", "consumer_secret", "access_token", "access_token_secret"):
        cfg.integration[key] = getattr(args, f"oauth_{key}")
    logging.basicConfig(level=args.log_level.upper())
    uvicorn.run(create_app(cfg), host=args.host, port=args.port, log_level=args.log_level.lower())


if __name__ == "__main__":
    main()
