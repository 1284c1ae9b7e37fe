"""Import benchmark (`make bench`): the order import against Amazon's rate limits and a 100 ms Commerce.

Reports, into benchmarks/results/import_orders.{json,md}:

1. Extraction of N_EXTRACT orders with Amazon's documented searchOrders limit (0.0056 req/s, burst 20) scaled by
   the sandbox's speed factor: wall time, the minimum the rate limit allows, their ratio (target ≤ 1.1), 429s;
   and the same for a naive client (no client-side limiter, fixed 60 s back-off on 429 — scaled by the same speed
   factor — one call at a time).
2. Loading N_LOAD orders into a Commerce answering in 100 ms per call: wall time, calls per order by kind
   (target: the writes the settings require plus at most 0.1 reads per order).
3. Peak memory of extracting and staging 1,000 and 50,000 orders (target: the larger within 1.3× of the smaller).

Both sandboxes run in their own processes; the integration runs here through its production code path
(pipelines + hooks + state store), without the Airflow scheduler around it.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MARKETPLACES = ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"]
SEARCH_RATE, SEARCH_BURST = 0.0056, 20

SPEED = float(os.environ.get("BENCH_SPEED", "200"))
N_EXTRACT = int(os.environ.get("BENCH_N_EXTRACT", "5000"))
N_LOAD = int(os.environ.get("BENCH_N_LOAD", "1000"))
MEMORY_SIZES = (1000, 50000)
MEMORY_SPEED = float(os.environ.get("BENCH_MEMORY_SPEED", "5000"))
LATENCY_MS = 100.0


def free_port() -> int:
    from sandboxes.server import free_port as _free

    return _free()


class Sandboxes:
    """Both sandboxes as subprocesses, torn down on exit."""

    def __init__(self, speed: float, latency_ms: float, marketplaces: list[str] | None = None) -> None:
        self.amazon_port, self.commerce_port = free_port(), free_port()
        seller = ["--marketplaces", ",".join(marketplaces)] if marketplaces else []
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        self.procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sandboxes.amazon",
                    "--port",
                    str(self.amazon_port),
                    "--speed",
                    str(speed),
                    "--log-level",
                    "warning",
                    *seller,
                ],
                cwd=ROOT,
                env=env,
            ),
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sandboxes.commerce",
                    "--port",
                    str(self.commerce_port),
                    "--latency-ms",
                    str(latency_ms),
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                env=env,
            ),
        ]
        self.amazon = f"http://127.0.0.1:{self.amazon_port}"
        self.commerce = f"http://127.0.0.1:{self.commerce_port}"
        for url in (f"{self.amazon}/_sandbox/health", f"{self.commerce}/_sandbox/stats"):
            for _ in range(200):
                try:
                    requests.get(url, timeout=1)
                    break
                except requests.RequestException:
                    time.sleep(0.05)

    def __enter__(self) -> Sandboxes:
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=10)

    def load_orders(self, count: int, seed: int, **kw) -> int:
        from sandboxes.amazon.generator import CATALOG, generate_orders

        when = (datetime.now(UTC) - timedelta(hours=2)).timestamp()
        orders = generate_orders(seed, count, when, status="UNSHIPPED", fulfilled_by="MERCHANT", **kw)
        for start in range(0, len(orders), 2000):
            requests.post(f"{self.amazon}/_sandbox/orders", json={"orders": orders[start : start + 2000]}, timeout=300)
        requests.post(
            f"{self.commerce}/_sandbox/products",
            json={
                "products": [
                    {"sku": p["sku"], "name": p["name"], "price": str(p["price"]), "status": 1, "qty": 10**7}
                    for p in CATALOG
                ]
            },
            timeout=60,
        )
        return len(orders)

    def connections(self, rate_scale: float, region: str = "") -> dict[str, str]:
        return {
            "AIRFLOW_CONN_AMAZON_SP_API": json.dumps(
                {
                    "conn_type": "http",
                    "host": self.amazon + (f"/{region.lower()}" if region else ""),
                    "login": "sandbox-client-id",
                    "password": "sandbox-client-secret",
                    "extra": {
                        "refresh_token": "sandbox-refresh-token",
                        "lwa_endpoint": f"{self.amazon}/auth/o2/token",
                        "rate_scale": rate_scale,
                    },
                }
            ),
            "AIRFLOW_CONN_COMMERCE": json.dumps(
                {
                    "conn_type": "http",
                    "host": self.commerce,
                    "login": "admin",
                    "password": "sandbox-admin-password",
                    "extra": {"store_code": "default", "auth": "admin"},
                }
            ),
        }

    def amazon_stats(self) -> dict:
        return requests.get(f"{self.amazon}/_sandbox/stats", timeout=10).json()["operations"]

    def commerce_stats(self) -> dict:
        return requests.get(f"{self.commerce}/_sandbox/stats", timeout=10).json()["calls"]


def context(db_url: str, concurrency: int = 8, marketplaces: list[str] = MARKETPLACES):
    from amazon_commerce_sync.resources import open_resources
    from amazon_commerce_sync.settings import parse_settings

    settings = parse_settings(
        {
            "accounts": [
                {
                    "account_id": "bench",
                    "marketplace_ids": marketplaces,
                    "concurrency": concurrency,
                    "import_orders_after": "2026-01-01T00:00:00Z",
                }
            ]
        }
    )
    return open_resources("bench", settings=settings, db_url=db_url)


def pages_for(order_ids: list[str], page_size: int = 100) -> int:
    """searchOrders calls for one listing of all the account's marketplaces (one window per region)."""
    return max(1, math.ceil(len(order_ids) / page_size))


