"""Ids, names and limits used across the integration: one home for each.

This module imports nothing: DAG files read it at parse time (see ``dag_defaults``).
"""

from __future__ import annotations

AMAZON_CONN_ID = "amazon_sp_api"
COMMERCE_CONN_ID = "commerce"
STATE_DB_CONN_ID = "sales_channel_db"
SMTP_CONN_ID = "sales_channel_smtp"

# Airflow Variable holding the Sales Channel settings (JSON); see settings.py.
SETTINGS_VARIABLE = "sales_channel_settings"

DAG_HEALTHCHECK = "sales_channel_healthcheck"
DAG_ORDER_IMPORT = "amazon_order_import"
DAG_SHIPMENT_SYNC = "amazon_shipment_sync"
DAG_REFUND_SYNC = "amazon_refund_sync"
DAG_ORDER_CANCEL = "amazon_order_cancel"
DAG_PII_RETENTION = "amazon_pii_retention"
DAG_MONITOR = "sales_channel_monitor"
#: One run per buyer cancellation request (human in the loop); run id from ``cancel_decision_run_id``.
DAG_CANCEL_DECISION = "amazon_buyer_cancel_decision"
#: The event-driven import: subscription set-up (manual) and the ORDER_CHANGE consumer.
DAG_NOTIFICATIONS_SETUP = "amazon_notifications_setup"
DAG_ORDER_EVENTS = "amazon_order_events"

# The deployment switch (environment variable) of each scheduled DAG's cron; ``none`` = triggered only.
SCHEDULE_SWITCHES = {
    DAG_ORDER_IMPORT: "SALES_CHANNEL_IMPORT_SCHEDULE",
    DAG_SHIPMENT_SYNC: "SALES_CHANNEL_SHIPMENT_SCHEDULE",
    DAG_REFUND_SYNC: "SALES_CHANNEL_REFUND_SCHEDULE",
    DAG_MONITOR: "SALES_CHANNEL_MONITOR_SCHEDULE",
    DAG_PII_RETENTION: "SALES_CHANNEL_RETENTION_SCHEDULE",
    DAG_ORDER_EVENTS: "SALES_CHANNEL_ORDER_EVENTS_SCHEDULE",
}

# -- event-driven import (docs/event-driven-import.md) ----------------------------------------------------
#: The Airflow ``aws`` connection of the SQS queue Amazon delivers ORDER_CHANGE to (``extra.endpoint_url``: a
#: local SQS such as moto; ``extra.region_name``).
SQS_CONN_ID = "sales_channel_sqs"
#: Deployment switch: the URL of that queue. Unset: amazon_order_events has no watcher (timetable only).
ORDER_CHANGE_QUEUE_ENV = "SALES_CHANNEL_ORDER_CHANGE_QUEUE_URL"
#: The asset the ORDER_CHANGE watcher updates; amazon_order_events is scheduled on it.
ASSET_ORDER_CHANGE = "x-sales-channel://amazon/order-change"

# Asset URIs use Airflow's "x-" scheme prefix for schemes of one's own: Airflow then skips the providers' URI
# normalizers, which it would otherwise load at parse time (the Amazon provider's S3 handler: boto3, requests).
# Emitted by the import when Commerce orders were created or changed.
ASSET_COMMERCE_ORDERS = "x-sales-channel://commerce/orders"

OWNER = "sales-channel"


def cancel_decision_run_id(account_id: str, amazon_order_id: str) -> str:
    """The run id of the decision run for one buyer cancellation request (one run per account and order)."""
    return f"buyer_request__{account_id}__{amazon_order_id}"


# -- identifiers, as patterns (the DAGs' forms and the tasks check the same ones) --------------------------
#: An Amazon order id, e.g. ``123-1234567-1234567`` (SP-API ``orderId``).
AMAZON_ORDER_ID_PATTERN = r"^\d{3}-\d{7}-\d{7}$"
#: What a form says when a value does not match ``AMAZON_ORDER_ID_PATTERN`` (``dag_defaults.string_matching``).
AMAZON_ORDER_ID_EXPECTED = "an Amazon order id: 3-7-7 digits, like 123-1234567-1234567"
#: A Commerce order number (Magento ``increment_id``, at most 50 characters in ``sales_order``).
COMMERCE_ORDER_NUMBER_PATTERN = r"^[A-Za-z0-9_-]{1,50}$"
#: Our name for an Amazon account in the settings (``account_id``).
ACCOUNT_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
#: What a form says when a value does not match ``ACCOUNT_ID_PATTERN``.
ACCOUNT_ID_EXPECTED = "an account id of the settings: 1-64 letters, digits, '.', '_' or '-'"

# -- amazon_order_cancel ----------------------------------------------------------------------------------
#: Amazon's ``CancelReason`` values of the OrderAcknowledgement feed (``POST_ORDER_ACKNOWLEDGEMENT_DATA``).
CANCEL_REASONS = (
    "NoInventory",
    "ShippingAddressUndeliverable",
    "CustomerExchange",
    "BuyerCanceled",
    "GeneralAdjustment",
    "CarrierCreditDecision",
    "RiskAssessmentInformationNotValid",
    "CarrierCoverageFailure",
    "CustomerReturn",
    "MerchandiseNotReceived",
)
CANCEL_MAX_ORDERS = 50  # orders per cancellation run
CANCEL_MAX_NOTE = 500  # characters of the note added to the Commerce order comment
