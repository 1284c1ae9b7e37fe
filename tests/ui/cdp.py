"""A small Chrome DevTools Protocol client (``websockets``) to drive headless Chromium from a test: open a page,
run JavaScript in it, type as a user does (``Input.insertText``), take screenshots."""

from __future__ import annotations

import base64
import itertools
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import connect


class Browser:
    """Headless Chromium with one page; ``close()`` ends the browser process it started."""

    def __init__(self, chromium: str, flags: list[str], profile: Path) -> None:
        args = [chromium, *flags, f"--user-data-dir={profile}", "--remote-debugging-port=0", "--window-size=1400,1600"]
        self.process = subprocess.Popen([*args, "about:blank"], stderr=subprocess.PIPE, text=True)
        deadline, url = time.monotonic() + 60, None
        while url is None and time.monotonic() < deadline and self.process.poll() is None:
            found = re.search(r"DevTools listening on (ws://\S+)", self.process.stderr.readline())
            url = found.group(1) if found else None
        if url is None:
            self.process.kill()
            raise RuntimeError("Chromium did not open its DevTools endpoint")
        self.socket = connect(url, max_size=50_000_000, open_timeout=30)
        self.ids = itertools.count(1)
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            self.call(f"{domain}.enable", page=True)

    def call(self, method: str, *, page: bool = False, **params: Any) -> dict[str, Any]:
        """Send one DevTools command (to the page's session with ``page``) and return its result."""
        number = next(self.ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if page:
            message["sessionId"] = self.session
        self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(self.socket.recv(timeout=60))
            if reply.get("id") == number:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def js(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", page=True, expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(str(result["exceptionDetails"])[:500])
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> Any:
        """Poll ``expression`` until it is truthy; raise AssertionError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {expression}")

    def type_text(self, text: str) -> None:
        """Type into the focused element, as a keyboard would (React sees ordinary input events)."""
        self.call("Input.insertText", page=True, text=text)

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", page=True)["data"]))
        return path

    def close(self) -> None:
        try:
            self.socket.close()
        finally:
            self.process.terminate()
            self.process.wait(timeout=10)
