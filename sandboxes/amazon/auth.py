"""Login with Amazon: ``POST /auth/o2/token`` with LWA's OAuth error shape.

Two grants, as Amazon's: ``refresh_token`` (a seller's access token) and ``client_credentials`` with a ``scope``
(a grantless token for the application, e.g. ``sellingpartnerapi::notifications`` for the Notifications API's
destination operations; SP-API docs, "Grantless operations")."""

from __future__ import annotations

import logging
import secrets
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sandboxes.amazon.store import SandboxState

log = logging.getLogger(__name__)
router = APIRouter()

# The scopes LWA grants with client_credentials for SP-API grantless operations.
GRANTLESS_SCOPES = ("sellingpartnerapi::notifications", "sellingpartnerapi::client_credential:rotation")


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
    if grant_type not in ("refresh_token", "client_credentials"):
        return _oauth_error(
            400,
            "unsupported_grant_type",
            f"The grant type {grant_type} is not supported by this sandbox (refresh_token, client_credentials).",
        )
    secret_name = "refresh_token" if grant_type == "refresh_token" else "scope"
    for name in (secret_name, "client_id", "client_secret"):
        if not form.get(name):
            return _oauth_error(400, "invalid_request", f"The request is missing a required parameter : {name}")
    config = state.config
    if not (
        secrets.compare_digest(form["client_id"], config.client_id)
        and secrets.compare_digest(form["client_secret"], config.client_secret)
    ):
        return _oauth_error(401, "invalid_client", "Client authentication failed")
    if grant_type == "client_credentials":
        return _grantless_token(state, form["scope"])
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


def _grantless_token(state: SandboxState, scope: str) -> JSONResponse:
    if scope not in GRANTLESS_SCOPES:
        return _oauth_error(400, "invalid_scope", "An unknown scope was requested")
    token = state.issue_grantless_token(scope)
    log.info("issued a grantless access token (scope %s)", scope)
    return JSONResponse(
        {"access_token": token, "scope": scope, "token_type": "bearer", "expires_in": state.config.token_ttl_seconds}
    )
