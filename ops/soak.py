"""``make soak``: the distributed topology under faults for a while, then a reconciliation report.

    .venv/bin/python -m ops.soak [--minutes 15] [--seed 7] [--report benchmarks/results/soak]

1. Starts the cluster of ops/cluster.py (CeleryExecutor, two workers, PostgreSQL, Redis) with the Amazon sandbox
   in live mode (new orders and Amazon-side events: payments, buyer cancellation requests, Amazon cancellations,
   FBA shipments, Amazon refunds) and every DAG unpaused on a short schedule.
2. For ``--minutes``: faults on in both sandboxes (5xx, injected 429s, dropped connections, latency, Commerce
   commit-then-fail); a merchant ships orders and refunds shipped ones in Commerce; a cancellation is triggered
   through the REST API every few minutes; a Celery worker is SIGKILLed (with its running tasks) at random and
   restarted; memory of the scheduler and workers is sampled.
3. Faults and live mode off, then a drain: the schedules keep running until the sandboxes reconcile or the drain
   time is up (Amazon's 2-minute rule and Finances' delay mean the last changes need a few minutes).
4. Reconciles both sandboxes against each other (ops/reconcile.py), adds what the state store and Airflow say
   (stuck records, retries, failed runs), prints the report and writes ``<report>.md`` and ``<report>.json``.
   Exits 1 when anything is duplicated, lost or stuck.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import signal
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from ops import merchant
from ops.cluster import DAG_IDS, ROOT, Cluster, ClusterConfig
from ops.reconcile import Snapshot, reconcile

log = logging.getLogger("soak")

SPEED = 10.0  # Amazon sandbox speed: rate limits x10, feed processing 3 s a stage
LIVE_TICK_SECONDS = 8.0  # 2 new orders and 3 Amazon-side events a tick
SCHEDULES = {
    "amazon_order_import": "* * * * *",
    "amazon_shipment_sync": "*/2 * * * *",
    "amazon_refund_sync": "*/2 * * * *",
    "sales_channel_monitor": "*/5 * * * *",
    "amazon_pii_retention": "0 * * * *",
}
AMAZON_FAULTS = {"error_rate": 0.06, "throttle_rate": 0.06, "drop_rate": 0.02, "latency_ms": 40}
COMMERCE_FAULTS = {"error_rate": 0.04, "drop_rate": 0.02, "commit_then_fail_rate": 0.04, "latency_ms": 30}
STUCK_SYNC = ("waiting", "waiting_product", "quarantined")
KINDS = ("orders", "shipments", "refunds", "cancellations")  # the records reconcile() counts


class Soak:
    def __init__(self, minutes: float, seed: int, drain_minutes: float):
        self.minutes = minutes
        self.drain_minutes = drain_minutes
        self.rng = random.Random(seed)
        self.import_after = datetime.now(UTC) - timedelta(minutes=1)
        self.cluster = Cluster(
            ClusterConfig(
                name="soak",
                workers=2,
                worker_concurrency=2,
                amazon_speed=SPEED,
                amazon_live=True,
                amazon_live_interval=LIVE_TICK_SECONDS * SPEED,
                amazon_seed=seed,
                schedules=dict(SCHEDULES),
                feed_poke_seconds=5,
                import_orders_after=self.import_after,
                extra_env={
                    # a killed worker's tasks are noticed within a minute and retried, not after the default 5
                    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
                    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "180",
                },
            )
        )
        self.merchant_shipments: set[int] = set()
        self.merchant_memos: set[int] = set()
        self.cancel_requests: set[str] = set()
        self.cancel_runs: list[tuple[str, str]] = []
        self.kills: list[str] = []
        self.idle_pids: dict[int, int] = {}
        self.peak_mb: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self._stop = threading.Event()

    # -- what happens around the integration -------------------------------------------------------
    def merchant_step(self) -> None:
        """Ship up to three paid, unshipped orders; refund one Amazon shows shipped; now and then cancel one."""
        amazon = {o["orderId"]: o for o in self.cluster.amazon("GET", "/_sandbox/orders")["orders"]}
        commerce = merchant.commerce_orders_by_amazon_id(self.cluster)
        unshipped = [
            c
            for oid, c in commerce.items()
            if c["state"] == "processing"
            and oid in amazon
            and oid not in self.cancel_requests
            and amazon[oid]["fulfillment"].get("fulfilledBy") == "MERCHANT"
            and amazon[oid]["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
            and not amazon[oid].get("buyerRequestedCancel")
            and merchant.remaining(c, "qty_shipped")
        ]
        to_ship = self.rng.sample(unshipped, min(3, len(unshipped)))
        for order in to_ship:
            shipment_id = merchant.ship_in_commerce(self.cluster, order, self.rng)
            if shipment_id:
                self.merchant_shipments.add(shipment_id)
        refunded_on_amazon = {r["orderId"] for r in self.cluster.amazon("GET", "/_sandbox/refunds")["refunds"]}
        shipped = [
            c
            for oid, c in commerce.items()
            if oid in amazon
            and amazon[oid]["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
            and oid not in refunded_on_amazon
            and not any(_positive(i.get("qty_refunded")) for i in c["items"])
        ]
        if shipped and self.rng.random() < 0.6:
            memo_id = merchant.credit_memo_in_commerce(self.cluster, self.rng.choice(shipped))
            if memo_id:
                self.merchant_memos.add(memo_id)
        cancellable = [o for o in unshipped if o not in to_ship]
        if cancellable and self.rng.random() < 0.25:
            oid = self.rng.choice(cancellable)["ext_order_id"]
            run_id = self.cluster.trigger(
                "amazon_order_cancel", {"amazon_order_ids": [oid], "reason": "NoInventory", "note": "soak"}
            )
            self.cancel_requests.add(oid)
            self.cancel_runs.append(("amazon_order_cancel", run_id))

    def chaos_step(self) -> None:
        """SIGKILL one Celery worker (and the tasks it runs), then start it again a few seconds later.

        It waits up to a minute for a worker to be running a task (more processes below it than when idle)
        and kills that one, so that the kill lands mid-task; otherwise it kills one at random."""
        workers = list(range(1, self.cluster.config.workers + 1))
        deadline, busy = time.monotonic() + 60, None
        while busy is None and time.monotonic() < deadline:
            busy = next((n for n in workers if len(self.cluster.tree_pids(f"worker{n}")) > self.idle_pids[n]), None)
            time.sleep(0.2)
        n = busy or self.rng.choice(workers)
        log.info("killing worker%s (%s)", n, "running a task" if busy else "idle")
        self.cluster.kill(f"worker{n}")
        self.kills.append(f"worker{n} at {datetime.now(UTC):%H:%M:%S}, {'mid-task' if busy else 'idle'}")
        time.sleep(self.rng.uniform(3, 12))
        self.cluster.start_worker(n)

    def sample_memory(self) -> None:
        for name in ("scheduler", "worker1", "worker2", "api-server", "dag-processor", "triggerer"):
            if name in self.cluster.procs and self.cluster.procs[name].poll() is None:
                self.peak_mb[name] = max(self.peak_mb[name], self.cluster.tree_rss_mb(name))

    def _sampler(self) -> None:
        while not self._stop.wait(5):
            try:
                self.sample_memory()
            except Exception:  # noqa: BLE001 - a process that just ended
                self.errors["memory sample"] += 1

    # -- phases ------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        started = datetime.now(UTC)
        cluster = self.cluster
        cluster.start()
        time.sleep(5)  # the workers settle: their idle process count is the baseline of chaos_step
        self.idle_pids = {n: len(cluster.tree_pids(f"worker{n}")) for n in range(1, cluster.config.workers + 1)}
        sampler = threading.Thread(target=self._sampler, daemon=True)
        sampler.start()
        try:
            cluster.unpause(*DAG_IDS)
            cluster.amazon("POST", "/_sandbox/faults", json=AMAZON_FAULTS)
            cluster.commerce("POST", "/_sandbox/faults", json=COMMERCE_FAULTS)
            log.info("soak: %s minutes under faults (%s)", self.minutes, cluster.api_url)
            end = time.monotonic() + self.minutes * 60
            next_kill = time.monotonic() + self.rng.uniform(60, 180)
            while time.monotonic() < end:
                try:
                    self.merchant_step()
                except Exception as exc:  # noqa: BLE001 - the soak goes on; counted in the report
                    self.errors[f"merchant: {type(exc).__name__}"] += 1
                    log.warning("merchant step failed: %s", exc)
                if time.monotonic() > next_kill:
                    self.chaos_step()
                    next_kill = time.monotonic() + self.rng.uniform(90, 240)
                time.sleep(20)
            # the end of the storm: no new Amazon activity, no faults; let the schedules catch up
            cluster.amazon("POST", "/_sandbox/settings", json={"live_interval_seconds": 1e9})
            cluster.amazon("POST", "/_sandbox/faults", json={})
            cluster.commerce("POST", "/_sandbox/faults", json={})
            soaked = datetime.now(UTC)
            report = self.drain()
            drained = round((datetime.now(UTC) - soaked).total_seconds() / 60, 1)
            report["timing"] = {
                "started": f"{started:%Y-%m-%d %H:%M} UTC",
                "soak_minutes": self.minutes,
                "drain_minutes": drained,
            }
            return report
        finally:
            self._stop.set()
            cluster.stop()

    def drain(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.drain_minutes * 60
        time.sleep(180)  # past Amazon's 2-minute rule and Finances' 3-minute delay for the last changes
        while True:
            report = self.report()
            settled = not report["lost_or_stuck"] and not report["airflow"]["runs_in_flight"]
            if settled or time.monotonic() > deadline:
                report["settled"] = settled
                return report
            log.info("draining: %s lost or stuck so far", len(report["lost_or_stuck"]))
            time.sleep(30)

    def report(self) -> dict[str, Any]:
        cluster = self.cluster
        outbox, stuck_orders, reported = self.state_store()
        result = reconcile(
            Snapshot.take(cluster),
            import_orders_after=self.import_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
            merchant_shipments=self.merchant_shipments,
            merchant_memos=self.merchant_memos,
            cancel_requests=self.cancel_requests,
            outbox=outbox,
            reported=reported,
        )
        runs = {dag_id: cluster.dag_runs(dag_id) for dag_id in DAG_IDS}
        tries = Counter()
        for dag_id, dag_runs in runs.items():
            for run in dag_runs:
                for ti in cluster.task_instances(dag_id, run["dag_run_id"]):
                    tries["task instances"] += 1
                    tries["task retries"] += max(0, (ti.get("try_number") or 1) - 1)
        in_flight = sum(1 for rs in runs.values() for r in rs if r["state"] in ("queued", "running"))
        pending_outbox = [k for k, (status, _) in outbox.items() if status in ("pending", "submitted")]
        lost_or_stuck = [
            *(f"{kind}: {e}" for kind in KINDS for e in result[kind].get("missing_records", [])),
            *(f"state store: {oid} {status}" for oid, status in stuck_orders),
            *(f"outbox: {key} still {outbox[key][0]}" for key in pending_outbox),
        ]
        duplicates = sum(result[kind]["duplicates"] for kind in KINDS)
        return {
            **result,
            "duplicates": duplicates,
            "lost_or_stuck": lost_or_stuck,
            "hook_retries_logged": self.logged_retries(),
            "airflow": {
                "runs": {dag_id: dict(Counter(r["state"] for r in rs)) for dag_id, rs in runs.items()},
                "runs_in_flight": in_flight,
                **tries,
            },
            "worker_kills": list(self.kills),
            "peak_memory_mb": {k: round(v) for k, v in sorted(self.peak_mb.items())},
            "driver_errors": dict(self.errors),
            "merchant": {
                "shipments": len(self.merchant_shipments),
                "credit_memos": len(self.merchant_memos),
                "cancellations_requested": len(self.cancel_requests),
            },
        }

    def state_store(self) -> tuple[dict[str, tuple[str, str | None]], list[tuple[str, str]], dict[str, str]]:
        """The outbox, orders stuck waiting or quarantined, and what is reported for a person per Amazon order
        (open mismatches, open quarantine of orders, refused pushes): the Sales Channel page's lists."""
        import sqlalchemy as sa

        engine = sa.create_engine(self.cluster.pg_url(self.cluster.databases["state"]))
        try:
            with engine.connect() as conn:
                outbox = {
                    key: (status, message)
                    for key, status, message in conn.execute(
                        sa.text("SELECT natural_key, status, amazon_message FROM outbox")
                    )
                }
                stuck = [
                    (oid, status)
                    for oid, status in conn.execute(
                        sa.text(
                            "SELECT amazon_order_id, sync_status FROM amazon_orders WHERE sync_status IN :s"
                        ).bindparams(sa.bindparam("s", expanding=True)),
                        {"s": list(STUCK_SYNC)},
                    )
                ]
                reported = dict(
                    conn.execute(
                        sa.text(
                            "SELECT amazon_order_id, kind || ': ' || detail FROM mismatches WHERE resolved_at IS NULL"
                        )
                    ).all()
                )
                reported.update(
                    conn.execute(
                        sa.text(
                            "SELECT amazon_order_id, kind || ' refused: ' || COALESCE(amazon_message, '') FROM outbox"
                            " WHERE status = 'rejected'"
                        )
                    ).all()
                )
                reported.update(
                    conn.execute(
                        sa.text(
                            "SELECT entity_id, 'quarantined: ' || reason FROM quarantine"
                            " WHERE resolved_at IS NULL AND entity_type = 'amazon_order'"
                        )
                    ).all()
                )
        finally:
            engine.dispose()
        return outbox, stuck, reported

    def logged_retries(self) -> int:
        """Retries the hooks logged (one WARNING per retried call) across every task log."""
        count = 0
        for path in (self.cluster.home / "logs").rglob("*.log"):
            try:
                count += sum(1 for line in path.open(errors="replace") if "retrying in" in line.lower())
            except OSError:
                continue
        return count


