"""The decision in Airflow's own UI: a real ``airflow api-server`` and headless Chromium (ChromeDriver), the way a
person answers a buyer's cancellation request: open the run's Required Actions, read the order, click Cancel.

Set ``ACS_DECISION_SCREENSHOT`` to a path (e.g. ``docs/buyer-cancel-decision.png``) to keep the screenshot of the
decision the browser saw; the README shows that one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.test_cancel_decision import (  # noqa: F401 - fast_poke is an autouse fixture
    DAG,
    Person,
    abandon,
    assert_success,
    commerce_order,
    decided_by,
    fast_poke,
    held_order,
    summary_of,
)
from tests.ui.make_screenshot import WebDriver, free_port, start_chromedriver

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 240


@pytest.fixture(scope="module")
def browser() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if chromium and chromedriver:
        return chromium, chromedriver
    if os.environ.get("CI"):
        pytest.fail("chromium and chromedriver are required in CI (scripts/ensure_chromium.sh --driver)")
    pytest.skip("no chromium/chromedriver on this machine (scripts/ensure_chromium.sh --driver)")


def start_api_server(port: int, log_path: Path) -> subprocess.Popen:
    """Airflow's API server (UI and REST API) on this test session's metadata database; every visitor is admin."""
    env = {**os.environ, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"}
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [airflow, "api-server", "--port", str(port), "--host", "127.0.0.1", "--workers", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2).status_code == 200:
                return process
        except requests.RequestException:
            pass
        if process.poll() is not None:
            break
        time.sleep(1)
    process.kill()
    raise AssertionError(f"the API server did not start: {log_path.read_text(errors='replace')[-2000:]}")


class BrowserPerson(Person):
    """Answers in the UI: opens the run's Required Actions in Chromium, screenshots it, clicks ``choice``."""

    def __init__(self, choice: str, browser: tuple[str, str], workdir: Path) -> None:
        super().__init__(choice)
        self.browser = browser
        self.workdir = workdir
        self.page_text = ""
        self.png = b""

    def run(self) -> None:
        try:
            ti = self._wait_until_asked()
            if ti is not None:
                self._answer_in_browser(ti[1])
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
            abandon()  # dag.test() would otherwise wait for an answer forever

    def _answer_in_browser(self, run_id: str) -> None:
        chromium, chromedriver = self.browser
        port, driver_port = free_port(), free_port()
        server = start_api_server(port, self.workdir / "api-server.log")
        process = start_chromedriver(chromedriver, driver_port)
        driver = WebDriver(f"http://127.0.0.1:{driver_port}", secrets=())
        try:
            with tempfile.TemporaryDirectory(prefix="decision-shot-") as profile:
                driver.start(chromium, Path(profile), 1280, 900)
                try:
                    url = f"http://127.0.0.1:{port}/dags/{DAG}/runs/{run_id}/tasks/decide/required_actions"
                    driver.navigate(url)
                    self.page_text = self._wait_for(driver, "Keep")
                    time.sleep(1.0)  # let the UI finish drawing before the picture
                    self.png = driver.screenshot()
                    clicked = driver.script(
                        "const b = [...document.querySelectorAll('button')].filter("
                        f"x => x.innerText.trim() === {self.choice!r}); if (b.length) b[b.length - 1].click(); "
                        "return b.length;"
                    )
                    assert clicked, f"no {self.choice!r} button on the Required Actions page"
                    self._wait_answered(run_id)
                finally:
                    driver.quit()
        finally:
            for proc in (process, server):
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()

    def _wait_for(self, driver: WebDriver, text: str) -> str:
        deadline = time.monotonic() + 120
        body = ""
        while time.monotonic() < deadline:
            body = driver.script("return document.body ? document.body.innerText : '';") or ""
            if text in body and "Buyer asks to cancel" in body:
                return body
            time.sleep(1)
        raise AssertionError(f"the Required Actions page never showed the decision: {body[:500]!r}")

    def _wait_answered(self, run_id: str) -> None:
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import select

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with create_session() as session:
                detail = session.scalar(
                    select(HITLDetail)
                    .join(TaskInstance, HITLDetail.ti_id == TaskInstance.id)
                    .where(TaskInstance.dag_id == DAG, TaskInstance.run_id == run_id)
                )
                if detail is not None and detail.responded_at is not None:
                    self.answers.append(list(detail.chosen_options or []))
                    return
            time.sleep(0.5)
        raise AssertionError("the click in the UI recorded no answer")


def test_cancel_decided_in_the_airflow_ui(channel, browser, tmp_path):
    order_id = held_order(channel, seed=66)
    states, person = decided_by(channel, order_id, BrowserPerson("Cancel", browser, tmp_path))
    assert_success(states)
    assert person.answers == [["Cancel"]]
    increment_id = channel.store.orders.get(order_id)["commerce_increment_id"]
    for shown in (order_id, increment_id, "Order created by mistake", "Ship by", "Cancel", "Keep"):
        assert shown in person.page_text, shown
    assert person.png.startswith(b"\x89PNG") and len(person.png) > 20_000
    assert channel.amazon_order(order_id)["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    assert commerce_order(channel, order_id)["state"] in ("canceled", "closed")
    assert [o["outcome"] for o in summary_of(channel)["orders"]] == ["cancelled"]
    keep = os.environ.get("ACS_DECISION_SCREENSHOT")
    if keep:
        (ROOT / keep).write_bytes(person.png)
