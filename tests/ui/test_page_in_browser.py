"""The Sales Channel page rendered by a real browser: headless Chromium (Debian's package; `make test` installs it)."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime

import pytest

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
    seed(store, 300, datetime.now(UTC))
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
    for heading in (
        "Import lag",
        "Orders created in Commerce per hour",
        "Waiting for a product",
        "Quarantined",
        "Pushes to Amazon",
        "Open mismatches",
    ):
        assert heading in dom, heading
    assert "<svg" in dom  # the chart rendered
    for marker in ("PIIMARKER", PII_MARKERS["buyer_email"]):
        assert marker not in dom
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000
