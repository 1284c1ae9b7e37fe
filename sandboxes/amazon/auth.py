"""Login with Amazon: ``POST /auth/o2/token`` (refresh-token grant) with LWA's OAuth error shape."""

from __future__ import annotations

import logging
import secrets
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sandboxes.amazon.store import SandboxState

log = logging.getLogger(__name__)
router = APIRouter()


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


@router.post("/auth/o2/token")
async def lwa_token(request: Request) -> JSONResponse:
    state: SandboxState = request.app.state.sandbox
    raw = (await request.body()).decode("utf-8", errors="replace")
    form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
    grant_type = form.get("grant_type")
    if not grant_type:
        return _oauth_error(400, "invalid_request", "The request is missing a required parameter : grant_type")
    if grant_type != "refresh_token":
        return _oauth_error(
            400,
            "unsupported_grant_type",
            f"The grant type {grant_type} is not supported by this sandbox (only refresh_token).",
        )
    for name in ("refresh_token", "client_id", "client_secret"):
        if not form.get(name):
            return _oauth_error(400, "invalid_request", f"The request is missing a required parameter : {name}")
    config = state.config
    if not (
        secrets.compare_digest(form["client_id"], config.client_id)
        and secrets.compare_digest(form["client_secret"], config.client_secret)
    ):
        return _oauth_error(401, "invalid_client", "Client authentication failed")
    seller = next((s for s in config.sellers if secrets.compare_digest(s.refresh_token, form["refresh_token"])), None)
    if seller is None:
        return _oauth_error(400, "invalid_grant", "The request has an invalid grant parameter : refresh_token")
    token = state.issue_token(seller.seller_id)
    log.info("issued an access token for seller %s", seller.seller_id)
    return JSONResponse(
        {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": config.token_ttl_seconds,
            "refresh_token": form["refresh_token"],
        }
    )
