"""Light parsing: each DAG file, run cold in a fresh interpreter, loads nothing heavy and does nothing.

The DAG processor re-parses every file every ``min_file_process_interval``: a DAG file may import only
``airflow.sdk`` (Airflow loads it anyway), two standard-provider operators (trigger, human in the loop),
``pendulum`` and the standard library, and from this package only ``constants``, ``dag_defaults``,
``dag_after_loads`` and ``decision_operator`` (which import nothing heavy themselves). Task bodies import the
rest when they run. Each file is run in its own interpreter, so nothing is warm from other tests.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted(p for p in (ROOT / "dags").glob("*.py") if not p.name.startswith("_"))
PACKAGE = ROOT / "include" / "amazon_commerce_sync"

#: What a DAG file may import at module level (its task bodies import the pipelines when they run).
DAG_FILE_IMPORTS = {
    "__future__",
    "datetime",
    "os",
    "pendulum",
    "airflow.sdk",
    "airflow.providers.standard.operators.trigger_dagrun",
    "amazon_commerce_sync.constants",
    "amazon_commerce_sync.dag_defaults",
    "amazon_commerce_sync.dag_after_loads",
    "amazon_commerce_sync.decision_operator",
    # The ORDER_CHANGE watcher's trigger (amazon_order_events): an AssetWatcher needs the instance at parse time;
    # the module imports the standard library and airflow.triggers.base only (the Amazon provider in run()).
    "amazon_commerce_sync.events",
}
#: The package modules loaded by parsing: the ones above, and the two whose exceptions the retry policy names.
LIGHT_MODULES = {
    "amazon_commerce_sync",
    "amazon_commerce_sync.constants",
    "amazon_commerce_sync.dag_defaults",
    "amazon_commerce_sync.dag_after_loads",
    "amazon_commerce_sync.decision_operator",
    "amazon_commerce_sync.events",
    "amazon_commerce_sync.errors",
    "amazon_commerce_sync.settings",
    # The package is an Airflow provider (its connection types): Airflow's providers manager reads this dict of
    # metadata when a DAG's assets are normalised. It imports nothing.
    "amazon_commerce_sync.provider_info",
}
#: Never loaded by parsing a DAG file (Airflow itself loads none of them before parsing).
NEVER = ("alembic", "requests", "requests_oauthlib", "oauthlib", "defusedxml", "psycopg2")
#: Not loaded by the DAG file beyond what ``import airflow.sdk`` loaded already. SQLAlchemy is not listed:
#: ``import airflow`` loads it and Airflow's asset definitions load more of it; the state store, the
#: package's one SQLAlchemy user, is checked by module name.
NOT_NEW = ("urllib3", "tenacity", "jsonschema", "psycopg2")
#: CPU seconds a file may take, cold, once airflow.sdk is loaded (CPU time: the test machine is shared). The
#: files take 0.06-0.25 s, most of it Airflow's own decorators; the cancel DAG took 0.35-0.45 s when it loaded
#: the state store and the hooks. The bound is against work at parse time; heavy imports are caught by name.
DAG_CPU_SECONDS = 1.0

PROBE = r"""
import ast, json, socket, sys, time

path = sys.argv[1]
started, started_cpu = time.perf_counter(), time.process_time()
import airflow.sdk  # loaded in the DAG processor before any file is parsed

# The airflow.sdk names the file imports are lazy attributes: load them now, they are Airflow's cost.
for node in ast.parse(open(path, encoding="utf-8").read()).body:
    if isinstance(node, ast.ImportFrom) and node.module == "airflow.sdk":
        for alias in node.names:
            getattr(airflow.sdk, alias.name)
airflow_loaded, airflow_loaded_cpu = time.perf_counter(), time.process_time()
before = set(sys.modules)


def no_network(*args, **kwargs):
    raise AssertionError("a DAG file opened a network connection at parse time")


socket.socket.connect = socket.socket.connect_ex = no_network
import runpy

runpy.run_path(path, run_name="dag_file")
done, done_cpu = time.perf_counter(), time.process_time()
print(json.dumps({
    "airflow_seconds": airflow_loaded - started, "airflow_cpu_seconds": airflow_loaded_cpu - started_cpu,
    "dag_seconds": done - airflow_loaded, "dag_cpu_seconds": done_cpu - airflow_loaded_cpu,
    "new_modules": sorted(set(sys.modules) - before), "modules": sorted(sys.modules),
}))
"""


def _parse_cold(path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "include")])}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)], env=env, capture_output=True, text=True, timeout=180, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _module_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
    return names


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_dag_file_imports_only_airflow_sdk_and_the_light_modules(path):
    assert _module_imports(path) <= DAG_FILE_IMPORTS, _module_imports(path) - DAG_FILE_IMPORTS


def test_dag_defaults_and_constants_import_only_airflow_sdk_and_each_other():
    allowed = {"__future__", "os", "datetime", "typing", "airflow.sdk", "amazon_commerce_sync.constants"}
    assert _module_imports(PACKAGE / "dag_defaults.py") <= allowed
    assert _module_imports(PACKAGE / "constants.py") == {"__future__"}
    hitl = {"__future__", "datetime", "typing", "airflow.providers.standard.operators.hitl", "airflow.sdk.timezone"}
    assert _module_imports(PACKAGE / "decision_operator.py") <= hitl
    after_loads = {
        "__future__",
        "typing",
        "airflow.sdk",
        "airflow.providers.standard.operators.trigger_dagrun",
        "amazon_commerce_sync.constants",
    }
    assert _module_imports(PACKAGE / "dag_after_loads.py") <= after_loads


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_cold_parse_is_light_fast_and_offline(path):
    parsed = _parse_cold(path)
    package = {m for m in parsed["modules"] if m.split(".")[0] == "amazon_commerce_sync"}
    assert package <= LIGHT_MODULES, f"{path.name} loads {sorted(package - LIGHT_MODULES)} at parse time"
    heavy = sorted(m for m in parsed["modules"] if m.split(".")[0] in NEVER)
    heavy += sorted(m for m in parsed["new_modules"] if m.split(".")[0] in NOT_NEW)
    assert not heavy, f"{path.name} loads {heavy[:10]} at parse time"
    assert parsed["dag_cpu_seconds"] < DAG_CPU_SECONDS, (
        f"{path.name} took {parsed['dag_cpu_seconds']:.3f} CPU s ({parsed['dag_seconds']:.3f} s) to parse cold "
        f"after airflow.sdk ({parsed['airflow_cpu_seconds']:.1f} CPU s); new modules: {parsed['new_modules']}"
    )
