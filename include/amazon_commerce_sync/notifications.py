"""Subscription set-up of the event-driven import: the SQS destination and each account's ORDER_CHANGE subscription.

Idempotent (a rerun changes nothing) and under the shared rate limiter (the state store's ``SqlLimiter``):

1. The queue's ARN is read from SQS (``GetQueueAttributes``) through the Airflow ``aws`` connection
   ``sales_channel_sqs``: the URL is all a person configures.
2. Destination (grantless, one per application and queue): ``getDestinations`` and take the one whose
   ``resource.sqs.arn`` is ours, else ``createDestination``; a 409 ``Conflict`` (someone created it meanwhile,
   amzn/selling-partner-api-docs#2072) is answered by reading ``getDestinations`` again.
3. Subscription (the seller's token, per account): ``getSubscription(ORDER_CHANGE, 1.0)``; 404 ->
   ``createSubscription`` with :data:`PROCESSING_DIRECTIVE`; a 409 ``StateConflict`` (no id in it, #1564) is
   answered by ``getSubscription``. A subscription to another destination or with another filter is reported
   as ``differs`` and left alone, unless ``replace=True`` (``deleteSubscriptionById``, then create).

Rule sources: Notifications API v1 model (``reference/sp-api/models/notifications.json``: the ``orderChangeTypes``
filter, grantless destination operations) and the ORDER_CHANGE schema (``reference/sp-api/schemas``).
"""

from __future__ import annotations

import logging
from typing import Any

from amazon_commerce_sync.constants import SQS_CONN_ID
from amazon_commerce_sync.errors import ConflictError, NotFoundError
from amazon_commerce_sync.hooks.amazon_notifications import ORDER_CHANGE, AmazonNotificationsHook
from amazon_commerce_sync.resources import Resources
from amazon_commerce_sync.settings import AccountSettings

log = logging.getLogger(__name__)

PAYLOAD_VERSION = "1.0"
DESTINATION_NAME = "sales-channel-order-change"
#: The subscription's filter: status changes and buyer-requested changes (cancellation requests); the schema's
#: third type, DeliveryTipChange, changes nothing the import writes.
PROCESSING_DIRECTIVE = {
    "eventFilter": {
        "eventFilterType": ORDER_CHANGE,
        "orderChangeTypes": ["OrderStatusChange", "BuyerRequestedChange"],
    }
}


def queue_arn(queue_url: str, aws_conn_id: str = SQS_CONN_ID) -> str:
    """The ARN of the SQS queue at ``queue_url`` (``GetQueueAttributes``), through the Airflow ``aws`` connection.

    :raises botocore.exceptions.ClientError: SQS has no such queue or refuses the credentials.
    """
    from airflow.providers.amazon.aws.hooks.sqs import SqsHook

    attributes = (
        SqsHook(aws_conn_id=aws_conn_id)
        .get_conn()
        .get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    )
    return attributes["Attributes"]["QueueArn"]


def _find_destination(hook: AmazonNotificationsHook, arn: str) -> dict[str, Any] | None:
    return next(
        (d for d in hook.get_destinations() if (d.get("resource") or {}).get("sqs", {}).get("arn") == arn), None
    )


def ensure_destination(hook: AmazonNotificationsHook, arn: str, name: str = DESTINATION_NAME) -> tuple[dict, bool]:
    """The application's destination for the queue ``arn``, created if missing: ``(destination, created)``.

    :param hook: a grantless :class:`AmazonNotificationsHook`.
    :raises ConflictError: Amazon says one exists (409) but ``getDestinations`` does not show it.
    """
    found = _find_destination(hook, arn)
    if found:
        return found, False
    try:
        return hook.create_destination(name, arn), True
    except ConflictError:
        log.info("createDestination: 409 Conflict, a destination for the queue exists; reading it")
        found = _find_destination(hook, arn)
        if found is None:
            raise
        return found, False


def _matches(subscription: dict[str, Any], destination_id: str) -> bool:
    directive = subscription.get("processingDirective") or {}
    wanted = PROCESSING_DIRECTIVE["eventFilter"]
    event_filter = directive.get("eventFilter") or {}
    return (
        subscription.get("destinationId") == destination_id
        and event_filter.get("eventFilterType") == wanted["eventFilterType"]
        and sorted(event_filter.get("orderChangeTypes") or []) == sorted(wanted["orderChangeTypes"])
    )


def ensure_subscription(
    seller: AmazonNotificationsHook, app: AmazonNotificationsHook, destination_id: str, *, replace: bool = False
) -> tuple[dict[str, Any], str]:
    """The seller's ORDER_CHANGE 1.0 subscription to ``destination_id``: ``(subscription, outcome)``.

    ``outcome``: ``exists`` (already as wanted), ``created``, ``replaced`` (``replace=True`` and it differed) or
    ``differs`` (another destination or filter; left alone).

    :param seller: a seller :class:`AmazonNotificationsHook`; ``app``: a grantless one (``deleteSubscriptionById``).
    """
    try:
        current: dict[str, Any] | None = seller.get_subscription(ORDER_CHANGE, PAYLOAD_VERSION)
    except NotFoundError:
        current = None
    outcome = "created"
    if current is not None:
        if _matches(current, destination_id):
            return current, "exists"
        if not replace:
            return current, "differs"
        app.delete_subscription_by_id(current["subscriptionId"], ORDER_CHANGE)
        outcome = "replaced"
    try:
        created = seller.create_subscription(
            destination_id,
            notification_type=ORDER_CHANGE,
            payload_version=PAYLOAD_VERSION,
            processing_directive=PROCESSING_DIRECTIVE,
        )
    except ConflictError:
        log.info("createSubscription: 409 StateConflict, the seller has one; reading it")
        current = seller.get_subscription(ORDER_CHANGE, PAYLOAD_VERSION)
        return current, "exists" if _matches(current, destination_id) else "differs"
    return created, outcome


