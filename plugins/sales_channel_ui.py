"""Airflow plugin: the "Sales Channel" page in the Airflow UI.

The page is a FastAPI app served by the Airflow API server under ``/sales-channel`` and shown in the
UI's navigation as an external view. Everything it does lives in ``amazon_commerce_sync.ui``.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from amazon_commerce_sync.ui.app import create_app

URL_PREFIX = "/sales-channel"


class SalesChannelPlugin(AirflowPlugin):
    name = "sales_channel"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Sales Channel"}]
    external_views = [
        {
            "name": "Sales Channel",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "sales-channel",
            "nav_top_level": True,
        }
    ]
