"""The Sales Channel page rendered by a real browser: headless Chromium (Debian's package; `make test` installs it)."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime

import pytest
import requests

from tests.ui.conftest import PII_MARKERS, seed

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--hide-scrollbars",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail("chromium is required in CI (make test installs Debian's package)")
    pytest.skip("no chromium on this machine (make test installs it on Debian)")


def test_page_renders_in_headless_chromium(chromium, tmp_path):
    from amazon_commerce_sync.store import StateStore
    from amazon_commerce_sync.store.db import make_engine, migrate
    from amazon_commerce_sync.ui.app import create_app, require_user
    from sandboxes.server import serve_in_thread

    engine = make_engine(f"sqlite:///{tmp_path / 'state.db'}")
    migrate(engine)
    store = StateStore(engine, actor="browser-test")
    seeded = seed(store, 6000, datetime.now(UTC))
    app = create_app(lambda: store, dag_ids=())
    app.dependency_overrides[require_user()] = lambda: {"username": "browser-test"}
    shot = tmp_path / "page.png"
    with serve_in_thread(app) as base_url:
        profile = [f"--user-data-dir={tmp_path / 'profile'}"]
        dom = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, *profile, "--dump-dom", f"{base_url}/"],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        subprocess.run(
            [chromium, *CHROMIUM_FLAGS, *profile, f"--screenshot={shot}", "--window-size=1400,2000", f"{base_url}/"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        # a list longer than the page's 50 rows comes whole as CSV, from the link the page shows
        href = re.search(r'<a href="(csv/waiting_product)" class="csv">', dom).group(1)
        export = requests.get(f"{base_url}/{href}", timeout=30)
    for heading in (
        "Import lag",
        "Orders created in Commerce per hour",
        "Waiting for a product",
        "Quarantined",
        "Pushes to Amazon",
        "Open mismatches",
        "Orders at risk of shipping late",
        "On hold for the buyer's cancellation request",
        "Not eligible because",
    ):
        assert heading in dom, heading
    assert "<svg" in dom and 'class="axis"' in dom  # the chart rendered, with its value axis
    # per marketplace, "Orders staged" equals the sum of the status columns (not eligible included)
    lag = dom[dom.index('id="lag"') : dom.index('id="lag-legend"')]
    rows = [r for r in re.findall(r"<tr>(.*?)</tr>", lag, re.S) if 'class="num staged"' in r]
    assert len(rows) == 3
    for row in rows:
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        numbers = [int(x) for x in cells[5:]]
        assert numbers[0] == sum(numbers[1:]), cells
    assert "not eligible</th>" in lag
    # orders on hold link to their decision run; the soonest ship-by deadline comes first
    first_hold = seeded.on_hold_ids[-1]  # the oldest request, listed first
    assert re.search(rf'href="/dags/amazon_buyer_cancel_decision/runs/buyer_request__acct-\w+__{first_hold}"', dom)
    soonest = min(seeded.ship_by, key=seeded.ship_by.get)
    risk = dom[dom.index('id="ship-by"') : dom.index('id="on-hold"')]
    assert soonest in risk.split("</tr>")[1]  # the first row after the header
    assert export.status_code == 200
    assert len(list(csv.DictReader(io.StringIO(export.text)))) == len(seeded.waiting_ids) > 50
    for marker in ("PIIMARKER", PII_MARKERS["buyer_email"]):
        assert marker not in dom
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000
