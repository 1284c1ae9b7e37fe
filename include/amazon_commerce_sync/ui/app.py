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

import csv
import io
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.exc import DBAPIError

from amazon_commerce_sync.constants import (
    DAG_CANCEL_DECISION,
    DAG_HEALTHCHECK,
    DAG_MONITOR,
    DAG_NOTIFICATIONS_SETUP,
    DAG_ORDER_CANCEL,
    DAG_ORDER_EVENTS,
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
    DAG_ORDER_EVENTS,
    DAG_NOTIFICATIONS_SETUP,
    DAG_SHIPMENT_SYNC,
    DAG_REFUND_SYNC,
    DAG_ORDER_CANCEL,
    DAG_CANCEL_DECISION,
    DAG_PII_RETENTION,
    DAG_MONITOR,
    DAG_HEALTHCHECK,
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


def _accounts() -> list:
    if not os.environ.get("SALES_CHANNEL_SETTINGS_FILE"):
        return []
    try:
        from amazon_commerce_sync.settings import load_settings

        return list(load_settings().accounts)
    except Exception:  # noqa: BLE001 - the page shows default thresholds rather than nothing
        log.warning("cannot read the Sales Channel settings; using the default thresholds", exc_info=True)
        return []


def lag_thresholds() -> dict[str, int]:
    """alert_import_lag_minutes per account, from the settings file if one is configured."""
    return {a.account_id: a.alert_import_lag_minutes for a in _accounts()}


def ship_by_hours() -> int:
    """How close to its ship-by deadline an order is listed as at risk: the largest ``alert_ship_by_hours`` of the
    accounts in the settings file, else the setting's default."""
    return max((a.alert_ship_by_hours for a in _accounts()), default=queries.DEFAULT_SHIP_BY_HOURS)


FREE_TEXT = frozenset({"reason", "sync_reason", "amazon_message", "detail"})


def _cell(key: str, value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return int(value.total_seconds() // 60)
    if key in FREE_TEXT and value:
        from amazon_commerce_sync.alerts import safe_text

        return safe_text(value)  # as on the page: e-mail addresses and secrets masked
    return value


def csv_text(listing: queries.Listing) -> str:
    """A list's rows as CSV (a header of its columns; times ISO 8601 UTC, ages in whole minutes, free text as
    the page shows it)."""
    out = io.StringIO()
    if listing.rows:
        writer = csv.DictWriter(out, fieldnames=list(listing.rows[0]), extrasaction="ignore")
        writer.writeheader()
        for row in listing.rows:
            writer.writerow({k: _cell(k, v) for k, v in row.items()})
    return out.getvalue()


def create_app(
    store_factory: Callable[[], StateStore] = default_store,
    *,
    dag_ids: tuple[str, ...] = PAGE_DAGS,
    ok_minutes: int | None = None,
) -> FastAPI:
    """The page's app; ``store_factory`` is called once, on the first request. ``ok_minutes``: lag still "ok"
    (default: three intervals of the import's schedule as Airflow has it). Routes: ``/`` the page, ``/csv/<list>``
    one of its lists in full (``queries.LISTS``); every route, present and future, sits behind the page's access
    check (``ui/access.py``)."""
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

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        try:
            data = queries.page_data(
                store(),
                datetime.now(UTC),
                lag_alert_minutes=lag_thresholds(),
                ok_minutes=ok_minutes,
                dag_ids=dag_ids,
                ship_by_hours=ship_by_hours(),
            )
        except DBAPIError as exc:  # e.g. no DAG has run yet, so the store is not migrated
            log.warning("Sales Channel page: cannot read the state store: %s", type(exc.orig).__name__)
            return HTMLResponse(UNAVAILABLE, status_code=503, headers={"Cache-Control": "no-store"})
        return HTMLResponse(render_page(data), headers={"Cache-Control": "no-store"})

    @app.get("/csv/{name}")
    def export(name: str) -> Response:
        if name not in queries.LISTS:
            raise HTTPException(404, f"no list {name!r}; the lists are {', '.join(queries.LISTS)}")
        try:
            listing = queries.full_list(store(), name, datetime.now(UTC), ship_by_hours=ship_by_hours())
        except DBAPIError as exc:
            log.warning("Sales Channel page: cannot read the state store: %s", type(exc.orig).__name__)
            return Response("the state store cannot be read yet\n", status_code=503, media_type="text/plain")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return Response(
            csv_text(listing),
            media_type="text/csv; charset=utf-8",
            headers={
                "Cache-Control": "no-store",
                "Content-Disposition": f'attachment; filename="sales-channel-{name}-{stamp}.csv"',
            },
        )

    return app
