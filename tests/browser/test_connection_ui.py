"""The connection form and its Test result in Airflow's own UI: a real api-server on 127.0.0.1, the emulator, and
Debian's ``chromium`` driven by Playwright (issue 12, item 11).

* The *Add Connection* form for the type "Altinn Events" shows the provider's fields (labels from
  ``hooks/_connection_form.py``), relabels ``host`` and hides ``port``.
* The connection list's *Test* button. Airflow 3.3.2 sends ``port: 0`` for a connection without a port and
  answers "Bad Request" before the provider runs (an Airflow bug, documented in ``docs/connection.rst`` with
  its workarounds). With that one field corrected in flight, the UI shows the provider's own messages: success
  against the emulator, and the failing step for a broken connection, with no secret on the page.
* The documented workaround ``airflow connections test`` gives the provider's verdict.

Skipped only when no ``chromium`` is installed (``apt-get install -y chromium``; ``.ci/run`` installs it).
Starts: ``airflow db migrate``, the api-server and the emulator, once for the module; all stopped at the end.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no chromium installed (apt-get install -y chromium)", allow_module_level=True)

from playwright.sync_api import Page, Route, sync_playwright  # noqa: E402  (after the skip on purpose)

from scripts.stack import BIN, Stack, StackError  # noqa: E402

pytestmark = pytest.mark.e2e

GOOD = "altinn_ui_good"
BROKEN = "altinn_ui_broken"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        home=tmp_path_factory.mktemp("browser-home"),
        extra_env={"AIRFLOW__CORE__TEST_CONNECTION": "Enabled"},
        log=lambda _line: None,
    )
    try:
        stack.logs.mkdir(parents=True, exist_ok=True)
        stack.start_emulator()
        stack.register_client()
        stack.migrate()
        stack.start_component("api-server")
        stack.wait_api_healthy()
        conn = stack.connection_dict()
        for conn_id, extra in (
            (GOOD, conn["extra"]),
            (BROKEN, {**conn["extra"], "key_id": "not-registered"}),
        ):
            stack.api(
                "POST",
                "/connections",
                json={
                    "connection_id": conn_id,
                    "conn_type": "altinn_events",
                    "host": conn["host"],
                    "login": conn["login"],
                    "password": conn["password"],
                    "extra": json.dumps(extra),
                },
            )
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def page(stack: Stack) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def _secret_lines(stack: Stack) -> list[str]:
    return [line for line in stack.private_key_pem.splitlines() if line and "-----" not in line]


def test_the_add_form_shows_the_provider_fields(stack: Stack, page: Page) -> None:
    page.goto(f"{stack.api_url}/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.locator("[role=dialog]")
    dialog.locator("input[name=connection_id]").fill("altinn_events_form")
    dialog.locator("input[role=combobox]").fill("Altinn Events")
    page.get_by_role("option", name="Altinn Events").click()
    standard = dialog.inner_text()
    assert "Platform base URL (environment 'custom' only)" in standard
    assert "Maskinporten client id" in standard
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    dialog.get_by_text("Platform access token").first.wait_for()
    text = dialog.inner_text()
    for label in ("Environment", "Scopes", "Key id (kid)", "Private key passphrase", "Token exchange URL"):
        assert label in text, label
    assert dialog.locator("input[name=port]").count() == 0  # hidden: the connection has no port
    dialog.get_by_role("button", name="Close").click()


def _list_test(page: Page, stack: Stack, conn_id: str) -> str:
    """Press the list's Test button for ``conn_id``; the text of the result the UI shows."""
    page.goto(f"{stack.api_url}/connections")
    page.get_by_role("cell", name=conn_id, exact=True).wait_for()
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=conn_id, exact=True))
    with page.expect_response("**/api/v2/connections/test") as answer:
        row.get_by_role("button", name="Test Connection").click()
    status = answer.value.status
    toast = page.get_by_text(re.compile("Test Connection (Successful|Failed)")).last
    toast.wait_for()
    text = str(page.locator("[role=status], [role=region]").all_inner_texts())
    page.get_by_text(
        re.compile("Test Connection (Successful|Failed)")
    ).last.click()  # keep the next toast apart
    return f"{status} {text}"


def _drop_port_zero(route: Route) -> None:
    body: dict[str, Any] = json.loads(route.request.post_data or "{}")
    if body.get("port") == 0:
        del body["port"]
    route.continue_(post_data=json.dumps(body))


def test_the_list_test_button_shows_the_provider_messages(stack: Stack, page: Page) -> None:
    sent: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda r: (
            sent.append(json.loads(r.post_data or "{}")) if r.url.endswith("/connections/test") else None
        ),
    )
    as_is = _list_test(page, stack, GOOD)
    assert sent[-1].get("port") == 0  # what Airflow 3.3.2's list sends for a connection without a port
    if version("apache-airflow") == "3.3.2":
        assert as_is.startswith("400") and "Bad Request" in as_is, as_is  # the bug docs/connection.rst names

    page.route("**/api/v2/connections/test", _drop_port_zero)
    try:
        works = _list_test(page, stack, GOOD)
        broken = _list_test(page, stack, BROKEN)
    finally:
        page.unroute("**/api/v2/connections/test")
    assert works.startswith("200") and "Connection works (custom)" in works, works
    assert f"{stack.emulator_url}/events/api/v1" in works
    assert broken.startswith("200") and "Grant step failed" in broken, broken
    assert "invalid_client" in broken or "kid" in broken, broken
    page_text = page.locator("body").inner_text()
    for line in _secret_lines(stack):
        assert line not in works + broken + page_text


def test_airflow_connections_test_is_the_documented_workaround(stack: Stack) -> None:
    result = subprocess.run(
        [str(Path(BIN) / "airflow"), "connections", "test", GOOD],
        env=stack.airflow_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Connection success!" in result.stdout


def test_the_rest_api_without_a_port_is_the_documented_workaround(stack: Stack) -> None:
    body = {"connection_id": GOOD, "conn_type": "altinn_events", "password": "***"}  # as docs/connection.rst
    answer = stack.api("POST", "/connections/test", json=body)
    assert answer["status"] is True, answer
    assert answer["message"].startswith("Connection works (custom)")
    if version("apache-airflow") == "3.3.2":  # what the list's button sends, refused before the provider runs
        with pytest.raises(StackError, match="-> 400"):
            stack.api("POST", "/connections/test", json={**body, "port": 0})
