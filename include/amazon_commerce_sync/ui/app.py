"""The Sales Channel page as a FastAPI app, mounted by the Airflow API server (see ``plugins/``).

The page requires a signed-in Airflow user allowed to read the runs of the Sales Channel DAGs
(``ui/access.py``): the API server's own ``get_user`` (the JWT in the ``Authorization`` header or
the UI's session cookie) and then the deployment's auth manager decide, so an anonymous request
gets 401 and a user without that permission 403, with the Simple and the FAB auth manager alike.

Account thresholds come from the settings file (``SALES_CHANNEL_SETTINGS_FILE``) when it is set;
otherwise every account uses the default alert threshold. The page never reads Airflow Variables
or Connections per request, except through the state store's engine (built once per process).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import DBAPIError

from amazon_commerce_sync.constants import (
    DAG_MONITOR,
    DAG_ORDER_CANCEL,
    DAG_ORDER_IMPORT,
    DAG_PII_RETENTION,
    DAG_REFUND_SYNC,
    DAG_SHIPMENT_SYNC,
)
from amazon_commerce_sync.store import StateStore
from amazon_commerce_sync.ui import queries
from amazon_commerce_sync.ui.access import requires_page_access
from amazon_commerce_sync.ui.template import render_page

log = logging.getLogger(__name__)

PAGE_DAGS = (
    DAG_ORDER_IMPORT,
    DAG_SHIPMENT_SYNC,
    DAG_REFUND_SYNC,
    DAG_ORDER_CANCEL,
    DAG_PII_RETENTION,
    DAG_MONITOR,
)

UNAVAILABLE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Sales Channel</title></head>"
    "<body style='font-family:system-ui;margin:24px'><h1>Sales Channel</h1>"
    "<p>The state store cannot be read yet. It is created by the first run of a Sales Channel DAG "
    "(e.g. <code>sales_channel_healthcheck</code>); check the <code>sales_channel_db</code> connection "
    "and the API server's log.</p></body></html>"
)


def require_user():
    """The page's access dependency: a signed-in user the auth manager lets read the runs of every Sales Channel DAG
    (``PAGE_DAGS``, whatever the page is told to list); 401 / 403 otherwise. See ``ui/access.py``."""
    return requires_page_access(PAGE_DAGS)


def default_store() -> StateStore:
    from amazon_commerce_sync.store.db import get_engine

    return StateStore(get_engine(), actor="sales-channel-page")


def lag_thresholds() -> dict[str, int]:
    """alert_import_lag_minutes per account, from the settings file if one is configured."""
    if not os.environ.get("SALES_CHANNEL_SETTINGS_FILE"):
        return {}
    try:
        from amazon_commerce_sync.settings import load_settings

        return {a.account_id: a.alert_import_lag_minutes for a in load_settings().accounts}
    except Exception:  # noqa: BLE001 - the page shows default thresholds rather than nothing
        log.warning("cannot read the Sales Channel settings; using the default lag threshold", exc_info=True)
        return {}


def create_app(
    store_factory: Callable[[], StateStore] = default_store,
    *,
    dag_ids: tuple[str, ...] = PAGE_DAGS,
    ok_minutes: int = queries.DEFAULT_OK_MINUTES,
) -> FastAPI:
    """The page's app; ``store_factory`` is called once, on the first request."""
    # Every route of the app, present and future, sits behind the page's access check.
    app = FastAPI(
        title="Sales Channel",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(require_user())],
    )
    stores: list[StateStore] = []

    def store() -> StateStore:
        if not stores:
            stores.append(store_factory())
        return stores[0]

    @app.get("/", response_class=HTMLResponse, dependencies=[Depends(require_user())])
    def page() -> HTMLResponse:
        try:
            data = queries.page_data(
                store(), datetime.now(UTC), lag_alert_minutes=lag_thresholds(), ok_minutes=ok_minutes, dag_ids=dag_ids
            )
        except DBAPIError as exc:  # e.g. no DAG has run yet, so the store is not migrated
            log.warning("Sales Channel page: cannot read the state store: %s", type(exc.orig).__name__)
            return HTMLResponse(UNAVAILABLE, status_code=503, headers={"Cache-Control": "no-store"})
        return HTMLResponse(render_page(data, ok_minutes), headers={"Cache-Control": "no-store"})

    return app