def _positive(quantity: Any) -> bool:
    return Decimal(str(quantity or 0)) > 0


def write(report: dict[str, Any], base: Path) -> None:
    base.parent.mkdir(parents=True, exist_ok=True)
    base.with_suffix(".json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    base.with_suffix(".md").write_text(markdown(report))


def markdown(r: dict[str, Any]) -> str:
    def row(kind: str) -> str:
        t = r[kind]
        return (
            f"| {kind} | {t['processed']} | {t['duplicates']} | {t['missing']} | {t['wrong']} | "
            f"{len(t.get('rejected', []))} |"
        )

    rejected = [f"- {kind}: {e}" for kind in KINDS for e in r[kind].get("rejected", [])]
    lines = [
        "# Soak report",
        "",
        f"`make soak`, started {r['timing']['started']}: {r['timing']['soak_minutes']} minutes under faults, then "
        f"{r['timing']['drain_minutes']} minutes of drain (faults and new Amazon activity off, schedules running). "
        "Airflow 3 on the CeleryExecutor with two workers, PostgreSQL and Redis, against both sandboxes "
        "(Amazon in live mode); see ops/soak.py for the faults and the merchant's activity.",
        "",
        f"**Duplicates: {r['duplicates']}. Lost or stuck: {len(r['lost_or_stuck'])}.** "
        f"Settled: {'yes' if r.get('settled') else 'no'}.",
        "",
        "| records | processed | duplicates | missing | wrong | refused by Amazon (reported) |",
        "|---|---:|---:|---:|---:|---:|",
        *(row(kind) for kind in KINDS),
        "",
        "| faults and load | count |",
        "|---|---:|",
        f"| Amazon requests | {r['amazon_requests']} |",
        f"| Amazon 429s from its rate limits (both workers together) | {r['amazon_429_rate_limit']} |",
        f"| Amazon 429s injected | {r['amazon_429_injected']} |",
        f"| Amazon 5xx and dropped connections injected | {r['amazon_5xx_and_drops_injected']} |",
        f"| hook retries logged | {r['hook_retries_logged']} |",
        f"| task instances / task retries | {r['airflow'].get('task instances', 0)} / "
        f"{r['airflow'].get('task retries', 0)} |",
        f"| Celery workers SIGKILLed and restarted (mid-task) | {len(r['worker_kills'])} "
        f"({sum('mid-task' in k for k in r['worker_kills'])}) |",
        "",
        "| peak memory (process tree: the component and its tasks, MB) | |",
        "|---|---:|",
        *(f"| {name} | {mb} |" for name, mb in r["peak_memory_mb"].items()),
        "",
        "DAG runs by state: "
        + "; ".join(
            f"`{dag}` {', '.join(f'{s} {n}' for s, n in sorted(states.items())) or 'none'}"
            for dag, states in sorted(r["airflow"]["runs"].items())
        )
        + ".",
        "",
        f"Merchant activity: {r['merchant']['shipments']} shipments and {r['merchant']['credit_memos']} credit memos "
        f"made in Commerce, {r['merchant']['cancellations_requested']} cancellations triggered through the REST API.",
    ]
    if rejected:
        lines += [
            "",
            "Refused by Amazon for a business reason (recorded as rejected, visible on the Sales Channel "
            "page; not lost):",
            "",
            *rejected,
        ]
    if r["lost_or_stuck"]:
        lines += ["", "Lost or stuck:", "", *(f"- {e}" for e in r["lost_or_stuck"])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="how long faults are on (default 15)")
    parser.add_argument("--drain-minutes", type=float, default=12.0, help="longest wait for the schedules to settle")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--report", type=Path, default=ROOT / "benchmarks" / "results" / "soak")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # SIGTERM (and Ctrl-C) end the soak through its clean-up: every process it started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    report = Soak(args.minutes, args.seed, args.drain_minutes).run()
    write(report, args.report)
    print(markdown(report))
    return 0 if report["duplicates"] == 0 and not report["lost_or_stuck"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