def set_up(
    ctx: Resources,
    accounts: list[AccountSettings],
    *,
    queue_url: str,
    aws_conn_id: str = SQS_CONN_ID,
    replace: bool = False,
) -> dict[str, Any]:
    """Destination and subscription for every account; returns what exists and what changed (no secrets).

    ``{"queue_arn", "changed": bool, "accounts": {account_id: {"destination_id", "destination": "exists" |
    "created", "subscription_id", "subscription": "exists" | "created" | "replaced" | "differs", "filter"}}}``.
    Accounts sharing an SP-API connection share the application's destination (read once).
    """
    arn = queue_arn(queue_url, aws_conn_id)
    report: dict[str, Any] = {"queue_arn": arn, "changed": False, "accounts": {}}
    destinations: dict[str, tuple[str, str]] = {}
    for account in accounts:
        conn = account.amazon_conn_id
        app = AmazonNotificationsHook(conn, grantless=True, limiter=ctx.limiter)
        if conn not in destinations:
            destination, created = ensure_destination(app, arn)
            destinations[conn] = (destination["destinationId"], "created" if created else "exists")
        destination_id, destination_outcome = destinations[conn]
        seller = AmazonNotificationsHook(conn, grantless=False, limiter=ctx.limiter)
        subscription, outcome = ensure_subscription(seller, app, destination_id, replace=replace)
        report["accounts"][account.account_id] = {
            "destination_id": destination_id,
            "destination": destination_outcome,
            "subscription_id": subscription.get("subscriptionId"),
            "subscription": outcome,
            "filter": ((subscription.get("processingDirective") or {}).get("eventFilter") or {}).get(
                "orderChangeTypes"
            ),
        }
        if destination_outcome == "created" or outcome in ("created", "replaced"):
            report["changed"] = True
            ctx.store.ops.audit(
                "order_change_subscription",
                "amazon_account",
                account.account_id,
                {"destination_id": destination_id, "subscription": outcome},
            )
        log.info(
            "%s: destination %s (%s), subscription %s (%s)",
            account.account_id,
            destination_id,
            destination_outcome,
            subscription.get("subscriptionId"),
            outcome,
        )
        if outcome == "differs":
            log.warning(
                "%s: the seller's ORDER_CHANGE subscription goes to another destination or has another filter; "
                "left alone, so no notification reaches this queue: trigger again with replace=true",
                account.account_id,
            )
    return report


def setup_task(params: dict[str, Any], run_id: str) -> dict[str, Any]:
    """The ``amazon_notifications_setup`` task: :func:`set_up` for the ``account_id`` param (default: every account).

    :raises AirflowFailException: no queue URL (param ``queue_url`` or ``SALES_CHANNEL_ORDER_CHANGE_QUEUE_URL``),
        an unknown ``account_id``, or an account's subscription ``differs`` without ``replace`` (after every account
        was set up; the report is pushed as XCom ``report``).
    """
    import os

    from airflow.sdk.exceptions import AirflowFailException

    from amazon_commerce_sync.constants import ORDER_CHANGE_QUEUE_ENV
    from amazon_commerce_sync.resources import open_resources

    watched = os.environ.get(ORDER_CHANGE_QUEUE_ENV)
    queue_url = params.get("queue_url") or watched
    if not queue_url:
        raise AirflowFailException(f"no SQS queue: give param queue_url or set {ORDER_CHANGE_QUEUE_ENV}")
    if queue_url != watched:  # the watcher reads only the environment's queue (dags/amazon_order_events.py)
        log.warning(
            "subscribing queue %s, which no watcher reads: set %s to it for the scheduler, DAG processor, triggerer "
            "and workers, or amazon_order_events never sees these notifications",
            queue_url,
            ORDER_CHANGE_QUEUE_ENV,
        )
    ctx = open_resources(f"amazon_notifications_setup/{run_id}")
    accounts = ctx.settings.accounts
    if params.get("account_id"):
        accounts = [a for a in accounts if a.account_id == params["account_id"]]
        if not accounts:
            raise AirflowFailException(f"param account_id: no account {params['account_id']!r} in the settings")
    report = set_up(ctx, list(accounts), queue_url=queue_url, replace=bool(params.get("replace")))
    differs = sorted(a for a, r in report["accounts"].items() if r["subscription"] == "differs")
    if differs:  # a green run would hide that no notification reaches the queue
        from airflow.sdk import get_current_context

        get_current_context()["ti"].xcom_push(key="report", value=report)
        raise AirflowFailException(
            f"{', '.join(differs)}: the seller's ORDER_CHANGE subscription goes to another destination or has another "
            "filter, so no notification reaches this queue; it was left alone: trigger again with replace=true to "
            "replace it (any other accounts are set up; the report is XCom 'report')"
        )
    return report
