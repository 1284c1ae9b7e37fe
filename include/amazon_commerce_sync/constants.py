"""Ids and names used across the integration: one home for each."""

from __future__ import annotations

AMAZON_CONN_ID = "amazon_sp_api"
COMMERCE_CONN_ID = "commerce"
STATE_DB_CONN_ID = "sales_channel_db"

# Airflow Variable holding the Sales Channel settings (JSON); see settings.py.
SETTINGS_VARIABLE = "sales_channel_settings"

DAG_HEALTHCHECK = "sales_channel_healthcheck"
DAG_ORDER_IMPORT = "amazon_order_import"
DAG_SHIPMENT_SYNC = "amazon_shipment_sync"
DAG_REFUND_SYNC = "amazon_refund_sync"
DAG_ORDER_CANCEL = "amazon_order_cancel"
DAG_PII_RETENTION = "amazon_pii_retention"
DAG_MONITOR = "sales_channel_monitor"

# The deployment switch (environment variable) of each scheduled DAG's cron; ``none`` = triggered only.
SCHEDULE_SWITCHES = {
    DAG_ORDER_IMPORT: "SALES_CHANNEL_IMPORT_SCHEDULE",
    DAG_SHIPMENT_SYNC: "SALES_CHANNEL_SHIPMENT_SCHEDULE",
    DAG_REFUND_SYNC: "SALES_CHANNEL_REFUND_SCHEDULE",
    DAG_MONITOR: "SALES_CHANNEL_MONITOR_SCHEDULE",
    DAG_PII_RETENTION: "SALES_CHANNEL_RETENTION_SCHEDULE",
}

# Emitted by the import when Commerce orders were created or changed.
ASSET_COMMERCE_ORDERS = "sales-channel://commerce/orders"

OWNER = "sales-channel"
