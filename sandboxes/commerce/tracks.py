"""Shipment tracks: ``POST /V1/shipment/track`` (Magento's ``ShipmentTrackRepositoryInterface::save``).

As Magento 2.4's ``Order\\Shipment\\TrackRepository::save``: the track's shipment must exist and belong to
the track's order (``parent_id`` and ``order_id`` together), and ``Order\\Shipment\\Track\\Validator`` requires
``parent_id``, ``order_id``, ``track_number`` and ``carrier_code``; any failure is a 400 "Could not save the
shipment tracking." (``CouldNotSaveException``). The saved track is answered and shows on the shipment
(``GET /V1/shipment/{id}``, ``GET /V1/shipments``). Saving the same track twice makes two tracks: the call
has no idempotency. The shipment's own ``updated_at`` does not change (Magento saves the track row only).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from sandboxes.commerce.context import Ctx, body_object, rest_context
from sandboxes.commerce.errors import MagentoError
from sandboxes.commerce.schema_input import coerce
from sandboxes.commerce.state import SandboxState
from sandboxes.commerce.wire import D, ok

router = APIRouter()
MSG_COULD_NOT_SAVE = "Could not save the shipment tracking."
REQUIRED = ("parent_id", "order_id", "track_number", "carrier_code")  # Order\Shipment\Track\Validator


def save_track(state: SandboxState, body: dict[str, Any]) -> dict[str, Any]:
    """Save one track on its shipment; returns the saved track. Raises ``MagentoError`` 400 as Magento does."""
    if "entity" not in body:
        raise MagentoError(400, '"%fieldName" is required. Enter and try again.', {"fieldName": "entity"})
    entity = coerce("sales-data-shipment-track-interface", body["entity"])
    if any(entity.get(name) in (None, "") for name in REQUIRED):
        raise MagentoError(400, MSG_COULD_NOT_SAVE)
    with state.lock:
        shipment = state.shipments.get(int(entity["parent_id"]))
        if shipment is None or int(shipment["order_id"]) != int(entity["order_id"]):
            raise MagentoError(400, MSG_COULD_NOT_SAVE)  # "The shipment doesn't belong to the order." (logged)
        tracks = shipment.setdefault("tracks", [])
        existing = next((t for t in tracks if entity.get("entity_id") and t["entity_id"] == entity["entity_id"]), None)
        now = state.now()
        track = existing if existing is not None else {"entity_id": state.next_id("shipment_track"), "created_at": now}
        track.update(
            parent_id=int(shipment["entity_id"]),
            order_id=int(shipment["order_id"]),
            track_number=str(entity["track_number"]),
            title=str(entity.get("title") or ""),
            carrier_code=str(entity["carrier_code"]),
            weight=D(entity["weight"] if entity.get("weight") is not None else track.get("weight")),
            qty=D(entity["qty"] if entity.get("qty") is not None else track.get("qty")),
            description=str(entity.get("description") or ""),
            updated_at=now,
        )
        if existing is None:
            tracks.append(track)
        state.save()
        return dict(track)


@router.post("/V1/shipment/track")
async def post_track(ctx: Ctx = Depends(rest_context)) -> Response:
    return ok(save_track(ctx.state, body_object(ctx)))
