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

from tests.ui.test_page_in_browser import CHROMIUM_FLAGS, chromium  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "amazon_order_cancel"
GOOD_ID = "123-1234567-1234567"
EXPECTED = "an Amazon order id: 3-7-7 digits, like 123-1234567-1234567"


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
    detail = response.json()["detail"]
    assert detail.startswith(f"Invalid input for param amazon_order_ids: '{EXPECTED}' was expected"), detail
    assert "\\d" not in detail and "does not match" not in detail  # no regular expression for the user to decode


def test_the_server_refuses_a_run_without_a_reason(api):
    response = trigger(api, {"amazon_order_ids": [GOOD_ID]})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Invalid input for param reason: None is not one of")


def test_the_form_in_a_browser_names_what_an_order_id_looks_like(api, chromium, tmp_path):  # noqa: F811
    """Headless Chromium on the real UI: the form opens with nothing red and no required star, shows what an order
    id looks like under the field; a bad id typed in is refused in the form with that sentence, not a regex."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    from sandboxes.server import serve_in_thread
    from tests.ui.cdp import Browser

    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="ops", role="admin"))
    flags = [f for f in CHROMIUM_FLAGS if f != "--headless"] + ["--headless=new"]
    field = "document.getElementById('element_amazon_order_ids')"
    form = f"{field}.closest('[role=dialog]')"
    with serve_in_thread(api.app) as base_url:
        browser = Browser(chromium, flags, tmp_path / "profile")
        try:
            browser.call("Network.setCookie", page=True, name="_token", value=token, url=base_url)  # signed in
            browser.call("Page.navigate", page=True, url=f"{base_url}/dags/{DAG_ID}")
            trigger_button = "[...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Trigger')"
            browser.wait_for(f"!!{trigger_button}", 90)
            browser.js(f"{trigger_button}.click()")
            browser.wait_for(f"!!{field}", 30)
            opened = browser.js(f"{form}.innerText")
            browser.screenshot(tmp_path / "form_open.png")
            assert "Amazon order ids" in opened and "Cancel reason" in opened and "Dry run" in opened
            assert "123-1234567-1234567" in opened  # the help text under the field
            assert "This field is required" not in opened
            stars = ".chakra-field__requiredIndicator, [data-part=label][data-required]"  # a required field's label
            assert browser.js(f"{form}.querySelectorAll('{stars}').length") == 0

            browser.js(f"{field}.focus()")
            browser.type_text("123-45")
            browser.js(
                f"[...{form}.querySelectorAll('button')].filter(b => b.innerText.trim() === 'Trigger').pop().click()"
            )
            refused = browser.wait_for(f"{form}.innerText.includes('was expected') && {form}.innerText", 30)
            shot = browser.screenshot(tmp_path / "form_refused.png")
        finally:
            browser.close()
    assert f"Invalid input for param amazon_order_ids: '{EXPECTED}' was expected" in refused
    assert "does not match" not in refused and "\\d{3}" not in refused
    assert shot.read_bytes().startswith(b"\x89PNG")
