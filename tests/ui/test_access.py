"""Who may see the Sales Channel page and who may act (cancel an order, answer a buyer-cancellation decision).

The real Airflow API server app (``airflow.api_fastapi.app.create_app``) with this repository's plugins folder, with
the Simple auth manager as `make run` configures it (``[core] simple_auth_manager_users``, "name:role" pairs) and with
the FAB auth manager of docker-compose.yaml, users signing in through the auth manager's own ``POST /auth/token``.
The page follows Airflow's permission to read the Sales Channel DAGs' runs (ui/access.py); acting goes through
Airflow's own API, whose checks are asserted here too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amazon_commerce_sync.constants import DAG_CANCEL_DECISION, DAG_ORDER_CANCEL, DAG_ORDER_IMPORT
from amazon_commerce_sync.ui.access import FORBIDDEN

from .conftest import airflow_api_server

ROOT = Path(__file__).resolve().parents[2]
# "nora:" is configured without a role: signed in, allowed nothing.
USERS = {"nora": "", "vic": "viewer", "uma": "user", "ada": "admin"}
CANCEL_CONF = {"amazon_order_ids": ["171-0000000-0000001"], "reason": "NoInventory"}


@pytest.fixture
def airflow_api(airflow_db, small_store, monkeypatch, tmp_path):
    """A TestClient of the Airflow API server app (plugins loaded, the Simple auth manager with USERS) and a
    ``token(name)`` that signs a user in with their password."""
    passwords = {name: f"pw-{name}-{n}" for n, name in enumerate(USERS)}
    password_file = tmp_path / "passwords.json"
    password_file.write_text(json.dumps(passwords))
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", ",".join(f"{u}:{r}" for u, r in USERS.items()))
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(password_file))
    with airflow_api_server(monkeypatch, small_store.store) as client:

        def token(name: str) -> dict[str, str]:
            response = client.post("/auth/token", json={"username": name, "password": passwords[name]})
            assert response.status_code == 201, response.text
            return {"Authorization": f"Bearer {response.json()['access_token']}"}

        yield client, token


def parse_the_cancel_dag() -> None:
    """amazon_order_cancel in the metadata database, as the dag-processor writes it (so it can be triggered)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=str(ROOT / "dags" / f"{DAG_ORDER_CANCEL}.py"))
    assert bag.import_errors == {}
    sync_bag_to_db(bag, "dags-folder", None)


def test_the_page_needs_permission_to_read_the_sales_channel_dag_runs(airflow_api, small_store):
    client, token = airflow_api
    order = small_store.waiting_ids[0]

    assert client.get("/sales-channel/").status_code == 401
    refused = client.get("/sales-channel/", headers=token("nora"))
    assert refused.status_code == 403 and refused.json()["detail"] == FORBIDDEN
    assert order not in refused.text
    # the CSV export of every list is behind the same check
    assert client.get("/sales-channel/csv/waiting_product").status_code == 401
    refused_csv = client.get("/sales-channel/csv/waiting_product", headers=token("nora"))
    assert refused_csv.status_code == 403 and order not in refused_csv.text
    # the same verdict as Airflow's own list of the DAG's runs
    assert client.get(f"/api/v2/dags/{DAG_ORDER_IMPORT}/dagRuns", headers=token("nora")).status_code == 403

    for name in ("vic", "uma", "ada"):
        page = client.get("/sales-channel/", headers=token(name))
        assert page.status_code == 200, name
        assert order in page.text
    assert order in client.get("/sales-channel/csv/waiting_product", headers=token("vic")).text
    # a viewer passes Airflow's check (200, or 404 where this metadata database never parsed the DAG)
    assert client.get(f"/api/v2/dags/{DAG_ORDER_IMPORT}/dagRuns", headers=token("vic")).status_code in (200, 404)


