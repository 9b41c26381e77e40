"""The book's notebooks: where they are, which to run, and whether each is committed clean and parameterised
(``check_notebook``, what CI uses)."""
from __future__ import annotations

import ast
import shlex
import subprocess
from pathlib import Path

MODES = ("smoke", "quick", "full")
# The names run_book injects into each notebook's parameters cell; each must be read by the notebook.
INJECTED_PARAMETERS = ("mode",)
KERNEL_NAME = "alexnet-book"
# The kernel every committed notebook asks for (kernelspec name, language): JupyterLab's default Python kernel.
KERNELSPEC = ("python3", "python")
FIGURES_ENV = "ALEXNET_BOOK_FIGURES"
# Seconds one cell may run before the book gives up on it, per mode (None: no limit, for paper-scale runs).
CELL_TIMEOUT = {"smoke": 600, "quick": 3600, "full": None}
ROOT = Path(__file__).resolve().parent.parent.parent


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
