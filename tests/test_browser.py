"""JupyterLab in a real browser: open a notebook, run it, operate its widgets, see the output change.

Starts JupyterLab on 127.0.0.1 with a token, drives Debian's headless Chromium through Playwright, and saves
build/browser/screenshot.png.  Skips with the reason when chromium or playwright is missing.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from alexnet_book import book

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "tests" / "browser_notebook.ipynb"
SCREENSHOT = ROOT / "build" / "browser" / "screenshot.png"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 serving a copy of the test notebook; yields (base url, token)."""
    tmp_path = tmp_path_factory.mktemp("browser")
    if shutil.which("chromium") is None:
        pytest.skip("no chromium on PATH: install Debian's chromium (apt-get install -y chromium; `make test` "
                    "does it when root with apt, unless ALEXNET_BOOK_NO_APT=1) to run the JupyterLab browser test")
    pytest.importorskip("playwright.sync_api", reason="python playwright is not installed (pip install playwright)")
    root = tmp_path / "lab"
    root.mkdir()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # run the notebook on a kernel that is this very Python, whatever `python3` kernels the machine has
    nb.metadata.kernelspec = {"name": book.KERNEL_NAME, "display_name": "alexnet-book", "language": "python"}
    nbformat.write(nb, root / NOTEBOOK.name)
    jupyter = tmp_path / "jupyter"
    env = dict(os.environ, JUPYTER_PATH=str(book.kernel_spec_dir(jupyter)),
               JUPYTER_CONFIG_DIR=str(jupyter / "config"), JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
               JUPYTER_DATA_DIR=str(jupyter / "data"), JUPYTER_PLATFORM_DIRS="1")
    # no "official Jupyter news?" toast over the widgets, no update check (the machine may be offline)
    notification = jupyter / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text('{"fetchNews": "false", "checkForUpdates": false}')
    token, port = secrets.token_hex(16), free_port()
    log = open(tmp_path / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip", "127.0.0.1",
         "--port", str(port), "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", f"--LabApp.workspaces_dir={jupyter / 'workspaces'}",
         f"--LabApp.user_settings_dir={jupyter / 'settings'}"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 45
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start on {base}:\n{(tmp_path / 'jupyterlab.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_lab_rejects_requests_without_the_token(lab):
    base, _ = lab
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{base}/api/contents", timeout=5)
    assert caught.value.code == 403


def test_widgets_render_run_and_update_in_jupyterlab(lab):
    from playwright.sync_api import expect, sync_playwright

    from alexnet_book import AlexNet, count_parameters

    base, token = lab
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(30_000)
            page.goto(f"{base}/lab/tree/{NOTEBOOK.name}?token={token}")
            # the notebook is open and its kernel (this Python) has started and is idle
            expect(page.locator(".jp-Notebook .jp-Cell").first).to_be_visible(timeout=40_000)
            expect(page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"alexnet-book.*\| Idle"))).to_have_count(
                1, timeout=40_000)

            # Run -> Run All Cells, as a reader would
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

            # the widgets rendered: the panel is there and nothing is stuck loading or broken
            panel = page.locator(".jp-OutputArea-output .widget-vbox")
            expect(panel).to_be_visible(timeout=40_000)
            expect(panel.locator(".widget-button")).to_have_text("count parameters")
            expect(page.get_by_text("Error rendering")).to_have_count(0)
            expect(page.get_by_text("Loading widget")).to_have_count(0, timeout=15_000)
            result = panel.locator(".result")
            expect(result).to_have_text("press the button")

            # operate the controls: one tower, 7 classes, then the run button
            panel.locator(".widget-dropdown select").select_option(label="one tower (§3.2 footnote)")
            readout = panel.locator(".widget-readout")
            readout.click()
            page.keyboard.press("Control+A")
            page.keyboard.type("7")
            page.keyboard.press("Enter")
            expect(readout).to_have_text("7")
            panel.locator(".widget-button").click()

            # the output reflects the controls and the library's count
            expected = count_parameters(AlexNet(num_classes=7, scale="scaled", towers=1))
            expect(result).to_have_text(f"towers=1 classes=7: {expected:,} parameters", timeout=30_000)
            expect(page.get_by_text("Error rendering")).to_have_count(0)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000
