"""Running the book: each notebook executed headless with papermill in its own kernel, rendered to HTML, timed;
a failing notebook named with its failing cell."""
from __future__ import annotations

import datetime
import importlib.util
import json
import logging
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..files import atomic_write_text, machine
from .notebooks import CELL_TIMEOUT, FIGURES_ENV, KERNEL_NAME, MODES, find_notebooks


@dataclass
class NotebookFailure:
    """Where a notebook stopped: its name, the failing cell (index in the committed notebook) and the error."""

    notebook: str
    cell_index: int | None
    first_line: str
    ename: str
    evalue: str

    def __str__(self) -> str:
        where = f"cell {self.cell_index}" if self.cell_index is not None else "before any cell ran"
        line = f" `{self.first_line}`" if self.first_line else ""
        return f"{self.notebook}: {where}{line} raised {self.ename}: {self.evalue}"


class BookError(RuntimeError):
    """A notebook of the book failed; ``failures`` says which notebook and cell, ``timings`` what ran."""

    def __init__(self, failures: list[NotebookFailure], timings: list[dict], out_dir: Path):
        self.failures, self.timings, self.out_dir = failures, timings, out_dir
        lines = [f"{len(failures)} notebook(s) failed (executed copies in {out_dir}):"]
        lines += [f"  {f}" for f in failures]
        super().__init__("\n".join(lines))



# -------------------------------------------------------------------------------------------------- kernel
def kernel_spec_dir(folder: str | Path) -> Path:
    """Write a kernelspec named ``alexnet-book`` that runs this very Python (sys.executable) into folder/kernels.

    Put ``folder`` first on JUPYTER_PATH and papermill (or JupyterLab) finds it before any user-wide
    ``python3`` kernel that may point at another interpreter without the package."""
    if importlib.util.find_spec("ipykernel") is None:
        raise FileNotFoundError(f"{sys.executable} has no ipykernel; install the book's extras: "
                                "pip install -e '.[book]'")
    spec = Path(folder) / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    # log_level ERROR: ipykernel warns on every start that loopback TCP is unencrypted, which is noise here.
    kernel = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                       "--IPKernelApp.log_level=ERROR"],
              "display_name": f"Python 3 (alexnet-book, {Path(sys.prefix).name})", "language": "python",
              "metadata": {"debugger": True}}
    (spec / "kernel.json").write_text(json.dumps(kernel, indent=1))
    return Path(folder)


class _Environment:
    """Set environment variables for the duration of a ``with`` block (the kernels inherit them)."""

    def __init__(self, **values: str):
        self.values, self.saved = values, {}

    def __enter__(self):
        for key, value in self.values.items():
            self.saved[key] = os.environ.get(key)
            os.environ[key] = value

    def __exit__(self, *exc):
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ------------------------------------------------------------------------------------------------ running
def _failure(name: str, executed: Path, error: BaseException) -> NotebookFailure:
    """Name the failing cell of an executed copy by its index in the committed notebook."""
    import nbformat

    ename = getattr(error, "ename", type(error).__name__)
    evalue = str(getattr(error, "evalue", error)).strip().splitlines()
    evalue = evalue[-1] if evalue else ""
    try:
        nb = nbformat.read(executed, as_version=4)
    except Exception:
        return NotebookFailure(name, None, "", ename, evalue)
    index, cell_index, first_line = 0, None, ""
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags or "papermill-error-cell-tag" in tags:
            continue  # cells papermill added; the committed notebook does not have them
        status = cell.metadata.get("papermill", {}).get("status")
        if cell.cell_type == "code" and status in ("failed", "running"):
            cell_index = index
            first_line = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
            break
        index += 1
    return NotebookFailure(name, cell_index, first_line[:100], ename, evalue)


def export_html(executed: str | Path, html: str | Path) -> Path:
    """Render an executed notebook to one self-contained HTML page (nbconvert's lab template); links to the
    book's other notebooks are pointed at their HTML pages.

    Widgets are drawn as static snapshots of their last state (``widget_snapshot``): nbconvert would load the
    widget manager from a CDN, so offline the panels were blank."""
    import nbformat
    from nbconvert import HTMLExporter

    from ..widget_snapshot import snapshot_notebook

    nb = nbformat.read(executed, as_version=4)
    snapshot_notebook(nb)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    # links between the book's notebooks point at their HTML pages, which sit side by side in build/book/
    body = re.sub(r'href="(\d\d_[\w-]+)\.ipynb(#[^"]*)?"', r'href="\1.html\2"', body)
    atomic_write_text(html, body)
    return Path(html)


