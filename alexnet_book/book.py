"""The book end to end: execute every notebook headless, export HTML and figures, check notebooks are clean.

``run_book(mode="quick")`` runs ``notebooks/NN_*.ipynb`` in name order with papermill, injecting only
``mode`` ("smoke" | "quick" | "full") into each notebook's ``parameters`` cell, with the notebooks folder as
the working directory.  It writes the executed copies and their rendered HTML to ``build/book/``, the wall time
of each notebook to ``build/book/timings.json`` and, through ``figures.save_figure``, the notebooks' figures to
``build/figures/`` (or the folder given, through ``ALEXNET_BOOK_FIGURES``): running the book leaves the
committed tree as it was.  A failing notebook fails the run and is named with its failing cell.
``check_notebook`` is what CI uses to keep committed notebooks clean and parameterised.
"""
from __future__ import annotations

import argparse
import ast
import datetime
import importlib.util
import json
import logging
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .files import atomic_write_text, machine

MODES = ("smoke", "quick", "full")
# The names run_book injects into each notebook's parameters cell; each must be read by the notebook.
INJECTED_PARAMETERS = ("mode",)
KERNEL_NAME = "alexnet-book"
# The kernel every committed notebook asks for (kernelspec name, language): JupyterLab's default Python kernel.
KERNELSPEC = ("python3", "python")
FIGURES_ENV = "ALEXNET_BOOK_FIGURES"
# Seconds one cell may run before the book gives up on it, per mode (None: no limit, for paper-scale runs).
CELL_TIMEOUT = {"smoke": 600, "quick": 3600, "full": None}
ROOT = Path(__file__).resolve().parent.parent

# The map of the book: notebook, what it shows, the paper's sections, figures and tables it re-makes.
CHAPTERS = (
    ("00_overview", "The paper on one page, this map, the environment check and the errata", "all", "Tables 1-2"),
    ("01_layers", "Each layer from scratch: ReLU, tanh, LRN, overlapping pooling, dropout", "§3.1, §3.3, §3.4, §4.2",
     ""),
    ("02_architecture", "The two-GPU network: shapes, 224 vs 227, parameters and MACs, the seed's errata",
     "§3.2, §3.5", "Fig. 2"),
    ("03_data", "Data and augmentation: mean image, crops and flips, PCA colour noise, 10 crops", "§2, §4.1", ""),
    ("04_training", "Training with the paper's recipe, evaluation with 1 and 10 crops", "§5, §6",
     "Tables 1-2 (compared)"),
    ("05_filters_and_towers", "First-layer filters and the two towers' colour specialisation", "§6.1, §3.2",
     "Fig. 3"),
    ("06_ablations", "The ablation table: each in-text claim re-run, with widgets", "§3.1-§4.2, §6, §7",
     "in-text claims"),
    ("07_relu_vs_tanh", "ReLU vs tanh: epochs to 25% training error", "§3.1", "Fig. 1"),
    ("08_neighbours", "Top-5 predictions and nearest neighbours in the last 4096-d layer", "§6.1", "Fig. 4"),
)


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


# ----------------------------------------------------------------------------------------------- notebooks
def notebooks_folder() -> Path:
    """The book's notebooks/: the one in the current directory, else the one beside the package."""
    here = Path("notebooks")
    folder = here if here.is_dir() else ROOT / "notebooks"
    if not folder.is_dir():
        raise FileNotFoundError(f"no notebooks/ folder in {Path.cwd()} or {ROOT}; run from a clone of alexnet-book")
    return folder


def find_notebooks(folder: str | Path | None = None, only: list[str] | None = None) -> list[Path]:
    """The notebooks of ``folder`` sorted by name; ``only`` keeps those whose name starts with one of its items."""
    folder = Path(folder) if folder is not None else notebooks_folder()
    paths = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    if only:
        wanted = [w.strip().removesuffix(".ipynb") for w in only if w.strip()]
        unknown = [w for w in wanted if not any(p.stem.startswith(w) for p in paths)]
        if unknown:
            raise ValueError(f"--only {','.join(unknown)}: no such notebook in {folder} "
                             f"(have {', '.join(p.stem for p in paths) or 'none'})")
        paths = [p for p in paths if any(p.stem.startswith(w) for w in wanted)]
    return paths


