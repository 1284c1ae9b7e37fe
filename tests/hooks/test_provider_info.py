"""The package as an Airflow provider: its connection types reach the connection form with their own labels.

The package is registered through the ``apache_airflow_provider`` entry point (pyproject.toml). Here the
distribution's metadata is written to a temporary folder (the same two files ``pip install`` writes), so Airflow's
own discovery (``ProvidersManager``) and the API server's ``/ui/connections/hook_meta`` service run as they do in
a deployment, in a fresh interpreter, without installing anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from amazon_commerce_sync import provider_info

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

PROBE = r"""
import json, logging, warnings
warnings.simplefilter("ignore")
from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
from airflow.providers_manager import ProvidersManager

class Keep(logging.Handler):
    def emit(self, record):
        records.append(record.getMessage())


records = []
logging.getLogger("airflow.providers_manager").addHandler(Keep())
manager = ProvidersManager()
meta = {m.connection_type: m.model_dump() for m in HookMetaService.hook_meta_data()}
names = ("amazon_sp_api", "adobe_commerce")
hooks = {t: [manager.hooks[t].hook_class_name, manager.hooks[t].connection_type] for t in names}
print(json.dumps({
    "provider": "amazon-commerce-sync" in manager.providers,
    "meta": {t: meta.get(t) for t in ("amazon_sp_api", "adobe_commerce")},
    "hooks": hooks,
    "problems": [r for r in records if "Inconsisten" in r or "Failed" in r],
}))
"""


def test_the_entry_point_names_get_provider_info():
    entry = PYPROJECT["project"]["entry-points"]["apache_airflow_provider"]
    assert entry == {"provider_info": "amazon_commerce_sync.provider_info:get_provider_info"}
    assert provider_info.get_provider_info()["package-name"] == PYPROJECT["project"]["name"]


def test_provider_info_is_valid_for_airflow():
    from airflow.providers_manager import _create_provider_info_schema_validator

    _create_provider_info_schema_validator().validate(provider_info.get_provider_info())


def test_hook_classes_declare_the_connection_types():
    from amazon_commerce_sync.hooks.amazon import AmazonSpApiHook
    from amazon_commerce_sync.hooks.commerce import CommerceHook

    types = {c["connection-type"]: c for c in provider_info.get_provider_info()["connection-types"]}
    for hook in (AmazonSpApiHook, CommerceHook):
        entry = types[hook.conn_type]
        assert entry["hook-class-name"] == f"{hook.__module__}.{hook.__name__}"
        assert entry["hook-name"] == hook.hook_name
        assert "get_connection_form_widgets" not in hook.__dict__  # deprecated since Airflow 3.2
        assert "get_ui_field_behaviour" not in hook.__dict__


@pytest.fixture
def registered(tmp_path) -> Path:
    """The distribution's metadata as ``pip install -e .`` writes it (METADATA and entry_points.txt)."""
    info = tmp_path / "site" / "amazon_commerce_sync-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {PYPROJECT['project']['name']}\nVersion: 0.1.0\n")
    lines = [f"{k} = {v}" for k, v in PYPROJECT["project"]["entry-points"]["apache_airflow_provider"].items()]
    (info / "entry_points.txt").write_text("[apache_airflow_provider]\n" + "\n".join(lines) + "\n")
    return info.parent


def test_the_connection_form_shows_our_labels(registered, tmp_path):
    paths = [str(registered), str(ROOT / "include"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), "AIRFLOW_HOME": str(tmp_path / "home")}
    run = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["provider"] and not found["problems"], found
    assert found["hooks"] == {
        "amazon_sp_api": ["amazon_commerce_sync.hooks.amazon.AmazonSpApiHook", "amazon_sp_api"],
        "adobe_commerce": ["amazon_commerce_sync.hooks.commerce.CommerceHook", "adobe_commerce"],
    }
    amazon, commerce = found["meta"]["amazon_sp_api"], found["meta"]["adobe_commerce"]
    assert amazon["hook_name"] == "Amazon Selling Partner API"
    standard = amazon["standard_fields"]
    assert (standard["login"]["title"], standard["password"]["title"]) == ("LWA client id", "LWA client secret")
    assert standard["host"]["placeholder"] == "https://sellingpartnerapi-na.amazon.com"
    assert standard["port"]["hidden"] and standard["url_schema"]["hidden"]
    refresh = amazon["extra_fields"]["refresh_token"]
    assert refresh["schema"]["title"] == "LWA refresh token" and refresh["schema"]["format"] == "password"
    extra = commerce["extra_fields"]
    assert extra["store_code"]["schema"]["title"] == "Store code"
    assert extra["auth"]["schema"]["title"] == "Auth mode"
    assert extra["auth"]["schema"]["enum"] == ["admin", "bearer", "oauth1"]
    assert all(extra[k]["schema"]["format"] == "password" for k in ("consumer_secret", "access_token_secret"))
    assert commerce["standard_fields"]["host"]["title"] == "Store base URL"