def write_timings(path: str | Path, records: list[dict]) -> Path:
    """Merge ``records`` into timings.json: a new (notebook, mode) replaces the old one, others are kept."""
    path = Path(path)
    old = read_timings(path)
    new_keys = {(r["notebook"], r["mode"]) for r in records}
    merged = [r for r in old if (r.get("notebook"), r.get("mode")) not in new_keys] + records
    merged.sort(key=lambda r: (r["mode"], r["notebook"]))
    atomic_write_text(path, json.dumps(merged, indent=1) + "\n")
    return path


def read_timings(path: str | Path = "build/book/timings.json") -> list[dict]:
    """The records of timings.json ([] when it does not exist yet)."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        records = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); delete it, the next book run rewrites it") from None
    return [r for r in records if isinstance(r, dict) and {"notebook", "mode", "seconds"} <= set(r)]


def run_book(mode: str = "quick", notebooks: list[str | Path] | str | Path | None = None,
             out_dir: str | Path = "build/book", figures_dir: str | Path | None = None, kernel: str | None = None,
             timeout: float | None = None, keep_going: bool = True, progress: bool = True) -> list[dict]:
    """Execute the book's notebooks in name order with ``mode`` injected; write executed copies, HTML, timings.

    notebooks: a folder or a list of notebook files (default: every notebook in notebooks/).  The working
    directory of each notebook is its own folder; figures go to ``figures_dir`` through ALEXNET_BOOK_FIGURES when
    it is given, else where ``figures.save_figure`` puts them by default (``build/figures``, not committed).
    kernel: a kernelspec name; default, a kernel running this Python.  timeout: seconds per cell (default
    CELL_TIMEOUT[mode]).  keep_going: run the rest after a failure.  Returns the timing records; raises
    BookError naming every failed notebook and cell once the run is over."""
    import papermill
    from tqdm.auto import tqdm

    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: choose one of {', '.join(MODES)}")
    if notebooks is None or isinstance(notebooks, (str, Path)) and Path(notebooks).is_dir():
        paths = find_notebooks(notebooks)
    else:
        paths = [Path(p) for p in ([notebooks] if isinstance(notebooks, (str, Path)) else notebooks)]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"no such notebook: {', '.join(missing)}")
    if not paths:
        raise FileNotFoundError("no notebooks to run; add notebooks/NN_name.ipynb or pass notebooks=[...]")
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    if figures_dir is not None:
        figures_dir = Path(figures_dir).resolve()
        figures_dir.mkdir(parents=True, exist_ok=True)
    timeout = CELL_TIMEOUT[mode] if timeout is None else timeout
    logging.getLogger("papermill").setLevel(logging.WARNING)

    records, failures = [], []
    with tempfile.TemporaryDirectory(prefix="alexnet-book-kernel-") as kernel_home:
        env = {FIGURES_ENV: str(figures_dir)} if figures_dir is not None else {}
        if kernel is None:
            kernel = KERNEL_NAME
            env["JUPYTER_PATH"] = os.pathsep.join(
                [str(kernel_spec_dir(kernel_home))] + [p for p in os.environ.get("JUPYTER_PATH", "").split(
                    os.pathsep) if p])
        with _Environment(**env):
            bar = tqdm(paths, desc=f"book ({mode})", unit="notebook", disable=not progress)
            for path in bar:
                bar.set_postfix_str(path.stem)
                executed, html = out_dir / path.name, out_dir / f"{path.stem}.html"
                start, error = time.perf_counter(), None
                try:
                    papermill.execute_notebook(
                        str(path), str(executed), parameters={"mode": mode}, kernel_name=kernel,
                        cwd=str(path.resolve().parent), progress_bar=False, log_output=False,
                        start_timeout=120, execution_timeout=timeout)
                except Exception as caught:  # PapermillExecutionError, a cell timeout, a dead kernel
                    error = caught
                seconds = time.perf_counter() - start
                if executed.exists():
                    try:
                        export_html(executed, html)
                    except Exception as caught:
                        error = error or caught
                records.append({"notebook": path.stem, "mode": mode, "seconds": round(seconds, 1),
                                "status": "failed" if error else "ok",
                                "date": datetime.datetime.now().isoformat(timespec="seconds"),
                                "machine": machine()})
                if error is None:
                    bar.write(f"{path.stem}: ok in {seconds:.1f} s -> {html}")
                else:
                    failures.append(_failure(path.stem, executed, error))
                    bar.write(f"FAILED after {seconds:.1f} s: {failures[-1]}")
                    if not keep_going:
                        break
            bar.close()
    write_timings(out_dir / "timings.json", records)
    if failures:
        raise BookError(failures, records, out_dir)
    return records
