"""Amazon Notifications API v1 (destinations, ``ORDER_CHANGE`` subscriptions) on the SP-API hook.

Same connection, limiter, retry policy and error classes as :class:`~amazon_commerce_sync.hooks.amazon.
AmazonSpApiHook` (its module is at its size limit, so the Notifications operations live here). Two kinds of
call, as Amazon's model (``reference/sp-api/models/notifications.json``) says:

- **grantless** (destinations, ``deleteSubscriptionById``): an application token from LWA's
  ``client_credentials`` grant with ``scope=sellingpartnerapi::notifications`` (SP-API "Grantless operations"),
  cached apart from the seller's token; rate-limit buckets keyed by the application (the LWA client id), not
  by the seller;
- **seller** (``getSubscription``, ``createSubscription``): the seller's refresh-token access token.

A hook is one or the other (``grantless=True``); a method called on the wrong kind raises ``ValueError``.
Answers the caller handles (``notifications.py``): 409 ``Conflict`` from ``createDestination`` (a destination
for that ARN exists: amzn/selling-partner-api-docs#2072), 409 ``StateConflict`` from ``createSubscription``
(the seller has one; no id given: #1564), 404 from ``getSubscription`` (none) — raised as ``ConflictError`` and
``NotFoundError`` (``errors.py``).
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from amazon_commerce_sync.hooks.amazon import BURST_HEADROOM, RATE_SAFETY, AmazonSpApiHook
from amazon_commerce_sync.hooks.auth import LwaAuth
from amazon_commerce_sync.hooks.operations import RATE_LIMITS

#: The LWA scope of the Notifications API's grantless operations.
NOTIFICATIONS_SCOPE = "sellingpartnerapi::notifications"
ORDER_CHANGE = "ORDER_CHANGE"


class LwaGrantlessAuth(LwaAuth):
    """An application access token (LWA ``client_credentials`` grant with a ``scope``), no seller involved."""

    operation = "lwaGrantlessToken"

    def __init__(self, *, scope: str, **kwargs: Any) -> None:
        super().__init__(refresh_token="", **kwargs)
        self.scope = scope

    def __repr__(self) -> str:
        return f"LwaGrantlessAuth(conn_id={self.conn_id!r}, scope={self.scope!r})"

    def _grant(self) -> dict[str, str]:
        return {"grant_type": "client_credentials", "scope": self.scope}


class AmazonNotificationsHook(AmazonSpApiHook):
    """The Notifications API's destinations and subscriptions (see the module docstring).

    :param amazon_conn_id: the SP-API connection (``hooks/amazon.py``).
    :param grantless: True for the application's grantless calls, False for the seller's.
    :param kwargs: as :class:`AmazonSpApiHook` (``limiter``, ``retry_policy``, ``max_rate_wait``).
    """

    hook_name = "Amazon SP-API Notifications"

    def __init__(self, amazon_conn_id: str = AmazonSpApiHook.default_conn_name, *, grantless: bool, **kwargs: Any):
        super().__init__(amazon_conn_id, **kwargs)
        self.grantless = grantless

    @functools.cached_property
    def auth(self) -> LwaAuth:
        """The grantless application token, or the seller's (``AmazonSpApiHook.auth``)."""
        if not self.grantless:
            return super().auth
        s = self.settings
        return LwaGrantlessAuth(
            scope=NOTIFICATIONS_SCOPE,
            endpoint=s.lwa_endpoint,
            client_id=s.client_id,
            client_secret=s.client_secret,
            timeout=s.timeout,
            conn_id=s.conn_id,
            retry_policy=self.retry_policy,
        )

    def _bucket(self, operation: str) -> tuple[str, float, int]:
        """Grantless calls count against the application (its client id), seller calls against the seller."""
        if not self.grantless:
            return super()._bucket(operation)
        rate, burst = RATE_LIMITS[operation]
        application = hashlib.sha256(self.settings.client_id.encode()).hexdigest()[:16]
        return (
            f"sp-api|{self.settings.base_url}|app:{application}|{operation}",
            rate * self.settings.rate_scale * RATE_SAFETY,
            max(1, burst - BURST_HEADROOM),
        )

    def _kind(self, grantless: bool, operation: str) -> None:
        if grantless != self.grantless:
            kind = "grantless" if grantless else "seller"
            raise ValueError(f"{operation} is a {kind} operation: use AmazonNotificationsHook(grantless={grantless})")

    # ------------------------------------------------------------------ destinations (grantless)

    def get_destinations(self) -> list[dict[str, Any]]:
        """Every destination of the application: ``[{"name", "destinationId", "resource": {"sqs": {"arn"}}}]``."""
        self._kind(True, "getDestinations")
        body = self._call("GET", "/notifications/v1/destinations", operation="getDestinations") or {}
        return list(body.get("payload") or [])

    def create_destination(self, name: str, sqs_arn: str) -> dict[str, Any]:
        """A new SQS destination (``{"name", "destinationId", "resource"}``).

        Not idempotent: retried only when the request certainly did not reach Amazon.

        :raises ConflictError: the application already has a destination for ``sqs_arn`` (409 ``Conflict``).
        :raises BadRequestError: Amazon cannot use the queue (its policy does not let Amazon send to it).
        """
        self._kind(True, "createDestination")
        body = self._call(
            "POST",
            "/notifications/v1/destinations",
            operation="createDestination",
            body={"name": name, "resourceSpecification": {"sqs": {"arn": sqs_arn}}},
            idempotent=False,
        )
        return (body or {}).get("payload") or {}

    def delete_subscription_by_id(self, subscription_id: str, notification_type: str = ORDER_CHANGE) -> None:
        """Delete a subscription (grantless, by id).

        :raises NotFoundError: no such subscription.
        """
        self._kind(True, "deleteSubscriptionById")
        self._call(
            "DELETE",
            f"/notifications/v1/subscriptions/{notification_type}/{subscription_id}",
            operation="deleteSubscriptionById",
        )

    # ------------------------------------------------------------------ subscriptions (the seller's)

    def get_subscription(self, notification_type: str = ORDER_CHANGE, payload_version: str = "1.0") -> dict[str, Any]:
        """The seller's subscription (``{"subscriptionId", "payloadVersion", "destinationId",
        "processingDirective"?}``).

        :raises NotFoundError: the seller has none for this type and version.
        """
        self._kind(False, "getSubscription")
        body = self._call(
            "GET",
            f"/notifications/v1/subscriptions/{notification_type}",
            operation="getSubscription",
            params={"payloadVersion": payload_version},
        )
        return (body or {}).get("payload") or {}

    def create_subscription(
        self,
        destination_id: str,
        *,
        notification_type: str = ORDER_CHANGE,
        payload_version: str = "1.0",
        processing_directive: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Subscribe the seller; returns the subscription. Not idempotent (see ``create_destination``).

        :raises ConflictError: the seller already has one for this type and version (409 ``StateConflict``).
        """
        self._kind(False, "createSubscription")
        body: dict[str, Any] = {"payloadVersion": payload_version, "destinationId": destination_id}
        if processing_directive:
            body["processingDirective"] = processing_directive
        answer = self._call(
            "POST",
            f"/notifications/v1/subscriptions/{notification_type}",
            operation="createSubscription",
            body=body,
            idempotent=False,
        )
        return (answer or {}).get("payload") or {}