def min_search_seconds(pages: int, speed: float) -> float:
    """The least time Amazon's searchOrders bucket allows for ``pages`` calls (starting with a full burst)."""
    return max(0, pages - SEARCH_BURST) / (SEARCH_RATE * speed)


# -- 1. extraction -------------------------------------------------------------------------------
def bench_extract() -> dict:
    from amazon_commerce_sync.pipelines.order_extract import extract_orders

    with Sandboxes(SPEED, 0) as boxes, tempfile.TemporaryDirectory() as tmp:
        boxes.load_orders(N_EXTRACT, seed=101)
        os.environ.update(boxes.connections(rate_scale=SPEED))
        ids = [o["orderId"] for o in requests.get(f"{boxes.amazon}/_sandbox/orders", timeout=60).json()["orders"]]
        ctx = context(f"sqlite:///{tmp}/state.db")
        account = ctx.settings.accounts[0]
        # The hook before the clock: creating it imports Airflow (about 2 s), which a task process has done before
        # its task body runs; the pan-European row does the same. The LWA token is still fetched inside.
        ctx.amazon(account)
        started = time.monotonic()
        summary = extract_orders(ctx, account, now=datetime.now(UTC))
        wall = time.monotonic() - started
        stats = boxes.amazon_stats().get("searchOrders", {})
    pages = pages_for(ids)
    minimum = min_search_seconds(pages, SPEED)
    return {
        "orders": N_EXTRACT,
        "pages": pages,
        "fetched": summary["fetched"],
        "wall_s": round(wall, 2),
        "min_s": round(minimum, 2),
        "ratio": round(wall / minimum, 3) if minimum else None,
        "http_429": stats.get("throttled", 0),
        "search_calls": stats.get("requests"),
    }


