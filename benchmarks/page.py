"""Sales Channel page benchmark (`make bench`): how the page's work grows with the state store.

Seeds SQLite state stores with 600, 10,000 and 100,000 orders (the UI tests' seed: seven days across three
marketplaces, with waiting, quarantined and outbox rows) and times the page's queries (``ui.queries.page_data``)
and the whole rendered page (``GET /`` through the FastAPI app), median of 5 after one warm-up request.
Reports the ratio to the 600-order store (the baseline): the page aggregates every order, so some growth is
expected; the lists are capped at 50 rows, so the rendered size must not grow. Target: the 100,000-order page
in under 1 s on the benchmark machine. Results in benchmarks/results/page.{json,md}.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SIZES = (600, 10_000, 100_000)
REPEAT = 5


def _median(action) -> float:
    samples = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def bench_size(n_orders: int, tmp: str) -> dict:
    from fastapi.testclient import TestClient

    from amazon_commerce_sync.store import StateStore
    from amazon_commerce_sync.store.db import make_engine, migrate
    from amazon_commerce_sync.ui import queries
    from amazon_commerce_sync.ui.app import create_app, require_user
    from tests.ui.conftest import seed

    engine = make_engine(f"sqlite:///{tmp}/state-{n_orders}.db")
    migrate(engine)
    store = StateStore(engine, actor="bench")
    seeded = seed(store, n_orders, datetime.now(UTC))
    app = create_app(lambda: store, dag_ids=())
    app.dependency_overrides[require_user()] = lambda: {"username": "bench"}
    client = TestClient(app)
    size = len(client.get("/").content)  # warm-up: builds the pool
    result = {
        "orders": n_orders,
        "queries_s": round(_median(lambda: queries.page_data(store, seeded.now)), 4),
        "page_s": round(_median(lambda: client.get("/")), 4),
        "page_bytes": size,
    }
    engine.dispose()
    return result


def report(results: dict) -> str:
    base = results["sizes"][0]
    lines = [
        "# Sales Channel page benchmark",
        "",
        f"{results['date']} · {results['machine']} · SQLite state store, median of {REPEAT} · "
        f"load average {results.get('load_average_1m', '?')} at the end (an idle machine reads below 1)",
        "",
        "| orders | page queries s | whole page s | ratio to 600 orders | page bytes |",
        "|---|---|---|---|---|",
    ]
    for row in results["sizes"]:
        ratio = row["page_s"] / base["page_s"] if base["page_s"] else float("nan")
        lines.append(
            f"| {row['orders']} | {row['queries_s']:.3f} | {row['page_s']:.3f} | {ratio:.1f} | {row['page_bytes']} |"
        )
    lines += ["", "Target: the 100,000-order page under 1 s; the page size flat (lists capped at 50 rows).", ""]
    return "\n".join(lines)


def main() -> None:
    os.environ.setdefault("SALES_CHANNEL_PII_KEYS", "")
    if not os.environ["SALES_CHANNEL_PII_KEYS"]:
        from cryptography.fernet import Fernet

        os.environ["SALES_CHANNEL_PII_KEYS"] = Fernet.generate_key().decode()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        sizes = [bench_size(n, tmp) for n in SIZES]
    results = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "sizes": sizes,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "page.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "page.md").write_text(report(results))
    print(report(results))


if __name__ == "__main__":
    main()
