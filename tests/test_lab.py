"""`make lab` (alexnet-book lab): JupyterLab starts -- as root too -- on 127.0.0.1 behind a token, serves the
book, and its news pop-up plugin is disabled.  Started in the background for a few seconds, then stopped."""
from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from alexnet_book import lab


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_lab_command_binds_localhost_and_allows_root_only_as_root(tmp_path, monkeypatch):
    for root in (True, False):
        monkeypatch.setattr(lab, "is_root", lambda root=root: root)
        argv, env = lab.lab_command(config_dir=tmp_path)
        assert "--ServerApp.ip=127.0.0.1" in argv and ("--allow-root" in argv) == root
        assert argv[-1] == "notebooks/00_overview.ipynb"
        assert env["JUPYTER_CONFIG_PATH"].split(os.pathsep)[0] == str(tmp_path)
    page = json.loads((tmp_path / "labconfig" / "page_config.json").read_text())
    assert page == {"disabledExtensions": {lab.ANNOUNCEMENTS: True}}


@pytest.mark.slow
def test_lab_serves_the_book_with_a_token_and_without_the_news_plugin(tmp_path):
    pytest.importorskip("jupyterlab", reason="JupyterLab is in the [book] extras: pip install -e '.[book]'")
    token, port = secrets.token_hex(16), free_port()
    argv, env = lab.lab_command(port=port, token=token, browser=False, config_dir=tmp_path / "config-path",
                                extra=["--ServerApp.port_retries=0"])
    # keep the user's own Jupyter folders out of it (JUPYTER_CONFIG_PATH, the book's addition, stays)
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTER_DATA_DIR=str(tmp_path / "data"))
    log = open(tmp_path / "lab.log", "w")
    server = subprocess.Popen(argv, cwd=lab.project_folder(), env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # a loaded machine starts JupyterLab slowly
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start ({' '.join(argv)}):\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.5)
        with pytest.raises(urllib.error.HTTPError) as refused:  # the token is required
            urllib.request.urlopen(f"{base}/api/contents", timeout=10)
        assert refused.value.code in (403, 401)
        with urllib.request.urlopen(f"{base}/api/contents?token={token}", timeout=30) as response:
            names = {item["name"] for item in json.load(response)["content"]}
        assert "00_overview.ipynb" in names  # it serves the notebooks (the folder of the one it opens)
        with urllib.request.urlopen(f"{base}/lab?token={token}", timeout=60) as response:
            html = response.read().decode()
        config = json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                                      html, re.S).group(1))
        assert lab.ANNOUNCEMENTS in config["disabledExtensions"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