def test_a_viewer_cannot_trigger_the_cancel_dag_and_a_user_can(airflow_api):
    client, token = airflow_api
    parse_the_cancel_dag()
    body = {"logical_date": None, "conf": {**CANCEL_CONF, "dry_run": True}}
    url = f"/api/v2/dags/{DAG_ORDER_CANCEL}/dagRuns"

    assert client.post(url, json=body, headers=token("nora")).status_code == 403
    assert client.post(url, json=body, headers=token("vic")).status_code == 403
    triggered = client.post(url, json=body, headers=token("uma"))
    assert triggered.status_code == 200, triggered.text
    run_id = triggered.json()["dag_run_id"]
    assert client.delete(f"{url}/{run_id}", headers=token("ada")).status_code == 204  # leave no queued run behind


def test_a_viewer_cannot_answer_a_buyer_cancellation_decision(airflow_api):
    client, token = airflow_api
    url = f"/api/v2/dags/{DAG_CANCEL_DECISION}/dagRuns/no-such-run/taskInstances/decide/-1/hitlDetails"
    answer = {"chosen_options": ["Cancel"], "params_input": {}}

    assert client.patch(url, json=answer, headers=token("vic")).status_code == 403
    # a user passes the permission check and only then learns there is no such task
    assert client.patch(url, json=answer, headers=token("uma")).status_code == 404


# -- the FAB auth manager of docker-compose.yaml --------------------------------------------------------------------
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
FAB_USERS = {"pablo": "Public", "vera": "Viewer", "ulla": "User"}  # Public: FAB's role without permissions


@pytest.fixture
def fab_airflow_api(airflow_db, small_store, monkeypatch):
    """The API server app with the FAB auth manager, its tables migrated and FAB_USERS created as FAB's own CLI does
    (`airflow fab-db migrate`, `airflow users create`), and a ``token(name)`` signing in through FAB's
    ``POST /auth/token``."""
    from airflow import settings
    from airflow.api_fastapi.app import purge_cached_app
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
    from airflow.providers.fab.auth_manager.models.db import FABDBManager

    monkeypatch.setenv("AIRFLOW__CORE__AUTH_MANAGER", FAB_AUTH_MANAGER)
    FABDBManager(settings.Session()).initdb()  # what `airflow fab-db migrate` runs
    with get_application_builder() as appbuilder:  # what `airflow users create` runs
        for name, role in FAB_USERS.items():
            if not appbuilder.sm.find_user(username=name):
                fab_role = appbuilder.sm.find_role(role)
                assert appbuilder.sm.add_user(name, name, role, f"{name}@example.com", fab_role, password=f"pw-{name}")
    with airflow_api_server(monkeypatch, small_store.store) as client:

        def token(name: str) -> dict[str, str]:
            response = client.post("/auth/token", json={"username": name, "password": f"pw-{name}"})
            assert response.status_code == 201, response.text
            return {"Authorization": f"Bearer {response.json()['access_token']}"}

        try:
            yield client, token
        finally:
            purge_cached_app()  # later tests get the Simple auth manager back, not this FAB one


def test_with_the_fab_auth_manager_the_public_role_gets_403_viewer_sees_and_only_user_triggers(fab_airflow_api):
    from airflow.api_fastapi.app import get_auth_manager

    client, token = fab_airflow_api
    assert type(get_auth_manager()).__name__ == "FabAuthManager"

    refused = client.get("/sales-channel/", headers=token("pablo"))
    assert refused.status_code == 403 and refused.json()["detail"] == FORBIDDEN
    assert client.get("/sales-channel/", headers=token("vera")).status_code == 200
    assert client.get("/sales-channel/", headers=token("ulla")).status_code == 200

    parse_the_cancel_dag()
    url = f"/api/v2/dags/{DAG_ORDER_CANCEL}/dagRuns"
    body = {"logical_date": None, "conf": {**CANCEL_CONF, "dry_run": True}}
    assert client.post(url, json=body, headers=token("vera")).status_code == 403
    triggered = client.post(url, json=body, headers=token("ulla"))
    assert triggered.status_code == 200, triggered.text
    run = f"{url}/{triggered.json()['dag_run_id']}"
    assert client.delete(run, headers=token("vera")).status_code == 403
    assert client.delete(run, headers=token("ulla")).status_code == 204  # leave no queued run behind
