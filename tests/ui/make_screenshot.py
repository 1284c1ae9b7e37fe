"""Take docs/sales-channel-page.png: the real Sales Channel page of a running ``make run``, in headless Chromium.

A manual artefact, not a test. Start ``make run``, let the DAGs import a few rounds of the sandboxes' live
orders, then, from another shell:

    scripts/ensure_chromium.sh --driver      # Debian's chromium and chromium-driver, only where absent
    .venv/bin/python -m tests.ui.make_screenshot

It signs in as ``admin`` the way the Airflow UI does with the SimpleAuthManager: ``POST /auth/token`` with the
password from ``var/secrets.env`` (``UI_ADMIN_PASSWORD``) returns a JWT, which the browser then carries in the
UI's session cookie (``_token``). ChromeDriver is spoken to over plain HTTP (W3C WebDriver). The password and
the token are never printed nor written anywhere; the browser profile is temporary and the cookie is a
session cookie. The UI is ``http://127.0.0.1:$AIRFLOW_PORT`` (8080 by default), as in ``scripts/run.sh``.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ROOT / "var" / "secrets.env"
PAGE_PATH = "/sales-channel/"
USERNAME = "admin"
COOKIE_NAME = "_token"  # airflow.api_fastapi.auth.managers.base_auth_manager.COOKIE_NAME_JWT_TOKEN
# Headings the page always renders: their presence tells the real page from a login page or an error.
HEADINGS = ("Import lag", "DAG runs", "Orders created in Commerce per hour", "Waiting for a product")
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
TIMEOUT = 30

log = logging.getLogger(__name__)


class ScreenshotError(RuntimeError):
    pass


def ui_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('AIRFLOW_PORT') or 8080}"


def admin_password(secrets_file: Path = SECRETS) -> str:
    """``UI_ADMIN_PASSWORD`` from the file ``make run`` wrote (never logged)."""
    if not secrets_file.is_file():
        raise ScreenshotError(f"{secrets_file.relative_to(ROOT)} not found: start `make run` first")
    for line in secrets_file.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == "UI_ADMIN_PASSWORD":
            return value.strip().strip("'\"")
    raise ScreenshotError(f"no UI_ADMIN_PASSWORD in {secrets_file.relative_to(ROOT)}")


def sign_in(base_url: str, password: str) -> str:
    """The SimpleAuthManager's login: ``POST /auth/token`` (JSON username/password) returns the UI's JWT."""
    try:
        response = requests.post(
            f"{base_url}/auth/token", json={"username": USERNAME, "password": password}, timeout=TIMEOUT
        )
    except requests.ConnectionError as exc:
        raise ScreenshotError(f"the Airflow UI does not answer at {base_url}: is `make run` running?") from exc
    if response.status_code not in (200, 201):
        raise ScreenshotError(f"sign-in as {USERNAME} failed: HTTP {response.status_code}")
    token = response.json().get("access_token")
    if not token:
        raise ScreenshotError("sign-in answered without an access token")
    return token


def check_page(base_url: str, token: str) -> None:
    """The page answers the session cookie with the real page (not 401, not "state store cannot be read")."""
    response = requests.get(f"{base_url}{PAGE_PATH}", cookies={COOKIE_NAME: token}, timeout=TIMEOUT)
    if response.status_code != 200:
        raise ScreenshotError(f"{PAGE_PATH} answered HTTP {response.status_code} to the signed-in session")
    missing = [heading for heading in HEADINGS if heading not in response.text]
    if missing:
        raise ScreenshotError(f"{PAGE_PATH} is not the Sales Channel page yet (no {missing[0]!r}); wait for the DAGs")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebDriver:
    """The few W3C WebDriver commands this needs, over plain HTTP to a local ChromeDriver."""

    def __init__(self, driver_url: str, secrets: tuple[str, ...]):
        self.url = driver_url
        self.secrets = secrets
        self.session: str | None = None

    def _redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def call(self, method: str, path: str, body: dict | None = None):
        prefix = f"/session/{self.session}" if self.session else ""
        response = requests.request(method, f"{self.url}{prefix}{path}", json=body, timeout=120)
        value = response.json().get("value") if response.content else None
        if response.status_code >= 400:
            detail = value.get("message", "") if isinstance(value, dict) else ""
            raise ScreenshotError(
                f"WebDriver {method} {path}: HTTP {response.status_code} {self._redact(detail)[:300]}"
            )
        return value

    def start(self, chromium: str, profile: Path, width: int, height: int) -> None:
        args = [*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"]
        capabilities = {"browserName": "chrome", "goog:chromeOptions": {"binary": chromium, "args": args}}
        value = self.call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})
        self.session = value["sessionId"]

    def quit(self) -> None:
        if self.session:
            try:
                self.call("DELETE", "")
            finally:
                self.session = None

    def navigate(self, url: str) -> None:
        self.call("POST", "/url", {"url": url})

    def script(self, source: str):
        return self.call("POST", "/execute/sync", {"script": source, "args": []})

    def add_cookie(self, cookie: dict) -> None:
        self.call("POST", "/cookie", {"cookie": cookie})

    def set_window(self, width: int, height: int) -> None:
        self.call("POST", "/window/rect", {"width": width, "height": height})

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("GET", "/screenshot"))


def start_chromedriver(chromedriver: str, port: int) -> subprocess.Popen:
    # Its log would hold the cookie's value at verbose levels: keep it off and out of the console.
    process = subprocess.Popen(
        [chromedriver, f"--port={port}", "--log-level=OFF"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/status", timeout=2).json()["value"]["ready"]:
                return process
        except (requests.RequestException, ValueError, KeyError):
            pass
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.kill()
    raise ScreenshotError("chromedriver did not start")


def wait_for_page(driver: WebDriver) -> None:
    check = (
        "return document.readyState === 'complete' && !!document.querySelector('#lag')"
        " && !!document.querySelector('svg');"
    )
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if driver.script(check):
            return
        time.sleep(0.5)
    title = driver.script("return document.title;")
    raise ScreenshotError(f"the browser did not render the Sales Channel page (title {title!r})")


def main(out: Path = ROOT / "docs" / "sales-channel-page.png", width: int = 1400) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not chromium or not chromedriver:
        raise ScreenshotError("needs Chromium and ChromeDriver: run scripts/ensure_chromium.sh --driver")
    base_url = ui_url()
    password = admin_password()
    token = sign_in(base_url, password)
    check_page(base_url, token)

    port = free_port()
    process = start_chromedriver(chromedriver, port)
    driver = WebDriver(f"http://127.0.0.1:{port}", secrets=(password, token))
    try:
        with tempfile.TemporaryDirectory(prefix="sales-channel-shot-") as profile:
            driver.start(chromium, Path(profile), width, 1000)
            try:
                # A cookie belongs to the page's origin: open a public endpoint of the API server first.
                driver.navigate(f"{base_url}/api/v2/monitor/health")
                # As the UI's login sets it: HTTP-only, SameSite=Lax, path "/" (no [api] base_url); no expiry,
                # so it lives only in the browser's memory.
                driver.add_cookie(
                    {"name": COOKIE_NAME, "value": token, "path": "/", "httpOnly": True, "sameSite": "Lax"}
                )
                driver.navigate(f"{base_url}{PAGE_PATH}")
                wait_for_page(driver)
                # The whole page in one shot: a viewport `width` wide and as tall as the document.
                chrome_w, chrome_h = driver.script(
                    "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];"
                )
                height = driver.script("return document.documentElement.scrollHeight;")
                driver.set_window(width + chrome_w, height + chrome_h)
                time.sleep(0.5)
                height = driver.script("return document.documentElement.scrollHeight;")
                driver.set_window(width + chrome_w, height + chrome_h)
                time.sleep(0.5)
                png = driver.screenshot()
            finally:
                driver.quit()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    if not png.startswith(b"\x89PNG"):
        raise ScreenshotError("the browser's screenshot is not a PNG")
    out.write_bytes(png)
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    log.info("wrote %s (%d bytes, %dx%d CSS px of %s%s)", shown, len(png), width, height, base_url, PAGE_PATH)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "sales-channel-page.png")
    parser.add_argument("--width", type=int, default=1400)
    options = parser.parse_args()
    try:
        main(options.out.resolve(), options.width)
    except ScreenshotError as error:
        raise SystemExit(f"make_screenshot: {error}") from None
