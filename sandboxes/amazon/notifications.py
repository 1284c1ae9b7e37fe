"""Notifications API v1: destinations (grantless) and subscriptions, as the official model
``sp-api/models/notifications.json`` defines them.

- Destinations belong to the application and are managed with a grantless token (LWA ``client_credentials``,
  scope ``sellingpartnerapi::notifications``; the gateway checks it). Only SQS destinations are served: the
  sandbox delivers ``ORDER_CHANGE`` to SQS (``publisher.py``). A second destination for the same queue ARN is
  409 ``Conflict`` ("A destination with arn ... already exists for the application ...", Amazon's answer in
  amzn/selling-partner-api-docs#2072); a destination still used by a subscription cannot be deleted (409).
- Subscriptions belong to a seller: ``createSubscription``, ``getSubscription`` and ``getSubscriptions`` take the
  seller's token; ``getSubscriptionById`` and ``deleteSubscriptionById`` are grantless. A second subscription
  for the same seller, notification type and payload version is 409 ``StateConflict`` with the model's message
  and no subscription id (Amazon's answer in amzn/selling-partner-api-docs#1564): the caller reads the existing
  one with ``getSubscription``.
- Only ``ORDER_CHANGE`` (payload version 1.0) is served; its ``eventFilter`` (``eventFilterType``
  ``ORDER_CHANGE``) may carry ``orderChangeTypes`` and ``marketplaceIds``; ``aggregationSettings`` and
  ``filterExpression`` are refused (400) rather than ignored.

Requests are validated against the model's request definitions; answers use its response shapes
(``{"payload": ...}`` or ``{"errors": [...]}``).
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sandboxes.amazon import publisher
from sandboxes.amazon.faults import NotificationFaults
from sandboxes.amazon.store import SandboxState
from sandboxes.amazon.util import SpApiError, invalid_input, iso, model_body, now

log = logging.getLogger(__name__)
router = APIRouter()

MODEL = "sp-api/models/notifications.json"
ORDER_CHANGE = "ORDER_CHANGE"
PAYLOAD_VERSIONS = {ORDER_CHANGE: ("1.0",)}
STATE_CONFLICT = "The resource specified conflicts with the current state."


def _state(request: Request) -> SandboxState:
    return request.app.state.sandbox


def _not_found(message: str) -> SpApiError:
    return SpApiError(404, "NotFound", "The resource specified does not exist.", message)


async def _body(request: Request, definition: str) -> dict[str, Any]:
    return model_body(await request.body(), MODEL, definition)


def _notification_type(notification_type: str) -> str:
    if notification_type not in PAYLOAD_VERSIONS:
        raise invalid_input(
            f"Invalid notificationType {notification_type}.",
            f"This sandbox serves {', '.join(sorted(PAYLOAD_VERSIONS))}.",
        )
    return notification_type


# ------------------------------------------------------------------ destinations (grantless)
@router.post("/notifications/v1/destinations")
async def create_destination(request: Request) -> JSONResponse:
    state = _state(request)
    body = await _body(request, "CreateDestinationRequest")
    spec = body["resourceSpecification"]
    if "eventBridge" in spec or "sqs" not in spec:
        raise invalid_input("Invalid resourceSpecification.", "This sandbox serves SQS destinations only.")
    arn = spec["sqs"]["arn"]
    with state.lock:
        for existing in state.destinations.values():
            if existing["resource"].get("sqs", {}).get("arn") == arn:
                raise SpApiError(
                    409,
                    "Conflict",
                    "The requested resource conflict with a resource in the server.",
                    f"A destination with arn {arn} already exists for the application {state.config.application_id}",
                )
        problem = publisher.queue_problem(state, arn)
        if problem:
            raise invalid_input("Invalid SQS arn.", problem)
        destination = {"name": body["name"], "destinationId": str(uuid.uuid4()), "resource": {"sqs": {"arn": arn}}}
        state.destinations[destination["destinationId"]] = destination
        state.save()
    log.info("destination %s created for %s", destination["destinationId"], arn)
    return JSONResponse({"payload": destination})


@router.get("/notifications/v1/destinations")
def get_destinations(request: Request) -> JSONResponse:
    state = _state(request)
    with state.lock:
        return JSONResponse({"payload": list(state.destinations.values())})


@router.get("/notifications/v1/destinations/{destination_id}")
def get_destination(destination_id: str, request: Request) -> JSONResponse:
    state = _state(request)
    with state.lock:
        destination = state.destinations.get(destination_id)
        if destination is None:
            raise _not_found(f"Destination {destination_id} not found.")
        return JSONResponse({"payload": destination})


@router.delete("/notifications/v1/destinations/{destination_id}")
def delete_destination(destination_id: str, request: Request) -> JSONResponse:
    state = _state(request)
    with state.lock:
        if destination_id not in state.destinations:
            raise _not_found(f"Destination {destination_id} not found.")
        used = sorted(
            sid for sid, s in state.subscriptions.items() if s["subscription"]["destinationId"] == destination_id
        )
        if used:
            raise SpApiError(
                409, "Conflict", STATE_CONFLICT, f"Destination {destination_id} is used by subscriptions {used}."
            )
        del state.destinations[destination_id]
        state.save()
    return JSONResponse({})


# ------------------------------------------------------------------ subscriptions
def _seller_subscriptions(state: SandboxState, seller_id: str, notification_type: str) -> list[dict[str, Any]]:
    return [
        s["subscription"]
        for s in state.subscriptions.values()
        if s["sellerId"] == seller_id and s["notificationType"] == notification_type
    ]


def _check_directive(directive: dict[str, Any] | None) -> None:
    if not directive:
        return
    if "filterExpression" in directive:
        raise invalid_input("filterExpression is not supported for ORDER_CHANGE by this sandbox; use eventFilter.")
    event_filter = directive.get("eventFilter")
    if event_filter is None:
        return
    if event_filter["eventFilterType"] != ORDER_CHANGE:
        raise invalid_input(f"eventFilterType {event_filter['eventFilterType']} does not match ORDER_CHANGE.")
    if "aggregationSettings" in event_filter:
        raise invalid_input("aggregationSettings is not supported for ORDER_CHANGE.")
    if "trackingIdentifier" in event_filter:
        raise invalid_input("trackingIdentifier is not supported for ORDER_CHANGE.")


@router.post("/notifications/v1/subscriptions/{notification_type}")
async def create_subscription(notification_type: str, request: Request) -> JSONResponse:
    state = _state(request)
    seller_id = request.scope["state"]["seller_id"]
    notification_type = _notification_type(notification_type)
    body = await _body(request, "CreateSubscriptionRequest")
    if body["payloadVersion"] not in PAYLOAD_VERSIONS[notification_type]:
        raise invalid_input(
            f"Invalid payloadVersion {body['payloadVersion']} for {notification_type}.",
            f"Supported: {', '.join(PAYLOAD_VERSIONS[notification_type])}.",
        )
    directive = body.get("processingDirective")
    _check_directive(directive)
    with state.lock:
        if body["destinationId"] not in state.destinations:
            raise invalid_input(f"Invalid destinationId {body['destinationId']}: no such destination.")
        if any(
            s["payloadVersion"] == body["payloadVersion"]
            for s in _seller_subscriptions(state, seller_id, notification_type)
        ):
            raise SpApiError(409, "StateConflict", STATE_CONFLICT)
        subscription: dict[str, Any] = {
            "subscriptionId": str(uuid.uuid4()),
            "payloadVersion": body["payloadVersion"],
            "destinationId": body["destinationId"],
        }
        if directive:
            subscription["processingDirective"] = directive
        state.subscriptions[subscription["subscriptionId"]] = {
            "sellerId": seller_id,
            "notificationType": notification_type,
            "createdAt": iso(now()),
            "subscription": subscription,
        }
        state.save()
    log.info("subscription %s to %s for seller %s", subscription["subscriptionId"], notification_type, seller_id)
    return JSONResponse({"payload": subscription})


@router.get("/notifications/v1/subscriptions")
def get_subscriptions(request: Request) -> JSONResponse:
    state = _state(request)
    seller_id = request.scope["state"]["seller_id"]
    types = [t.strip() for v in request.query_params.getlist("notificationTypes") for t in v.split(",") if t.strip()]
    if not types:
        raise invalid_input("notificationTypes is required.")
    for name in types:
        _notification_type(name)
    version = request.query_params.get("payloadVersion")
    with state.lock:
        found = [
            s
            for name in types
            for s in _seller_subscriptions(state, seller_id, name)
            if version is None or s["payloadVersion"] == version
        ]
    return JSONResponse({"payload": {"subscriptions": found}})


@router.get("/notifications/v1/subscriptions/{notification_type}")
def get_subscription(notification_type: str, request: Request) -> JSONResponse:
    state = _state(request)
    seller_id = request.scope["state"]["seller_id"]
    notification_type = _notification_type(notification_type)
    version = request.query_params.get("payloadVersion")
    with state.lock:
        found = [
            s
            for s in _seller_subscriptions(state, seller_id, notification_type)
            if version is None or s["payloadVersion"] == version
        ]
    if not found:
        raise _not_found(f"No {notification_type} subscription for this selling partner.")
    latest = max(found, key=lambda s: tuple(int(p) for p in s["payloadVersion"].split(".") if p.isdigit()))
    return JSONResponse({"payload": latest})


def _subscription_by_id(state: SandboxState, notification_type: str, subscription_id: str) -> dict[str, Any]:
    entry = state.subscriptions.get(subscription_id)
    if entry is None or entry["notificationType"] != notification_type:
        raise _not_found(f"Subscription {subscription_id} not found for {notification_type}.")
    return entry


@router.get("/notifications/v1/subscriptions/{notification_type}/{subscription_id}")
def get_subscription_by_id(notification_type: str, subscription_id: str, request: Request) -> JSONResponse:
    state = _state(request)
    notification_type = _notification_type(notification_type)
    with state.lock:
        return JSONResponse({"payload": _subscription_by_id(state, notification_type, subscription_id)["subscription"]})


@router.delete("/notifications/v1/subscriptions/{notification_type}/{subscription_id}")
def delete_subscription_by_id(notification_type: str, subscription_id: str, request: Request) -> JSONResponse:
    state = _state(request)
    notification_type = _notification_type(notification_type)
    with state.lock:
        _subscription_by_id(state, notification_type, subscription_id)
        del state.subscriptions[subscription_id]
        state.save()
    return JSONResponse({})


# ------------------------------------------------------------------ sandbox admin (no auth)
@router.get("/_sandbox/notifications")
def sandbox_notifications(request: Request) -> JSONResponse:
    """Destinations, subscriptions (with their seller) and how many notifications wait to be sent."""
    state = _state(request)
    with state.lock:
        subscriptions = [
            {"sellerId": s["sellerId"], "notificationType": s["notificationType"], **s["subscription"]}
            for s in state.subscriptions.values()
        ]
        destinations = list(state.destinations.values())
    return JSONResponse(
        {"destinations": destinations, "subscriptions": subscriptions, "pending": state.deliveries.pending()}
    )


@router.get("/_sandbox/notifications/faults")
def get_notification_faults(request: Request) -> JSONResponse:
    return JSONResponse(_state(request).notification_faults.as_json())


@router.post("/_sandbox/notifications/faults")
async def set_notification_faults(request: Request) -> JSONResponse:
    """Replace the delivery faults (``faults.NotificationFaults`` fields; ``{}`` clears them)."""
    state = _state(request)
    try:
        body = json.loads(await request.body() or b"{}")
        state.notification_faults = NotificationFaults.from_json(body if isinstance(body, dict) else {"?": body})
    except (TypeError, ValueError) as exc:
        raise invalid_input(str(exc)) from exc
    return JSONResponse(state.notification_faults.as_json())
