"""Sandbox administration under ``/_sandbox/`` (no auth): seed the catalog, inspect, faults, reset."""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from sandboxes.commerce.catalog import render_product, upsert_product
from sandboxes.commerce.errors import MagentoError
from sandboxes.commerce.faults import FaultSettings
from sandboxes.commerce.orders import render_order
from sandboxes.commerce.state import RATE_PLACES, SandboxState
from sandboxes.commerce.wire import loads, ok

router = APIRouter(prefix="/_sandbox")


async def _json(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MagentoError(400, "Decoding error: \nSyntax error") from exc


def _state(request: Request) -> SandboxState:
    return request.app.state.sandbox


@router.post("/products")
async def seed_products(request: Request) -> Response:
    """``{"products": [{"sku","name","price","status","qty"}]}`` → upsert by sku."""
    body = await _json(request)
    products = body.get("products") if isinstance(body, dict) else None
    if not isinstance(products, list):
        raise MagentoError(400, '"%fieldName" is required. Enter and try again.', {"fieldName": "products"})
    state = _state(request)
    with state.lock:
        saved = [upsert_product(state, p) for p in products]
        state.save()
    return ok({"count": len(saved), "products": [render_product(state, p) for p in saved]})


@router.get("/orders")
async def all_orders(request: Request) -> Response:
    state = _state(request)
    return ok({"items": [render_order(o) for o in state.orders.values()], "total_count": len(state.orders)})


@router.get("/stats")
async def stats(request: Request) -> Response:
    state = _state(request)
    calls = dict(sorted(state.stats.items()))
    return ok({"calls": calls, "total": sum(calls.values())})


@router.get("/faults")
async def read_faults(request: Request) -> Response:
    return ok(_state(request).faults.as_dict())


@router.post("/faults")
async def set_faults(request: Request) -> Response:
    state = _state(request)
    body = await _json(request)
    with state.lock:
        state.faults = FaultSettings.from_dict(body, previous=None)
    return ok(state.faults.as_dict())


@router.post("/reset")
async def reset(request: Request) -> Response:
    """Empty orders, documents and customers (and the catalog with ``{"catalog": true}``)."""
    body = await _json(request)
    state = _state(request)
    state.reset(catalog=bool(isinstance(body, dict) and body.get("catalog")))
    state.faults = FaultSettings()
    return ok({"reset": True, "catalog_cleared": bool(isinstance(body, dict) and body.get("catalog"))})


# Settings that can change while the sandbox runs: name -> type (lists are country codes or None).
RUNTIME_SETTINGS: dict[str, type] = {
    "latency_ms": float,
    "allow_oauth_tokens_as_bearer": bool,
    "admin_token_ttl_seconds": int,
    "state_required": list,
    "display_all_states": bool,
    "allowed_countries": list,
    "optional_zip_countries": list,
    "telephone_required": bool,
    "company_required": bool,
    "fax_required": bool,
    "region_code_updates": bool,
}


@router.post("/settings")
async def settings(request: Request) -> Response:
    """Run-time settings (``RUNTIME_SETTINGS``): the transport ones (``latency_ms``, ``allow_oauth_tokens_as_bearer``,
    ``admin_token_ttl_seconds``) and the store configuration the address rules read (``state_required``,
    ``telephone_required``, ``region_code_updates``...; a list setting set to null returns to Magento's default).
    Answers every run-time setting's value."""
    body = await _json(request)
    state = _state(request)
    cfg = state.config
    if not isinstance(body, dict) or not set(body) <= set(RUNTIME_SETTINGS):
        raise MagentoError(400, "Settings must be a JSON object of: %1.", [", ".join(RUNTIME_SETTINGS)])
    for name, value in body.items():
        kind = RUNTIME_SETTINGS[name]
        if kind is list:
            if value is not None and not (isinstance(value, list) and all(isinstance(c, str) for c in value)):
                raise MagentoError(400, "Setting %1 must be a list of country codes or null.", [name])
            setattr(cfg, name, None if value is None else [c.upper() for c in value])
        elif kind is float:
            cfg.latency_ms = max(float(value), 0.0)
        else:
            setattr(cfg, name, kind(value))
    return ok({name: getattr(cfg, name) for name in RUNTIME_SETTINGS})


@router.get("/currency-rates")
async def read_currency_rates(request: Request) -> Response:
    """Stores > Currency Rates: ``{"rates": {from: {to: rate}}}`` (Magento's global directory_currency_rate)."""
    state = _state(request)
    with state.lock:
        return ok({"rates": copy.deepcopy(state.currency_rates)})


@router.post("/currency-rates")
async def set_currency_rates(request: Request) -> Response:
    """``{"rates": {"USD": {"JPY": "151.20", "EUR": null}}}``: set rates (> 0); ``null`` removes a rate.

    Like the Currency Rates page, a rate that is not a positive number is refused ("Please correct the input
    data for "%1 => %2" rate."); nothing is saved then.
    """
    body = await _json(request)
    rates = body.get("rates") if isinstance(body, dict) else None
    if not isinstance(rates, dict) or not all(isinstance(v, dict) for v in rates.values()):
        raise MagentoError(400, '"%fieldName" is required. Enter and try again.', {"fieldName": "rates"})
    changes: list[tuple[str, str, Decimal | None]] = []
    for base, targets in rates.items():
        for to, raw in targets.items():
            pair = (str(base).upper(), str(to).upper())
            if not all(re.fullmatch(r"[A-Z]{3}", code) for code in pair):
                raise MagentoError(400, 'Please correct the input data for "%1 => %2" rate.', list(pair))
            if raw is None:
                changes.append((*pair, None))
                continue
            try:
                value = Decimal(str(raw)).quantize(RATE_PLACES)
            except InvalidOperation as exc:
                raise MagentoError(400, 'Please correct the input data for "%1 => %2" rate.', list(pair)) from exc
            if value <= 0:
                raise MagentoError(400, 'Please correct the input data for "%1 => %2" rate.', list(pair))
            changes.append((*pair, value))
    state = _state(request)
    with state.lock:
        for base, to, value in changes:
            if value is None:
                state.currency_rates.get(base, {}).pop(to, None)
            else:
                state.currency_rates.setdefault(base, {})[to] = value
        state.save()
        return ok({"rates": copy.deepcopy(state.currency_rates)})


@router.get("/state")
async def dump_state(request: Request) -> Response:
    """Everything (catalog, source items, customers, orders, documents) for debugging."""
    state = _state(request)
    snap = copy.deepcopy(state.snapshot())
    snap.pop("admin_tokens", None)
    snap.pop("nonces", None)
    return ok(snap)