def _code(source: str) -> str:
    """Cell source with IPython magics and shell escapes blanked, so ``ast`` can parse it."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _assigned(tree: ast.AST) -> dict[str, ast.AST]:
    names = {}
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) and node.value is not None else []
        for target in targets:
            if isinstance(target, ast.Name):
                names[target.id] = node.value
    return names


def _read(path: Path, text: str | None = None):
    import nbformat

    try:
        return (nbformat.read(path, as_version=4) if text is None else nbformat.reads(text, as_version=4)), []
    except Exception as error:  # not JSON, not a notebook
        return None, [f"{path.name}: cannot be read as a notebook ({error}); regenerate it with nbformat"]


def committed_text(path: str | Path) -> str | None:
    """The notebook as git will commit it: its staged copy (the index; in a fresh clone, HEAD's copy).

    A working copy may hold outputs -- the nbstripout filter (``make test`` installs it, ``.gitattributes`` names
    it) strips them as the notebook is staged -- so cleanliness is a property of this copy.  None when ``path`` is
    not tracked by git (or git is missing): then the working copy is what there is."""
    path = Path(path).resolve()
    try:
        shown = subprocess.run(["git", "-C", str(path.parent), "show", f":./{path.name}"], capture_output=True,
                               timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return shown.stdout.decode("utf-8") if shown.returncode == 0 else None


def _shown(path: Path) -> str:
    """``path`` as a command run from the project root takes it (relative to the root when inside it)."""
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def check_clean(path: str | Path, *, committed: bool = False) -> list[str]:
    """Why a notebook is not committed clean: outputs, execution counts, saved widget state, papermill's cells,
    a kernel other than the book's (``python3``) or this machine's interpreter details in its metadata.

    committed: check the copy git will commit (``committed_text``: the staged one) rather than the working copy,
    which may hold outputs when the git filter is installed."""
    path = Path(path)
    text = committed_text(path) if committed else None
    nb, problems = _read(path, text)
    if nb is None:
        return problems
    where = f"{_shown(path)}" + (" (as staged for commit)" if text is not None else "")
    fix = f"jupyter nbconvert --clear-output --inplace {shlex.quote(_shown(path))}"
    if text is not None:
        fix += f" && git add {shlex.quote(_shown(path))}"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"{path.name}: cell {i} holds outputs in {where}; clear them before committing "
                            f"(from the project root: {fix})")
        if cell.get("execution_count") is not None:
            problems.append(f"{path.name}: cell {i} has execution_count {cell.execution_count}; commit it null "
                            f"({fix})")
        if "injected-parameters" in cell.metadata.get("tags", []):
            problems.append(f"{path.name}: cell {i} is papermill's injected-parameters cell; commit the source "
                            "notebook, not an executed copy")
    if "widgets" in nb.metadata:
        problems.append(f"{path.name}: metadata holds saved widget state; clear it before committing")
    kernel = nb.metadata.get("kernelspec") or {}
    if (kernel.get("name"), kernel.get("language")) != KERNELSPEC:
        problems.append(f"{path.name}: metadata.kernelspec names kernel {kernel.get('name')!r} (language "
                        f"{kernel.get('language')!r}); every notebook of the book asks for the {KERNELSPEC[0]!r} "
                        "kernel, language 'python' (choose 'Python 3 (ipykernel)' in JupyterLab)")
    extra = sorted(set(nb.metadata.get("language_info") or {}) - {"name"})
    if extra:
        problems.append(f"{path.name}: metadata.language_info holds this machine's interpreter details "
                        f"({', '.join(extra)}); commit only its name (the nbstripout git filter strips the rest)")
    return problems


def check_parameters(path: str | Path) -> list[str]:
    """Why a notebook cannot run in every mode: no first code cell tagged 'parameters', no documented
    ``mode`` in it, or an injected parameter that no later cell reads."""
    path = Path(path)
    nb, problems = _read(path)
    if nb is None:
        return problems
    code_cells = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    if not code_cells:
        return [f"{path.name}: has no code cell; the first must be tagged 'parameters'"]
    tagged = [i for i, c in code_cells if "parameters" in c.metadata.get("tags", [])]
    if not tagged:
        return [f"{path.name}: no code cell is tagged 'parameters'; tag the first one and define "
                'mode = "quick"  # "smoke" | "quick" | "full"']
    first = code_cells[0][0]
    if tagged[0] != first:
        problems.append(f"{path.name}: the parameters cell is cell {tagged[0]}, not the first code cell ({first})")
    parsed = {}
    for i, cell in code_cells:
        try:
            parsed[i] = ast.parse(_code(cell.source))
        except SyntaxError as error:
            problems.append(f"{path.name}: cell {i} is not valid Python ({error.msg}, line {error.lineno})")
    params_index = tagged[0]
    assigned = _assigned(parsed[params_index]) if params_index in parsed else {}
    for name in INJECTED_PARAMETERS:
        if name not in assigned:
            problems.append(f"{path.name}: the parameters cell does not define {name!r}; add "
                            f'{name} = "quick"  # "smoke" | "quick" | "full"')
            continue
        later = [i for i in parsed if i > params_index]
        if not any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)
                   for i in later for n in ast.walk(parsed[i])):
            problems.append(f"{path.name}: the injected parameter {name!r} is never read after the parameters "
                            "cell; the notebook must behave differently in each mode")
    if "mode" in assigned:
        value = assigned["mode"]
        if not (isinstance(value, ast.Constant) and value.value in MODES):
            problems.append(f"{path.name}: mode's default must be one of {', '.join(MODES)}")
        undocumented = [m for m in MODES if m not in nb.cells[params_index].source]
        if undocumented:
            problems.append(f"{path.name}: the parameters cell does not mention mode(s) {', '.join(undocumented)}; "
                            'document them: mode = "quick"  # "smoke" | "quick" | "full"')
    return problems


def check_notebook(path: str | Path, *, committed: bool = False) -> list[str]:
    """Everything that keeps a committed notebook out of the book (``check_clean`` + ``check_parameters``);
    an empty list means it is clean and runs in every mode.  committed: check git's staged copy for cleanliness
    (``check_clean``); the parameters are always those of the working copy."""
    clean = check_clean(path, committed=committed)
    if clean and clean[0].endswith("regenerate it with nbformat"):
        return clean
    return clean + check_parameters(path)


def check_notebooks(paths: list[Path], *, committed: bool = False) -> dict[str, list[str]]:
    """``check_notebook`` for each path: {notebook name: problems}, only the notebooks that have problems."""
    report = {p.name: check_notebook(p, committed=committed) for p in paths}
    return {name: problems for name, problems in report.items() if problems}


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

    from .widget_snapshot import snapshot_notebook

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


# ------------------------------------------------------------------------------------- the overview's tables
# What each mode means for the book as a whole; each notebook's parameters cell says what it does with it.
MODE_MEANING = {
    "smoke": ("a few hundred images (CIFAR-10 cut down, or the synthetic set)", "scaled 32 px network",
              "seconds per notebook: proves every cell runs (CI)"),
    "quick": ("real CIFAR-10: 50,000 training and 10,000 test images, 32×32", "scaled 32 px network",
              "minutes per notebook on a CPU laptop"),
    "full": ("ImageNet (ILSVRC) or a subset at 224×224, as in §2", "the paper's two-tower network",
             "hours to days on GPUs, the paper's scale"),
}


def markdown_table(rows: list[dict]) -> str:
    """A list of same-keyed dicts as a Markdown table (cells may hold links), for ``IPython.display.Markdown``."""
    if not rows:
        return ""
    keys = list(rows[0])
    cell = lambda value: "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(cell(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def notebook_link(name: str, folder: str | Path | None = None) -> str:
    """A Markdown link to ``name``.ipynb (relative, so it opens in JupyterLab), marked when not written yet."""
    folder = Path(folder) if folder is not None else ROOT / "notebooks"
    link = f"[{name}]({name}.ipynb)"
    return link if (folder / f"{name}.ipynb").exists() else f"{link} (not yet written)"


def book_map(folder: str | Path | None = None) -> list[dict]:
    """The map of the book: each notebook, what it shows, the paper's sections, figures and tables."""
    return [{"notebook": notebook_link(name, folder), "what it shows": what, "paper §": sections,
             "figures / tables": figures or "—"} for name, what, sections, figures in CHAPTERS]


def errata_table(folder: str | Path | None = None) -> list[dict]:
    """The paper's and the seed's errata (``paper.ERRATA``), each linked to the notebook that demonstrates it."""
    from . import paper

    return [{"as printed": erratum, "what is right": correction, "demonstrated in": notebook_link(name, folder)}
            for erratum, correction, name in paper.ERRATA]


def seed_faults_table(corrected=None) -> list[dict]:
    """The seed document's faults, each run here (``seed.check_seed_listing``; notebook 02 shows them in full)."""
    from .seed import check_seed_listing

    return [{"fault": row.fault, "the seed": row.seed, "the paper": row.paper, "running it shows": row.result,
             "shown": "yes" if row.shown else "NO: the demonstration failed"}
            for row in check_seed_listing(corrected).itertuples()]


def paper_network_table() -> list[dict]:
    """The two-GPU network of §3.5 / Fig. 2, layer by layer, with the parameters and MACs of PAPER.md §1."""
    from . import paper

    rows = []
    for name, out, kernel, stride, pad, groups in paper.CONV_LAYERS:
        rows.append({"layer": name, "maps": f"{out} = {out // 2}+{out // 2}", "kernel": f"{kernel}×{kernel}",
                     "stride": stride, "pad": pad,
                     "reads": "image" if name == "conv1" else "own tower" if groups == 2 else "both towers",
                     "parameters": f"{paper.PARAMETERS[name]:,}", "MMAC": paper.MMAC[name]})
    for name, out in paper.FC_LAYERS:
        rows.append({"layer": name, "maps": f"{out}", "kernel": "", "stride": "", "pad": "", "reads": "both towers",
                     "parameters": f"{paper.PARAMETERS[name]:,}", "MMAC": paper.MMAC[name]})
    rows.append({"layer": "total", "maps": "", "kernel": "", "stride": "", "pad": "", "reads": "",
                 "parameters": f"{paper.TOTAL_PARAMETERS:,}", "MMAC": f"{paper.TOTAL_GMAC * 1000:.0f}"})
    return rows


def paper_recipe_table() -> list[dict]:
    """The training recipe and layer hyper-parameters (§3.3, §3.4, §4, §5) as the paper states them."""
    from . import paper

    r = paper.RECIPE
    return [
        {"what": "optimiser (§5)", "paper": f"SGD, batch {r['batch_size']}, momentum {r['momentum']}, "
                                            f"weight decay {r['weight_decay']}"},
        {"what": "learning rate (§5)", "paper": f"{r['lr']}, ÷{r['lr_drop_factor']:g} when validation error stops "
                                                f"improving, {r['lr_drops']} times; ≈{r['epochs']} epochs"},
        {"what": "initialisation (§5)", "paper": f"weights N(0, {r['init_std']}); biases 1 in "
                                                 f"{', '.join(r['bias_one_layers'])}, else 0"},
        {"what": "LRN (§3.3)", "paper": ", ".join(f"{k}={v:g}" for k, v in paper.LRN.items())},
        {"what": "overlapping pooling (§3.4)", "paper": f"z={paper.POOL['kernel']}, s={paper.POOL['stride']}"},
        {"what": "dropout (§4.2)", "paper": f"{paper.DROPOUT} on fc6 and fc7"},
        {"what": "data (§2, §4.1)", "paper": f"shorter side {paper.PREPROCESS['rescale']}, random "
                                             f"{paper.PREPROCESS['crop']}² crops + flips, PCA colour noise "
                                             f"σ={paper.PREPROCESS['pca_alpha_std']}, per-pixel mean subtracted"},
        {"what": "test (§4.1, §6)", "paper": f"{paper.TEST_CROPS} crops (corners, centre, flips), softmax averaged"},
        {"what": "hardware (§5)", "paper": f"{r['days']} days"},
    ]


def paper_claims_table() -> list[dict]:
    """Every in-text claim of the paper (``paper.CLAIMS``): what changed, the measured effect, where."""
    from . import paper

    fmt = lambda value: "" if value is None else f"{value:+.1f}"
    return [{"claim": c.description, "top-1 Δ": fmt(c.top1), "top-5 Δ": fmt(c.top5), "in words": c.other,
             "§": c.section} for c in paper.CLAIMS]


def paper_results_tables() -> tuple[list[dict], list[dict]]:
    """Table 1 (ILSVRC-2010 test) and Table 2 (ILSVRC-2012), error rates in percent."""
    from . import paper

    fmt = lambda value: "—" if value is None else f"{value:.1f}"
    table1 = [{"model": m, "top-1": fmt(t1), "top-5": fmt(t5)} for m, t1, t5 in paper.TABLE1]
    table2 = [{"model": m, "top-1 (val)": fmt(t1), "top-5 (val)": fmt(t5), "top-5 (test)": fmt(t5t)}
              for m, t1, t5, t5t in paper.TABLE2]
    return table1, table2


def recorded_timings(path: str | Path | None = None) -> list[dict]:
    """The per-notebook times recorded in docs/book.md's "Measured times" table (seconds per mode)."""
    path = Path(path) if path is not None else ROOT / "docs" / "book.md"
    if not path.exists():
        return []
    records, header = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.lstrip().startswith("|") else None
        if cells is None:
            header = None
        elif cells[0] == "notebook":
            header = cells
        elif header and not set(cells[0]) <= set("-: "):
            for key, value in zip(header[1:], cells[1:]):
                mode = key.split()[0]
                number = re.match(r"[\d.]+", value)
                if mode in MODES and number:
                    records.append({"notebook": cells[0].strip("`"), "mode": mode, "seconds": float(number[0])})
    return records


def environment(mode: str = "quick") -> list[dict]:
    """What this machine brings to the book: Python, torch, the device, cores, data found, where output goes."""
    import torch

    if torch.cuda.is_available():
        device = f"cuda: {torch.cuda.device_count()} × {torch.cuda.get_device_name(0)}"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device = "mps (Apple GPU)"
    else:
        device = f"cpu ({torch.get_num_threads()} threads)"
    try:
        from . import data

        found = data.find_cifar10()
        cifar = str(found) if found else f"not found: the book falls back to the synthetic set ({data.HOW_TO_GET_DATA})"
    except ImportError:
        cifar = "alexnet_book.data not yet available"
    except FileNotFoundError as error:
        cifar = str(error)
    try:
        from .figures import figures_dir

        figures = str(figures_dir())
    except ImportError:
        figures = os.environ.get(FIGURES_ENV, str(ROOT / "build" / "figures"))
    data_set, network, cost = MODE_MEANING[mode]
    return [
        {"what": "Python", "value": f"{platform.python_version()} ({sys.executable})"},
        {"what": "PyTorch", "value": torch.__version__},
        {"what": "device", "value": device},
        {"what": "CPU cores", "value": os.cpu_count()},
        {"what": "CIFAR-10", "value": cifar},
        {"what": f"mode {mode!r}: data", "value": data_set},
        {"what": f"mode {mode!r}: network", "value": network},
        {"what": f"mode {mode!r}: cost", "value": cost},
        {"what": "figures go to", "value": figures},
        {"what": "machine", "value": machine()},
    ]


def timings_table(mode: str = "quick", path: str | Path | None = None) -> tuple[list[dict], str]:
    """Seconds per notebook in ``mode``: measured on this machine (build/book/timings.json) when there, else
    the numbers recorded in docs/book.md.  Returns the rows (with a total) and where they came from."""
    path = Path(path) if path is not None else ROOT / "build" / "book" / "timings.json"
    records = [r for r in read_timings(path) if r["mode"] == mode]
    source = f"measured here ({path})"
    if not records:
        records = [r for r in recorded_timings() if r["mode"] == mode]
        source = "recorded in docs/book.md (not yet run on this machine)"
    if not records:
        return [], f"no {mode} timings yet: run `alexnet-book book --mode {mode}`"
    rows = [{"notebook": r["notebook"], "seconds": f"{r['seconds']:.0f}", "status": r.get("status", "ok")}
            for r in sorted(records, key=lambda r: r["notebook"])]
    total = sum(r["seconds"] for r in records)
    rows.append({"notebook": "total", "seconds": f"{total:.0f} ({total / 60:.1f} min)", "status": ""})
    timed = {r["notebook"] for r in records}
    untimed = [p.stem for p in find_notebooks(ROOT / "notebooks") if p.stem not in timed] if (
        ROOT / "notebooks").is_dir() else []
    if untimed:
        source += f"; not timed yet: {', '.join(untimed)}"
    return rows, source


# ---------------------------------------------------------------------------------------------------- CLI
def cli_main(argv: list[str]) -> int:
    """``alexnet-book book``: run every notebook headless, or --check that they are clean."""
    parser = argparse.ArgumentParser(
        prog="alexnet-book book",
        description="Execute the book's notebooks in order (papermill, headless), write executed copies and "
                    "HTML to --out, figures to --figures, and the wall time per notebook to --out/timings.json.")
    parser.add_argument("--mode", choices=MODES, default="quick",
                        help="smoke: seconds of compute on tiny data; quick: real CIFAR-10 on a CPU in minutes; "
                             "full: paper scale on GPUs (default: quick)")
    parser.add_argument("--only", default="",
                        help="comma-separated notebook prefixes or names to run, e.g. 01,02 (default: all)")
    parser.add_argument("--out", default="build/book", help="folder for executed notebooks, HTML and timings.json "
                                                             "(default: build/book)")
    parser.add_argument("--figures", default=None,
                        help="folder the notebooks save figures to (default: build/figures, not committed; "
                             "--figures figures refreshes the committed notebook figures on purpose)")
    parser.add_argument("--notebooks", default=None,
                        help="folder holding the notebooks (default: ./notebooks, else the one beside the package)")
    parser.add_argument("--kernel", default=None,
                        help="kernelspec name to run the notebooks with (default: a kernel running this Python)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds one cell may run (default: 600 smoke, 3600 quick, none full)")
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first failing notebook")
    parser.add_argument("--check", action="store_true",
                        help="do not run: check the notebooks are committed clean (git's staged copy: no outputs "
                             "or execution counts, the python3 kernel) and have a used 'parameters' cell with a mode")
    args = parser.parse_args(argv)
    only = [w for w in args.only.split(",") if w.strip()]
    try:
        paths = find_notebooks(args.notebooks, only)
        if args.check:
            report = check_notebooks(paths, committed=True)
            for problems in report.values():
                for problem in problems:
                    print(problem, file=sys.stderr)
            print(f"checked {len(paths)} notebook(s): {len(paths) - len(report)} clean, {len(report)} with problems")
            return 1 if report else 0
        records = run_book(args.mode, paths, args.out, args.figures, args.kernel, args.timeout,
                           keep_going=not args.fail_fast)
    except BookError as error:
        print(error, file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as error:
        print(f"alexnet-book book: {error}", file=sys.stderr)
        return 2
    total = sum(r["seconds"] for r in records)
    if args.figures is None:
        from .figures import figures_dir

        folder = figures_dir()
        args.figures = os.path.relpath(folder) if folder.is_relative_to(Path.cwd()) else folder
    print(f"{len(records)} notebook(s) in {args.mode} mode, {total:.0f} s; HTML and executed copies in {args.out}, "
          f"figures in {args.figures}")
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(sys.argv[1:]))
