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

# Emitted by the import when Commerce orders were created or changed.
ASSET_COMMERCE_ORDERS = "sales-channel://commerce/orders"

OWNER = "sales-channel"
