"""``alexnet-book lab`` (what ``make lab`` runs): JupyterLab on the book's notebooks, with the book's Python.

JupyterLab listens on 127.0.0.1 only, behind a token (JupyterLab's own random one, printed in the URL it shows,
unless ``--token`` gives one).  Run as root -- a container, a cloud machine -- it gets ``--allow-root``, without
which JupyterLab refuses to start.  Its news and update pop-up (the ``@jupyterlab/apputils-extension:announcements``
plugin) is disabled the documented way, as ``jupyter labextension disable`` does it: a ``page_config.json`` with
``disabledExtensions``, written here into a project-local config folder (``build/jupyter/labconfig/``, not
committed) that is put first on ``JUPYTER_CONFIG_PATH``, so the user's own Jupyter configuration still applies.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .files import atomic_write_text

ANNOUNCEMENTS = "@jupyterlab/apputils-extension:announcements"
FIRST_NOTEBOOK = "00_overview.ipynb"


def is_root() -> bool:
    """Whether this process runs as root (``id -u`` is 0), where JupyterLab needs ``--allow-root``."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def project_folder() -> Path:
    """The folder JupyterLab serves: the one holding the book's notebooks/ (the project root in a clone)."""
    from .book import notebooks_folder

    return notebooks_folder().resolve().parent


def lab_config_dir(folder: str | Path | None = None) -> Path:
    """Write ``<folder>/labconfig/page_config.json`` disabling the announcements plugin; return ``folder``
    (default ``<project>/build/jupyter``), for ``JUPYTER_CONFIG_PATH``."""
    folder = Path(folder) if folder is not None else project_folder() / "build" / "jupyter"
    page = folder / "labconfig" / "page_config.json"
    page.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(page, json.dumps({"disabledExtensions": {ANNOUNCEMENTS: True}}, indent=1) + "\n")
    return folder


def lab_command(notebook: str | None = None, *, port: int | None = None, token: str | None = None,
                browser: bool = True, config_dir: str | Path | None = None,
                extra: list[str] | tuple = ()) -> tuple[list[str], dict]:
    """The command line and environment that start JupyterLab for the book (run them from ``project_folder()``).

    JupyterLab serves the folder of the notebook it opens (notebooks/, the notebooks' working directory, as in
    ``run_book``).  notebook: the file to open, relative to the project folder (default
    notebooks/00_overview.ipynb).  port,
    token: JupyterLab's (default: 8888 or the next free one; a random token).  browser: open a web browser.
    config_dir: where the page config goes (``lab_config_dir``).  extra: further JupyterLab options."""
    config = lab_config_dir(config_dir)
    argv = [sys.executable, "-m", "jupyterlab", "--ServerApp.ip=127.0.0.1"]
    if is_root():
        argv.append("--allow-root")
    if port is not None:
        argv.append(f"--ServerApp.port={port}")
    if token is not None:
        argv.append(f"--IdentityProvider.token={token}")
    if not browser:
        argv.append("--no-browser")
    argv += list(extra)
    argv.append(notebook or f"notebooks/{FIRST_NOTEBOOK}")
    paths = [str(config)] + [p for p in os.environ.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p]
    return argv, dict(os.environ, JUPYTER_CONFIG_PATH=os.pathsep.join(paths))

