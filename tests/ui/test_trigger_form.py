"""amazon_order_cancel's trigger form, as the real Airflow API server serves it to the UI and answers its trigger.

Airflow 3.3's React form (``FlexibleForm``) builds each field from the Param the API serves (``/api/v2/dags/{id}/
details``: value, schema, description): the schema's ``title`` labels the field, the ``description`` is the help
text shown under it, and a field whose schema type does not admit ``null`` is required (``isParamRequired``:
shown with a star, and in red while empty). The form does not check patterns itself: the API server validates the
run's conf against the schemas when the run is triggered (400, shown in the form).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "amazon_order_cancel"
GOOD_ID = "123-1234567-1234567"


@pytest.fixture(scope="module")
def api(airflow_db):
    """The Airflow API server app with the cancel DAG parsed into the metadata database, and an admin's token."""
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()  # the dags-folder bundle, as dag.test() and the DAG processor make it
    bag = DagBag(dag_folder=str(ROOT / "dags" / f"{DAG_ID}.py"))
    assert bag.import_errors == {}
    sync_bag_to_db(bag, "dags-folder", None)
    client = TestClient(create_app())
    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="ops", role="admin"))
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def form_marks_required(schema: dict) -> bool:
    """Airflow 3.3 ``FlexibleForm/isParamRequired``."""
    kind = schema.get("type")
    return bool(kind) and not (isinstance(kind, list) and "null" in kind)


def test_the_form_opens_without_red_fields_and_says_what_an_order_id_looks_like(api):
    response = api.get(f"/api/v2/dags/{DAG_ID}/details")
    assert response.status_code == 200, response.text
    params = response.json()["params"]
    assert set(params) == {"amazon_order_ids", "commerce_order_numbers", "reason", "note", "dry_run", "account_id"}
    for name, param in params.items():
        assert not form_marks_required(param["schema"]), f"{name} opens in red / with a required star"
        assert param["schema"].get("title"), name
    assert params["dry_run"]["value"] is False
    assert "123-1234567-1234567" in params["amazon_order_ids"]["description"]
    assert "3-7-7 digits" in params["amazon_order_ids"]["description"]


def trigger(api, conf: dict):
    return api.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": conf})


def test_the_server_refuses_a_bad_id_naming_the_field(api):
    response = trigger(api, {"amazon_order_ids": ["123-45"], "reason": "BuyerCanceled"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Invalid input for param amazon_order_ids: '123-45'")


def test_the_server_refuses_a_run_without_a_reason(api):
    response = trigger(api, {"amazon_order_ids": [GOOD_ID]})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Invalid input for param reason: None is not one of")
