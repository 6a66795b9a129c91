"""``make screenshot``: regenerate ``docs/_static/connection-form.png``, the Airflow UI's "Add Connection"
form for the connection type ``altinn_events``, from a real api-server and a real headless browser.

Starts only what the form needs (``airflow db migrate`` and the api-server, under a throwaway
``AIRFLOW_HOME`` in the system's temporary folder), drives Debian's ``chromium`` over the DevTools protocol (a
websocket; ``websockets`` comes with Airflow): Admin > Connections > Add Connection, type "Altinn Events",
open "Extra Fields", and captures the dialog. Needs ``chromium`` on the PATH (``apt-get install -y chromium``).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.stack import REPO, Stack, StackError

OUTPUT = REPO / "docs" / "_static" / "connection-form.png"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


class Browser:
    """Headless chromium with one page, driven over the DevTools protocol."""

    def __init__(self, width: int = 1400, height: int = 2600) -> None:
        from websockets.sync.client import connect

        binary = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
        if binary is None:
            raise StackError("no chromium found; install it with `apt-get install -y chromium`")
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        self.proc = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={self.profile}",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise StackError("chromium did not open its DevTools port within 30 s")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        page = next(t for t in httpx.get(f"http://127.0.0.1:{port}/json").json() if t["type"] == "page")
        self._exit = ExitStack()
        self.socket = self._exit.enter_context(connect(page["webSocketDebuggerUrl"], max_size=None))
        self.calls = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.calls += 1
        self.socket.send(json.dumps({"id": self.calls, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.calls:
                if "error" in message:
                    raise StackError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def js(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise StackError(f"script failed: {result['exceptionDetails'].get('text')} in {expression[:80]}")
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.25)
        raise StackError(f"timed out waiting for {what}")

    def click_at(self, x: float, y: float) -> None:
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def type_text(self, text: str) -> None:
        self.call("Input.insertText", text=text)

    def press_enter(self) -> None:
        for kind in ("keyDown", "keyUp"):
            self.call(
                "Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter", windowsVirtualKeyCode=13
            )

    def close(self) -> None:
        if getattr(self, "_exit", None) is not None:
            self._exit.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        shutil.rmtree(self.profile, ignore_errors=True)


def center_of(selector_js: str) -> str:
    """JS that scrolls an element into view and returns its centre, or null."""
    return (
        f"(() => {{ const e = {selector_js}; if (!e) return null; e.scrollIntoView({{block: 'center'}});"
        " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
    )


def capture(browser: Browser, api_url: str, output: Path) -> None:
    browser.call("Page.enable")
    browser.call("Page.navigate", url=f"{api_url}/connections")
    add = "Array.from(document.querySelectorAll('button')).find(b => b.innerText.trim() === 'Add Connection')"
    browser.click_at(*browser.wait_for(center_of(add), "the Connections page"))
    browser.wait_for("!!document.querySelector('[role=dialog] input[name=connection_id]')", "the Add dialog")
    browser.js("document.querySelector('[role=dialog] input[name=connection_id]').focus()")
    browser.type_text("altinn_events_default")
    browser.js("document.querySelector('[role=dialog] input[role=combobox]').focus()")
    browser.type_text("Altinn Events")
    browser.wait_for(
        "Array.from(document.querySelectorAll('[id*=option]')).some(o => o.innerText === 'Altinn Events')",
        "the connection type 'Altinn Events' (is the provider installed?)",
    )
    browser.press_enter()
    extra = (
        "Array.from(document.querySelectorAll('[role=dialog] [data-part=item-trigger]'))"
        ".find(b => b.innerText.trim() === 'Extra Fields')"
    )
    browser.click_at(*browser.wait_for(center_of(extra), "the Extra Fields section"))
    browser.wait_for(
        "document.querySelector('[role=dialog]').innerText.includes('Platform access token')", "our fields"
    )
    browser.js("window.scrollTo(0, 0)")
    box: dict[str, float] = {}
    for _ in range(40):  # until the dialog stops moving (the resize and its transition settle)
        time.sleep(0.5)
        now = json.loads(
            browser.js("JSON.stringify(document.querySelector('[role=dialog]').getBoundingClientRect())")
        )
        if now == box:
            break
        box = now
    time.sleep(1)
    clip = {
        "x": box["x"] - 8,
        "y": box["y"] - 8,
        "width": box["width"] + 16,
        "height": box["height"] + 16,
        "scale": 1,
    }
    data = browser.call("Page.captureScreenshot", format="png", clip=clip)["data"]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(base64.b64decode(data))


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="altinn-events-screenshot-"))
    stack = Stack(home=home)
    browser: Browser | None = None
    try:
        stack.logs.mkdir(parents=True, exist_ok=True)
        print("starting the Airflow api-server ...", flush=True)
        stack.migrate()
        stack.start_component("api-server")
        stack.wait_api_healthy()
        print(f"api-server at {stack.api_url}; driving chromium ...", flush=True)
        browser = Browser()
        capture(browser, stack.api_url, OUTPUT)
    except StackError as error:
        print(
            f"screenshot failed: {error} (api-server log: {stack.logs / 'api-server.log'})", file=sys.stderr
        )
        return 1
    finally:
        if browser is not None:
            browser.close()
        stack.stop()
    shutil.rmtree(home, ignore_errors=True)
    print(f"wrote {OUTPUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
