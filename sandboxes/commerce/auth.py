"""Authentication: admin tokens and OAuth 1.0a-signed integration requests (HMAC-SHA256/SHA1).

Signatures are verified with oauthlib's signature functions over the real method, URL and
parameters, with the consumer secret and the access-token secret; the timestamp must be within
the configured window and a nonce is accepted once. Since Magento 2.4.4 an integration access
token is not accepted as a plain bearer token unless ``allow_oauth_tokens_as_bearer`` is on.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Any

from oauthlib.oauth1.rfc5849 import signature, utils
from starlette.requests import Request

from sandboxes.commerce.errors import MSG_BAD_SIGN_IN, MSG_NOT_AUTHORIZED, MagentoError
from sandboxes.commerce.state import SandboxState

log = logging.getLogger(__name__)

# ACL resources of the routes (Magento's webapi.xml), used in the 401 message.
ACL = {
    "GET /V1/orders": "Magento_Sales::actions_view",
    "GET /V1/orders/{order_id}": "Magento_Sales::actions_view",
    "GET /V1/orders/{order_id}/comments": "Magento_Sales::actions_view",
    "POST /V1/orders": "Magento_Sales::api_actions",
    "POST /V1/orders/{order_id}/cancel": "Magento_Sales::cancel",
    "POST /V1/orders/{order_id}/hold": "Magento_Sales::hold",
    "POST /V1/orders/{order_id}/unhold": "Magento_Sales::unhold",
    "POST /V1/orders/{order_id}/comments": "Magento_Sales::comment",
    "POST /V1/order/{order_id}/invoice": "Magento_Sales::invoice",
    "POST /V1/order/{order_id}/ship": "Magento_Sales::ship",
    "POST /V1/order/{order_id}/refund": "Magento_Sales::creditmemo",
    "GET /V1/invoices": "Magento_Sales::sales_invoice",
    "GET /V1/invoice/{doc_id}": "Magento_Sales::sales_invoice",
    "GET /V1/invoices/{doc_id}": "Magento_Sales::sales_invoice",
    "GET /V1/shipments": "Magento_Sales::shipment",
    "GET /V1/shipment/{doc_id}": "Magento_Sales::shipment",
    "POST /V1/shipment/track": "Magento_Sales::ship",
    "GET /V1/creditmemos": "Magento_Sales::sales_creditmemo",
    "GET /V1/creditmemo/{doc_id}": "Magento_Sales::sales_creditmemo",
    "GET /V1/customers/search": "Magento_Customer::customer",
    "POST /V1/customers": "Magento_Customer::manage",
    "GET /V1/products": "Magento_Catalog::products",
    "GET /V1/products/{sku}": "Magento_Catalog::products",
    "GET /V1/inventory/source-items": "Magento_InventoryApi::source",
    "POST /V1/inventory/source-items": "Magento_InventoryApi::source_item_save",
    "GET /V1/inventory/get-product-salable-quantity/{sku}/{stock_id}": "Magento_InventorySalesApi::stock",
    "GET /V1/stockItems/{sku}": "Magento_CatalogInventory::cataloginventory",
    "PUT /V1/products/{sku}/stockItems/{item_id}": "Magento_CatalogInventory::cataloginventory",
    "GET /V1/directory/currency": "Magento_Backend::store",
    "GET /V1/store/storeViews": "Magento_Backend::store",
    "GET /V1/store/storeConfigs": "Magento_Backend::store",
}

SIGNATURE_METHODS = {
    "HMAC-SHA256": signature.sign_hmac_sha256,
    "HMAC-SHA1": signature.sign_hmac_sha1,
}


def unauthorized(route_key: str) -> MagentoError:
    return MagentoError(401, MSG_NOT_AUTHORIZED, {"resources": ACL.get(route_key, "Magento_Backend::admin")})


def issue_admin_token(state: SandboxState, username: Any, password: Any) -> str:
    cfg = state.config
    ok_user = isinstance(username, str) and hmac.compare_digest(username, cfg.admin_username)
    ok_pass = isinstance(password, str) and hmac.compare_digest(password, cfg.admin_password)
    if not (ok_user and ok_pass):
        raise MagentoError(401, MSG_BAD_SIGN_IN)
    token = secrets.token_hex(16)
    with state.lock:
        now = state.clock()
        # Forget expired tokens so the state file does not grow forever.
        state.admin_tokens = {t: v for t, v in state.admin_tokens.items() if v["expires_at"] > now}
        state.admin_tokens[token] = {"expires_at": now + cfg.admin_token_ttl_seconds}
        state.save()
    return token


def authenticate(state: SandboxState, request: Request, body: bytes, route_key: str) -> str:
    """Return who is calling ("admin" or "integration") or raise a Magento 401."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        token = credentials.strip()
        entry = state.admin_tokens.get(token)
        if entry is not None and entry["expires_at"] > state.clock():
            return "admin"
        cfg = state.config
        if cfg.allow_oauth_tokens_as_bearer and hmac.compare_digest(token, cfg.integration["access_token"]):
            return "integration"
        raise unauthorized(route_key)
    if scheme.lower() == "oauth":
        _verify_oauth1(state, request, body)
        return "integration"
    raise unauthorized(route_key)


def _verify_oauth1(state: SandboxState, request: Request, body: bytes) -> None:
    cfg = state.config
    creds = cfg.integration
    try:
        header = request.headers["authorization"]
        oauth = {k: utils.unescape(v) for k, v in utils.parse_authorization_header(header)}
    except (ValueError, KeyError) as exc:
        raise MagentoError(401, "The signature is invalid. Verify and try again.") from exc
    method = oauth.get("oauth_signature_method", "")
    sign = SIGNATURE_METHODS.get(method)
    if sign is None:
        raise MagentoError(401, "Signature method %1 is not supported", [method])
    if oauth.get("oauth_consumer_key") != creds["consumer_key"]:
        raise MagentoError(401, "A consumer having the specified key does not exist")
    if oauth.get("oauth_token") != creds["access_token"]:
        raise MagentoError(401, "Specified token does not exist")
    try:
        timestamp = int(oauth.get("oauth_timestamp", ""))
    except ValueError as exc:
        raise MagentoError(401, "Invalid timestamp") from exc
    now = state.clock()
    if abs(now - timestamp) > cfg.oauth_timestamp_window_seconds:
        raise MagentoError(401, "The timestamp is out of range")

    content_type = request.headers.get("content-type", "")
    form_body = body.decode("utf-8") if content_type.startswith("application/x-www-form-urlencoded") else None
    params = signature.collect_parameters(
        uri_query=request.url.query, body=form_body, headers=dict(request.headers), exclude_oauth_signature=True
    )
    normalized = signature.normalize_parameters(params)
    base_uri = signature.base_string_uri(str(request.url))
    base_string = signature.signature_base_string(request.method, base_uri, normalized)
    expected = sign(base_string, creds["consumer_secret"], creds["access_token_secret"])
    if not signature.safe_string_equals(expected, oauth.get("oauth_signature", "")):
        raise MagentoError(401, "The signature is invalid. Verify and try again.")

    nonce = oauth.get("oauth_nonce", "")
    key = f"{creds['consumer_key']}:{nonce}"
    with state.lock:
        if not nonce or key in state.nonces:
            raise MagentoError(401, "The nonce is already being used by the consumer with ID %1", [1])
        horizon = now - 2 * cfg.oauth_timestamp_window_seconds
        state.nonces = {k: t for k, t in state.nonces.items() if t > horizon}
        state.nonces[key] = float(timestamp)  # persisted with the next write
