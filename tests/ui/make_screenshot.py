"""Take docs/sales-channel-page.png: the page over a seeded state store, in headless Chromium.

A manual artefact, not a test (the project does not install a browser): needs Debian's ``chromium``.
    .venv/bin/python -m tests.ui.make_screenshot
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "include"))
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="sales-channel-shot-home-"))

from amazon_commerce_sync.store import StateStore  # noqa: E402
from amazon_commerce_sync.store.db import make_engine, migrate  # noqa: E402
from amazon_commerce_sync.ui.app import create_app, require_user  # noqa: E402
from sandboxes.server import serve_in_thread  # noqa: E402
from tests.ui.conftest import seed  # noqa: E402

log = logging.getLogger(__name__)


def main(out: Path = ROOT / "docs" / "sales-channel-page.png") -> None:
    workdir = Path(tempfile.mkdtemp(prefix="sales-channel-shot-"))
    engine = make_engine(f"sqlite:///{workdir / 'state.db'}")
    migrate(engine)
    store = StateStore(engine, actor="screenshot")
    seed(store, 600, datetime.now(UTC))
    app = create_app(lambda: store, dag_ids=())
    app.dependency_overrides[require_user()] = lambda: {"username": "screenshot"}
    with serve_in_thread(app) as base_url:
        subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={workdir / 'profile'}",
                f"--screenshot={out}",
                "--window-size=1400,2400",
                f"{base_url}/",
            ],  # fmt: skip
            check=True,
            timeout=120,
            capture_output=True,
        )
    log.info("wrote %s", out)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
