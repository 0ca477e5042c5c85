"""The Request Lab in a real browser: JupyterLab in Debian's Chromium, driven by Playwright.

Starts `jupyter lab` on 127.0.0.1 (token, free port) over a copy of the notebooks, with the
session's MLflow server (MLFLOW_400_LAB_HOME is exported by conftest.py and passed on to the
kernel), runs 04_request_lab.ipynb, then breaks and fixes a request with mouse clicks only.
Screenshots are saved to test-artifacts/ (gitignored). Playwright cannot download browsers here, so it
launches /usr/bin/chromium; outside CI the test is skipped when that is not installed.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from helpers.processes import free_port
from helpers.server import ServerHandle

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium tries to reach Google and this machine's
# closed network refuses it; the sandbox needs privileges a root CI job does not give.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
NOTEBOOK = "04_request_lab.ipynb"
#: Notebook 04 shows this screenshot so that it reads without running; `make notebooks` sets
#: REFRESH_ENV and this test refreshes it. A normal test run leaves the committed picture alone.
NOTEBOOK_IMAGE = ROOT / "notebooks" / "images" / "request_lab.png"
REFRESH_ENV = "MLFLOW_400_LAB_REFRESH_SCREENSHOT"
#: The curl command typed into the Import box names the local server as the README shows it.
SERVER_PLACEHOLDER = "http://127.0.0.1:5400"
SLOW = 180_000  # ms: a cold kernel plus the whole notebook on a 2-core machine
ANSWER = 30_000  # ms: one request to the local server, answered through the kernel


def _require_browser() -> None:
    in_ci = bool(os.environ.get("CI"))
    if not CHROMIUM.exists():
        if in_ci:
            pytest.fail(f"{CHROMIUM} is missing: CI must run the browser test (.ci/run installs "
                        "the Debian package chromium).")
        pytest.skip(f"no Chromium at {CHROMIUM}: `apt-get install chromium` to run the browser "
                    "test (it always runs in CI).")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        if in_ci:
            pytest.fail("the playwright package is missing: install the kit with its [test] extra.")
        pytest.skip("the playwright package is not installed (pip install -e '.[test]').")


@pytest.fixture(scope="module")
def jupyter_lab(server: ServerHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A JupyterLab over a copy of notebooks/; yields the URL that opens notebook 04."""
    _require_browser()
    assert os.environ.get("MLFLOW_400_LAB_HOME"), "conftest.py exports the session server's home"
    root = tmp_path_factory.mktemp("jupyterlab")
    shutil.copytree(ROOT / "notebooks", root / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    settings = root / "settings"
    # A fresh profile: no user config or workspace, no news poll (a network call and a toast),
    # every cell attached to the page (no windowing), so what the test reads is really there.
    for plugin, text in (("notebook-extension/tracker", '{"windowingMode": "none"}'),
                         ("apputils-extension/notification",
                          '{"fetchNews": "false", "checkForUpdates": false}')):
        path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    env = {**os.environ,
           "JUPYTER_CONFIG_DIR": str(root / "config"),
           "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces"),
           # The kernelspec says "python": resolve it to this environment's, not another on PATH
           # (a system Python with an older copy of the kit installed would run the notebook).
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    port, token = free_port(), secrets.token_hex(16)
    log_path = root / "jupyterlab.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root / 'notebooks'}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{base}/api/status", params={"token": token}, timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer in 90 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)  # polling a port, not synchronising the page
        yield f"{base}/lab/tree/{NOTEBOOK}?token={token}"
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """Stop jupyter lab and the kernels it started (they run in sessions of their own)."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    _, alive = psutil.wait_procs(children, timeout=10)
    for child in alive:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


def test_request_lab_with_mouse_clicks(jupyter_lab: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1800})  # the whole lab in view
        try:
            page.goto(jupyter_lab)
            notebook = page.locator(".jp-NotebookPanel").filter(has=page.locator(".jp-Notebook"))
            kernel = notebook.locator(".jp-Toolbar-kernelName")
            # Idle alone is not enough: before a kernel is attached the indicator is idle too,
            # and Run All then opens a "Select Kernel" dialog.
            expect(kernel).to_be_visible(timeout=SLOW)
            expect(kernel).not_to_have_text(re.compile(r"^\s*(No Kernel)?\s*$"), timeout=SLOW)
            expect(page.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute(
                "data-status", "idle", timeout=SLOW)

            # Clear the committed outputs first, so everything awaited below is new.
            _menu(page, "Edit", "Clear Outputs of All Cells")
            expect(page.get_by_text("of 2 challenges solved")).to_have_count(0)
            _menu(page, "Run", "Run All Cells")
            expect(page.get_by_text("of 2 challenges solved")).to_be_visible(timeout=SLOW)
            expect(page.locator(".jp-OutputArea-output", has_text="Traceback")).to_have_count(0)

            lab = page.locator(".lab400-lab").first
            expect(lab).to_be_visible(timeout=SLOW)
            lab.scroll_into_view_if_needed()
            badge = lab.locator(".lab400-answer .lab400-badge")
            preview = lab.locator(".lab400-preview")

            lab.locator(".lab400-reset").click()
            expect(badge).to_have_text("not sent yet", timeout=ANSWER)
            # Reset keeps the history of the notebook's own sends; Clear history empties it.
            expect(lab.locator(".lab400-history")).not_to_contain_text("no attempts yet")
            lab.locator(".lab400-clear-history").click()
            expect(lab.locator(".lab400-history")).to_contain_text("no attempts yet", timeout=ANSWER)

            _toggle(lab, "content-type", "(none)")
            expect(preview).to_contain_text("(no Content-Type header)", timeout=ANSWER)
            lab.locator(".lab400-send").click()
            expect(badge).to_have_text("400 Bad Request", timeout=ANSWER)
            expect(lab.locator(".lab400-answer .lab400-message")).to_contain_text(
                "Content-Type header is missing")
            lab.screenshot(path=str(ARTIFACTS / "request_lab_400.png"))
            if os.environ.get(REFRESH_ENV):  # `make notebooks`: the picture notebook 04 shows
                shutil.copyfile(ARTIFACTS / "request_lab_400.png", NOTEBOOK_IMAGE)

            _toggle(lab, "content-type", "application/json")
            _toggle(lab, "body-style", "valid JSON")
            expect(preview).to_contain_text("Content-Type: application/json", timeout=ANSWER)
            lab.locator(".lab400-send").click()
            expect(badge).to_have_text("200 OK", timeout=ANSWER)
            expect(lab.locator(".lab400-history")).to_contain_text("Content-Type: (none)")
            lab.screenshot(path=str(ARTIFACTS / "request_lab_200.png"))

            # Keyboard only: paste your own curl command into the Import box, Tab to Import,
            # press Enter; the lab loads it; Enter on Send sends it.
            lab.locator(".lab400-import-text textarea").focus()
            page.keyboard.insert_text(
                f"curl -X POST {SERVER_PLACEHOLDER}/api/2.0/mlflow/runs/log-metric "
                "-H 'Content-Type: text/plain' -d '{\"key\": \"k\", \"value\": 1}'")
            page.keyboard.press("Tab")
            expect(lab.locator("button.lab400-import")).to_be_focused()
            page.keyboard.press("Enter")
            expect(lab.locator(".lab400-import-note")).to_contain_text("Loaded", timeout=ANSWER)
            expect(preview).to_contain_text("Content-Type: text/plain", timeout=ANSWER)
            lab.locator(".lab400-send").focus()
            page.keyboard.press("Enter")
            expect(badge).to_have_text("400 Bad Request", timeout=ANSWER)
            expect(lab.locator(".lab400-answer .lab400-message")).to_contain_text(
                "Content-Type must be one of")
            lab.screenshot(path=str(ARTIFACTS / "request_lab_import.png"))

            # axe-core on the lab (the Request Lab's own markup, not JupyterLab's chrome).
            from axe_playwright_python.sync_playwright import Axe

            results = Axe().run(page, context=".lab400-lab")
            (ARTIFACTS / "request_lab_axe.txt").write_text(results.generate_report())
            assert results.violations_count == 0, results.generate_report()
        finally:
            page.screenshot(path=str(ARTIFACTS / "request_lab_page.png"), full_page=False)
            browser.close()


def _menu(page, top: str, item: str) -> None:
    """Open a JupyterLab main menu and click one of its items, as a user would."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(rf"^{top}$")).click()
    page.locator(".lm-Menu-item:visible", has_text=item).first.click()


def _toggle(lab, picker: str, label: str) -> None:
    lab.locator(f".lab400-{picker}").get_by_role("button", name=label, exact=True).click()
