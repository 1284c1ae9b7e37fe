"""Every DAG imports, states its contract (STYLE.md §3), and parses fast with no work at parse time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from amazon_commerce_sync.constants import DAG_ORDER_IMPORT, DAG_REFUND_SYNC, SCHEDULE_SWITCHES
from amazon_commerce_sync.dag_defaults import ACCOUNT_MAP_INDEX, RETRY_POLICY

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS.glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(scope="module")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dag_files_exist():
    assert {p.stem for p in DAG_FILES} >= {"amazon_order_import", "sales_channel_healthcheck"}


def test_every_dag_imports(dagbag):
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dag_ids) == sorted(p.stem for p in DAG_FILES)


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_contract(dagbag, path):
    dag = dagbag.dags.get(path.stem)
    assert dag is not None, f"{path.name} must define the DAG {path.stem!r} (dag_id is the file name)"
    assert dag.doc_md and len(dag.doc_md.strip()) > 40
    assert dag.start_date is not None and dag.start_date.tzinfo is not None
    assert dag.catchup is False
    assert dag.max_active_runs >= 1
    assert "sales-channel" in dag.tags
    for t in dag.tasks:
        assert t.owner == "sales-channel", t.task_id
        callbacks = t.on_failure_callback if isinstance(t.on_failure_callback, list) else [t.on_failure_callback]
        assert any(type(c).__name__ == "FailureNotifier" for c in callbacks), f"{t.task_id}: no failure alert"
        assert t.execution_timeout is not None and t.execution_timeout <= timedelta(hours=2), t.task_id
        assert t.retry_delay is not None, t.task_id
        assert t.retries is not None, t.task_id
        assert t.retry_policy is RETRY_POLICY, f"{t.task_id}: fatal errors must fail at once"


@pytest.mark.parametrize(
    ("dag_id", "steps"),
    [(DAG_ORDER_IMPORT, ["extract", "load"]), (DAG_REFUND_SYNC, ["settle", "mirror", "queue", "submit", "reconcile"])],
)
def test_one_mapped_task_group_per_account(dagbag, dag_id, steps):
    """Each account's steps are mapped once, together (N accounts: N of each step, not N x N), in order,
    each instance named by its account."""
    from airflow.sdk.definitions.taskgroup import MappedTaskGroup

    dag = dagbag.dags[dag_id]
    group = dag.task_group_dict["account"]
    assert isinstance(group, MappedTaskGroup)
    tasks = [dag.get_task(f"account.{step}") for step in steps]
    assert sorted(group.children) == sorted(t.task_id for t in tasks)
    assert tasks[0].upstream_task_ids == {"accounts"}  # the group's input
    for before, after in zip(tasks, tasks[1:], strict=False):
        assert after.upstream_task_ids - {"accounts"} == {before.task_id}
    for task in tasks:
        assert task.map_index_template == ACCOUNT_MAP_INDEX
        assert "account_id" in task.op_kwargs, "pass account_id by keyword, or the instance has no name"


@pytest.mark.parametrize("dag_id", sorted(SCHEDULE_SWITCHES))
def test_schedule_switch(dag_id, airflow_db, monkeypatch):
    """A cron from the switch; ``none`` leaves only manual triggers (and the shipment sync's asset)."""
    from airflow.dag_processing.dagbag import DagBag

    assert f'"{SCHEDULE_SWITCHES[dag_id]}"' in (DAGS / f"{dag_id}.py").read_text()

    def timetable_with(value: str):
        monkeypatch.setenv(SCHEDULE_SWITCHES[dag_id], value)
        bag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"))
        assert bag.import_errors == {}
        return bag.dags[dag_id].timetable

    assert "expression='7 * * * *'" in repr(timetable_with("7 * * * *"))
    off = timetable_with(" None ")
    on_asset = ("amazon_shipment_sync", "amazon_order_events")  # they also run on their asset
    expected = "AssetTriggeredTimetable" if dag_id in on_asset else "NullTimetable"
    assert type(off).__name__ == expected


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_what_the_ui_shows(dagbag, path):
    """The DAG list shows a one-line description; the trigger form shows each Param's title; every mapped
    task instance is named by its account (``map_index_template`` rendering ``account_id``)."""
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    dag = dagbag.dags[path.stem]
    assert dag.description and "\n" not in dag.description and len(dag.description) <= 100, dag.description
    for name in dag.params:
        assert dag.params.get_param(name).schema.get("title"), f"{dag.dag_id}: param {name} has no title"
    for task in dag.tasks:
        if isinstance(task, MappedOperator) and not hasattr(task, "op_kwargs_expand_input"):
            # a classic operator mapped over requests (the import's decision triggers): named by what it maps
            assert task.map_index_template, f"{dag.dag_id}.{task.task_id}: instances not named"
            continue
        if isinstance(task, MappedOperator):
            names = set(task.op_kwargs_expand_input.value)  # a TaskFlow .expand(): its keyword arguments
        elif task.get_closest_mapped_task_group() is not None:
            names = set(task.op_kwargs)
        else:
            continue
        assert task.map_index_template == ACCOUNT_MAP_INDEX, f"{dag.dag_id}.{task.task_id}: instances not named"
        assert "account_id" in names, f"{dag.dag_id}.{task.task_id}: account_id not passed by keyword"


@pytest.mark.parametrize(("queue_url", "expected"), [(None, "*/5 * * * *"), ("http://sqs/1/q", "*/15 * * * *")])
def test_the_import_is_the_sweep_when_the_event_path_is_on(queue_url, expected, airflow_db, monkeypatch):
    """Without ORDER_CHANGE notifications the import runs every 5 minutes; with them (the queue configured) it is
    the reconciling sweep behind amazon_order_events, every 15 (issue 16)."""
    from airflow.dag_processing.dagbag import DagBag

    from amazon_commerce_sync.constants import ORDER_CHANGE_QUEUE_ENV

    monkeypatch.delenv(SCHEDULE_SWITCHES[DAG_ORDER_IMPORT], raising=False)
    if queue_url:
        monkeypatch.setenv(ORDER_CHANGE_QUEUE_ENV, queue_url)
    else:
        monkeypatch.delenv(ORDER_CHANGE_QUEUE_ENV, raising=False)
    bag = DagBag(dag_folder=str(DAGS / f"{DAG_ORDER_IMPORT}.py"))
    assert f"expression={expected!r}" in repr(bag.dags[DAG_ORDER_IMPORT].timetable)
