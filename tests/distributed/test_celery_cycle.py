"""The full cycle on Airflow's distributed executor: CeleryExecutor with two workers, PostgreSQL, Redis.

``make distributed`` runs this (not ``make test``'s default selection): it starts the api-server, scheduler,
dag-processor, triggerer and two Celery workers as separate processes (ops/cluster.py) against both sandboxes,
drives every DAG through Airflow's REST API, and reconciles the sandboxes against each other at the end.
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ops import merchant
from ops.cluster import Cluster, ClusterConfig
from ops.reconcile import Snapshot, reconcile

pytestmark = pytest.mark.distributed

CYCLE_DAGS = ("amazon_order_import", "amazon_shipment_sync", "amazon_refund_sync", "amazon_order_cancel")
IMPORT_AFTER = datetime.now(UTC) - timedelta(days=30)


@pytest.fixture(scope="module")
def cluster():
    config = ClusterConfig(name="distributed-test", workers=2, worker_concurrency=2, import_orders_after=IMPORT_AFTER)
    with Cluster(config) as running:
        yield running
        started = [pid for name in running.procs for pid in running.tree_pids(name)]
    assert started and not [pid for pid in started if _alive(pid)], "a process outlived the cluster"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is gone
    except (ProcessLookupError, FileNotFoundError):
        return False


def run(cluster: Cluster, *triggers: tuple[str, dict | None], timeout: float = 600) -> None:
    """Trigger DAG runs through the REST API (all at once) and wait until each succeeded."""
    runs = [(dag_id, cluster.trigger(dag_id, conf)) for dag_id, conf in triggers]
    states = cluster.wait_runs(runs, timeout=timeout)
    failed = {run: state for run, state in states.items() if state != "success"}
    if failed:
        details = {
            f"{dag_id}/{run_id}": [
                (ti["task_id"], ti["map_index"], ti["state"])
                for ti in cluster.task_instances(dag_id, run_id)
                if ti["state"] != "success"
            ]
            for dag_id, run_id in failed
        }
        pytest.fail(f"DAG runs did not succeed: {details}; logs in {cluster.home / 'logs'}")


def test_full_cycle_on_two_celery_workers(cluster):
    from sandboxes.amazon.generator import generate_orders

    rng = random.Random(2026)
    aged = (datetime.now(UTC) - timedelta(minutes=30)).timestamp()
    mfn = generate_orders(71, 24, aged, status="UNSHIPPED", fulfilled_by="MERCHANT")
    fba = generate_orders(72, 6, aged, status="SHIPPED", fulfilled_by="AMAZON")
    cluster.amazon("POST", "/_sandbox/orders", json={"orders": mfn + fba})
    cluster.unpause(*CYCLE_DAGS)

    # 1. import (the shipment sync follows on the asset the import updates)
    run(cluster, ("amazon_order_import", None))
    by_id = merchant.commerce_orders_by_amazon_id(cluster)
    assert set(by_id) == {o["orderId"] for o in mfn + fba}

    # 2. the merchant ships 8 orders in Commerce; Amazon ships 4 itself (Seller Central), which are then
    #    refunded in Commerce with 2 of the FBA orders; Amazon refunds one FBA order on its side
    merchant_shipments = {merchant.ship_in_commerce(cluster, by_id[o["orderId"]], rng) for o in mfn[:8]}
    for order in mfn[8:12]:
        merchant.amazon_event(cluster, order["orderId"], {"type": "ship"})
    amazon_refunded = fba[5]["orderId"]
    merchant.amazon_event(cluster, amazon_refunded, {"type": "refund"})
    run(cluster, ("amazon_order_import", None))
    run(cluster, ("amazon_shipment_sync", {"mismatch_grace_minutes": 0}))
    by_id = merchant.commerce_orders_by_amazon_id(cluster)
    merchant_memos = {merchant.credit_memo_in_commerce(cluster, by_id[o["orderId"]]) for o in mfn[8:12] + fba[:2]}
    assert None not in merchant_shipments | merchant_memos

    # 3. refunds, both ways: a first run submits the feed, the next one settles it once Amazon processed it
    run(cluster, ("amazon_refund_sync", None), ("amazon_shipment_sync", {"mismatch_grace_minutes": 0}))
    run(cluster, ("amazon_refund_sync", None))

    # 4. a cancellation, triggered through the REST API with its parameters
    cancelled = [o["orderId"] for o in mfn[20:22]]
    run(
        cluster,
        ("amazon_order_cancel", {"amazon_order_ids": cancelled, "reason": "BuyerCanceled", "note": "distributed test"}),
    )

    # 5. the sandboxes against each other
    report = reconcile(
        Snapshot.take(cluster),
        import_orders_after=IMPORT_AFTER.strftime("%Y-%m-%dT%H:%M:%SZ"),
        merchant_shipments=merchant_shipments,
        merchant_memos=merchant_memos,
        cancel_requests=set(cancelled),
    )
    assert report["orders"] == {"processed": 30, "duplicates": 0, "missing": 0, "wrong": 0, "examples": []}, report
    # 8 confirmed to Amazon + 4 shipped on Amazon's side + 6 FBA orders (no packages: one track-less shipment each)
    assert report["shipments"] == {"processed": 18, "duplicates": 0, "missing": 0, "wrong": 0, "examples": []}, report
    # 6 merchant credit memos sent as adjustments + 1 Amazon-side refund mirrored
    assert report["refunds"] == {"processed": 7, "duplicates": 0, "missing": 0, "wrong": 0, "examples": []}, report
    assert report["cancellations"] == {"processed": 2, "duplicates": 0, "missing": 0, "wrong": 0, "examples": []}, (
        report
    )
    assert report["amazon_429_rate_limit"] == 0, "the workers together went over Amazon's rate limits"
    assert report["amazon_requests"] > 50

    # every run of every DAG succeeded (asset-triggered ones included), on both workers
    for dag_id in CYCLE_DAGS:
        states = [r["state"] for r in cluster.dag_runs(dag_id)]
        assert states and set(states) == {"success"}, (dag_id, states)
    spread = cluster.worker_task_counts()
    assert all(count > 0 for count in spread.values()), f"tasks did not spread over both workers: {spread}"

    # the Sales Channel page, served by the API server over the PostgreSQL state store, for a signed-in user
    page = cluster.api_page("/sales-channel/")
    assert "Import lag" in page and "us-main" in page