def bench_extract_naive() -> dict:
    """A hand-rolled client: no limiter, sleeps a fixed 60 s (÷ speed) after each 429, one call at a time."""
    with Sandboxes(SPEED, 0) as boxes:
        boxes.load_orders(N_EXTRACT, seed=101)
        token = requests.post(
            f"{boxes.amazon}/auth/o2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": "sandbox-refresh-token",
                "client_id": "sandbox-client-id",
                "client_secret": "sandbox-client-secret",
            },
            timeout=10,
        ).json()["access_token"]
        before = (datetime.now(UTC) - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        fetched, throttled, calls = 0, 0, 0
        started = time.monotonic()
        for marketplace in MARKETPLACES:
            params = {
                "marketplaceIds": marketplace,
                "lastUpdatedAfter": "2026-01-01T00:00:00Z",
                "lastUpdatedBefore": before,
                "maxResultsPerPage": 100,
            }
            while True:
                calls += 1
                response = requests.get(
                    f"{boxes.amazon}/orders/2026-01-01/orders",
                    params=params,
                    headers={"x-amz-access-token": token},
                    timeout=60,
                )
                if response.status_code == 429:
                    throttled += 1
                    time.sleep(60 / SPEED)
                    continue
                body = response.json()
                fetched += len(body.get("orders", []))
                token_next = (body.get("pagination") or {}).get("nextToken")
                if not token_next:
                    break
                params["paginationToken"] = token_next
        wall = time.monotonic() - started
    return {"orders": N_EXTRACT, "fetched": fetched, "wall_s": round(wall, 2), "http_429": throttled, "calls": calls}


# -- 2. loading ----------------------------------------------------------------------------------
READS = ("GET",)


def bench_load() -> dict:
    from amazon_commerce_sync.pipelines.order_extract import extract_orders
    from amazon_commerce_sync.pipelines.order_import import load_orders

    with Sandboxes(SPEED, LATENCY_MS) as boxes, tempfile.TemporaryDirectory() as tmp:
        boxes.load_orders(N_LOAD, seed=202)
        os.environ.update(boxes.connections(rate_scale=SPEED))
        ctx = context(f"sqlite:///{tmp}/state.db", concurrency=8)
        account = ctx.settings.accounts[0]
        extract_orders(ctx, account, now=datetime.now(UTC))
        calls_before = Counter(boxes.commerce_stats())
        started = time.monotonic()
        summary = load_orders(ctx, account, owner="bench")
        wall = time.monotonic() - started
        calls = Counter(boxes.commerce_stats())
        calls.subtract(calls_before)
    created = summary.get("created", 0)
    per_order = {k: round(v / created, 3) for k, v in sorted(calls.items()) if v and created}
    reads = sum(v for k, v in calls.items() if k.startswith(READS) and "integration/admin/token" not in k)
    writes = sum(v for k, v in calls.items() if not k.startswith(READS) and "integration/admin/token" not in k)
    required_writes = 3  # create, invoice, stock (one stock write per page, shared by the page's orders)
    return {
        "orders": N_LOAD,
        "created": created,
        "wall_s": round(wall, 2),
        "latency_ms": LATENCY_MS,
        "concurrency": account.concurrency,
        "calls_per_order": per_order,
        "reads_per_order": round(reads / created, 3) if created else None,
        "writes_per_order": round(writes / created, 3) if created else None,
        "physical_min_s": round(created * (2 + 1 / 100) * LATENCY_MS / 1000 / account.concurrency, 2),
        "required_writes_per_order_max": required_writes,
    }


# -- 3. memory -----------------------------------------------------------------------------------
def peak_rss_kb() -> int:
    """This process's peak resident set (VmHWM). Not ru_maxrss: on Linux that keeps the forking parent's peak."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: best effort


def _child_extract(n: int) -> None:
    """Runs in its own process, so its peak RSS is the integration's alone (orders were loaded by the parent)."""
    from amazon_commerce_sync.pipelines.order_extract import extract_orders

    with tempfile.TemporaryDirectory() as tmp:
        ctx = context(f"sqlite:///{tmp}/state.db")
        baseline = peak_rss_kb()
        summary = extract_orders(ctx, ctx.settings.accounts[0], now=datetime.now(UTC))
        peak = peak_rss_kb()
    print(
        json.dumps(
            {
                "orders": n,
                "fetched": summary["fetched"],
                "peak_rss_mb": round(peak / 1024, 1),
                "growth_mb": round((peak - baseline) / 1024, 1),
            }
        )
    )


def bench_memory() -> list[dict]:
    out = []
    for n in MEMORY_SIZES:
        with Sandboxes(MEMORY_SPEED, 0) as boxes:
            boxes.load_orders(n, seed=303)
            env = {
                **os.environ,
                **boxes.connections(rate_scale=MEMORY_SPEED),
                "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'include'}",
            }  # this checkout, not an installed copy
            result = subprocess.run(
                [sys.executable, "-m", "benchmarks.import_orders", "--memory-child", str(n)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
                env=env,
            )
        out.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return out


def bench_pan_eu() -> dict:
    """The pan-European row (``benchmarks/extract_marketplaces.py``), dated on its own."""
    from benchmarks.extract_marketplaces import bench_pan_eu as run

    rows = run(Sandboxes, context, SPEED, SEARCH_RATE, SEARCH_BURST)
    return {"date": datetime.now(UTC).strftime("%Y-%m-%d"), "speed_factor": SPEED, "rows": rows}


def main() -> None:
    """``make bench``; ``--pan-eu`` (``--load``) runs only the pan-European extraction (the loading) row and keeps
    the other results."""
    if len(sys.argv) == 3 and sys.argv[1] == "--memory-child":
        _child_extract(int(sys.argv[2]))
        return
    os.environ.setdefault("ACS_RETRY_NO_WAIT", "0")
    if not os.environ.get("SALES_CHANNEL_PII_KEYS"):  # buyer data is encrypted at rest: a throwaway key
        from cryptography.fernet import Fernet

        os.environ["SALES_CHANNEL_PII_KEYS"] = Fernet.generate_key().decode()
    if sys.argv[1:] == ["--load"]:
        results = json.loads((RESULTS / "import_orders.json").read_text())
        print("loading with 100 ms Commerce latency...", flush=True)
        load = {"date": datetime.now(UTC).strftime("%Y-%m-%d"), **bench_load()}
        load["load_average_1min"] = round(os.getloadavg()[0], 2)  # the machine may be shared: say how busy it was
        if os.environ.get("BENCH_LOAD_NOTE"):
            load["note"] = os.environ["BENCH_LOAD_NOTE"]
        results["load"] = load
        (RESULTS / "import_orders.json").write_text(json.dumps(results, indent=2) + "\n")
        (RESULTS / "import_orders.md").write_text(report(results))
        print(report(results))
        return
    if sys.argv[1:] == ["--pan-eu"]:
        results = json.loads((RESULTS / "import_orders.json").read_text())
        print("extraction of a pan-European seller...", flush=True)
        results["extract_pan_eu"] = bench_pan_eu()
        (RESULTS / "import_orders.json").write_text(json.dumps(results, indent=2) + "\n")
        (RESULTS / "import_orders.md").write_text(report(results))
        print(report(results))
        return
    results = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "speed_factor": SPEED,
    }
    print("extraction (production client)...", flush=True)
    results["extract"] = bench_extract()
    print("extraction (naive client)...", flush=True)
    results["extract_naive"] = bench_extract_naive()
    print("extraction of a pan-European seller...", flush=True)
    results["extract_pan_eu"] = bench_pan_eu()
    print("loading with 100 ms Commerce latency...", flush=True)
    results["load"] = bench_load()
    print("memory...", flush=True)
    results["memory"] = bench_memory()
    small, large = results["memory"]
    results["memory_ratio"] = round(large["peak_rss_mb"] / small["peak_rss_mb"], 3)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "import_orders.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "import_orders.md").write_text(report(results))
    print(report(results))


def _pan_eu_section(r: dict) -> list[str]:
    from benchmarks.extract_marketplaces import report_pan_eu

    pan = r.get("extract_pan_eu")
    if not pan:
        return []
    lines = report_pan_eu(pan["rows"], pan["speed_factor"])
    if pan["date"] != r["date"]:
        lines.insert(2, f"Run {pan['date']} (`python -m benchmarks.import_orders --pan-eu`).")
        lines.insert(3, "")
    return lines


def report(r: dict) -> str:
    e, n, load = r["extract"], r["extract_naive"], r["load"]
    lines = [
        "# Import benchmark",
        "",
        f"{r['date']} · {r['machine']} · Amazon rate limits × {r['speed_factor']:g} (sandbox speed factor)",
        "",
        "## Extraction (searchOrders 0.0056 req/s, burst 20, scaled)",
        "",
        "| client | orders | pages | wall s | minimum s (rate limit) | ratio | 429s |",
        "|---|---|---|---|---|---|---|",
        f"| this integration | {e['orders']} | {e['pages']} | {e['wall_s']} | {e['min_s']} | {e['ratio']} | "
        f"{e['http_429']} |",
        f"| naive (no limiter, 60 s back-off) | {n['orders']} | {e['pages']} | {n['wall_s']} | {e['min_s']} | "
        f"{round(n['wall_s'] / e['min_s'], 3) if e['min_s'] else '-'} | {n['http_429']} |",
        "",
        "Target: ratio ≤ 1.1.",
        "",
        *_pan_eu_section(r),
        f"## Loading ({load['orders']} orders, Commerce latency {load['latency_ms']:g} ms, "
        f"concurrency {load['concurrency']})",
        "",
        f"- wall time {load['wall_s']} s; {load['created']} orders created",
        f"- writes per order {load['writes_per_order']} (required: create + invoice + stock ≤ "
        f"{load['required_writes_per_order_max']}), reads per order {load['reads_per_order']} (target ≤ 0.1)",
        f"- lower bound at this latency and concurrency (2 writes per order + one stock write per page): "
        f"{load['physical_min_s']} s; wall time / bound {round(load['wall_s'] / load['physical_min_s'], 3)} "
        f"(target ≤ 1.25)",
        *(
            [
                f"- run {load['date']} (`python -m benchmarks.import_orders --load`), 1-minute load average "
                f"{load.get('load_average_1min')} on {r['machine'].split(', ')[1]}"
            ]
            if load.get("date")
            else []
        ),
        *([f"- {load['note']}"] if load.get("note") else []),
        "",
        "| call | per order |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in load["calls_per_order"].items()],
        "",
        "## Memory (extract + stage, separate process each)",
        "",
        "| orders | peak RSS MB | growth during extraction MB |",
        "|---|---|---|",
        *[f"| {m['orders']} | {m['peak_rss_mb']} | {m['growth_mb']} |" for m in r["memory"]],
        "",
        f"Peak ratio 50,000 / 1,000: {r['memory_ratio']} (target ≤ 1.3).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
