"""The book's notebooks: committed clean, parameterised with a mode that is read, executable in smoke mode.

Also proves the checker and the runner can fail: constructed dirty, mode-less and failing notebooks.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest

from alexnet_book import book
from alexnet_book.commands import book as book_command

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = book.find_notebooks(ROOT / "notebooks")
IDS = [p.stem for p in NOTEBOOKS]


# ----------------------------------------------------------------------------- the committed notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_notebook_is_clean(path):
    # git's staged copy (HEAD's in a fresh clone): a working copy may hold outputs, which the nbstripout filter
    # strips as the notebook is staged
    assert book.check_clean(path, committed=True) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_has_a_mode_parameter_that_it_reads(path):
    assert book.check_parameters(path) == []


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_executes_in_smoke_mode(path, tmp_path):
    records = book.run_book(mode="smoke", notebooks=[path], out_dir=tmp_path, figures_dir=tmp_path / "figures",
                            progress=False)
    assert [r["status"] for r in records] == ["ok"]
    assert (tmp_path / f"{path.stem}.html").stat().st_size > 0


def test_the_book_has_its_overview():
    assert "00_overview" in IDS


# ------------------------------------------------------------------------------- constructed notebooks
def make_notebook(path: Path, cells: list[str], *, params: str | None = 'mode = "quick"  # "smoke" | "quick" | "full"',
                  params_tag: bool = True) -> Path:
    """A notebook whose first code cell is ``params`` (tagged 'parameters'), then ``cells``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_markdown_cell("# a test notebook"))
    if params is not None:
        cell = nbformat.v4.new_code_cell(params)
        if params_tag:
            cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def test_checker_accepts_a_clean_parameterised_notebook(tmp_path):
    path = make_notebook(tmp_path / "01_good.ipynb", ["%matplotlib inline\nsteps = 1 if mode == 'smoke' else 10"])
    assert book.check_notebook(path) == []


def test_checker_rejects_outputs_and_execution_counts(tmp_path):
    path = make_notebook(tmp_path / "01_dirty.ipynb", ["print(mode)"])
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="quick\n")]
    nb.cells[1].execution_count = 1
    nbformat.write(nb, path)
    problems = book.check_clean(path)
    assert any("cell 2 holds outputs" in p for p in problems)
    assert any("cell 1 has execution_count 1" in p for p in problems)
    assert book.check_parameters(path) == []  # the two checks are independent


def test_clean_check_reads_what_git_will_commit_and_its_fix_works_as_printed(tmp_path):
    import shlex
    import subprocess

    path = make_notebook(tmp_path / "repo" / "notebooks" / "01_run.ipynb", ["print(mode)"])
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    subprocess.run(["git", "-C", str(tmp_path / "repo"), "add", "notebooks/01_run.ipynb"], check=True)
    nb = nbformat.read(path, as_version=4)  # run in JupyterLab after staging: the working copy holds outputs
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="quick\n")]
    nb.cells[2].execution_count = 1
    nbformat.write(nb, path)
    assert book.check_clean(path, committed=True) == []  # the staged copy is clean
    assert any("holds outputs" in p for p in book.check_clean(path))  # the working copy is not
    # a dirty notebook under the project root: the printed command works from the root exactly as printed
    dirty = ROOT / "build" / "test-clean-check" / "01_dirty.ipynb"  # build/ is git-ignored
    try:
        make_notebook(dirty, ["print(mode)"])
        nbformat.write(nb, dirty)
        (problem, *_) = book.check_clean(dirty, committed=True)
        command = problem.split("from the project root: ", 1)[1].rstrip(")")
        assert command == "jupyter nbconvert --clear-output --inplace build/test-clean-check/01_dirty.ipynb"
        argv = shlex.split(command)
        subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, check=True, capture_output=True)
        assert book.check_clean(dirty) == []
    finally:
        dirty.unlink(missing_ok=True)
        dirty.parent.rmdir()


def test_clean_check_wants_the_book_s_kernel_and_no_interpreter_details(tmp_path):
    path = make_notebook(tmp_path / "01_kernel.ipynb", ["print(mode)"])
    nb = nbformat.read(path, as_version=4)
    nb.metadata.kernelspec = {"name": "alexnet-book", "display_name": "Python 3 (alexnet-book)", "language": "python"}
    nb.metadata.language_info = {"name": "python", "version": "3.11.7", "pygments_lexer": "ipython3"}
    nbformat.write(nb, path)
    problems = book.check_clean(path)
    assert any("kernel 'alexnet-book'" in p for p in problems)
    assert any("language_info holds this machine's interpreter details (pygments_lexer, version)" in p
               for p in problems)


def test_git_filter_strips_what_the_clean_check_rejects(tmp_path):
    """The Makefile's nbstripout filter (as git runs it: the notebook on stdin) yields what check_clean accepts,
    and leaves every committed notebook byte for byte as it is (no churn once the filter is installed)."""
    import re
    import shlex
    import subprocess

    pytest.importorskip("nbstripout", reason="nbstripout is in the [dev] extras: pip install -e '.[dev]'")
    assert "*.ipynb filter=nbstripout" in (ROOT / ".gitattributes").read_text()
    args = shlex.split(re.search(r"^NBSTRIPOUT_ARGS\s*:?=\s*(.+)$", (ROOT / "Makefile").read_text(), re.M).group(1))
    strip = lambda text: subprocess.run([sys.executable, "-m", "nbstripout", *args], input=text, text=True,
                                        capture_output=True, check=True).stdout
    path = make_notebook(tmp_path / "01_lab.ipynb", ["print(mode)"])
    nb = nbformat.read(path, as_version=4)  # as JupyterLab saves it after a run
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="quick\n")]
    nb.cells[2].execution_count = 3
    nb.cells[2].metadata["execution"] = {"iopub.status.idle": "2026-11-27T10:00:00Z"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.metadata.language_info = {"name": "python", "version": "3.11.7", "mimetype": "text/x-python",
                                 "codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                                 "nbconvert_exporter": "python", "pygments_lexer": "ipython3"}
    nbformat.write(nb, path)
    assert len(book.check_clean(path)) == 4
    path.write_text(strip(path.read_text()))
    assert book.check_clean(path) == []
    assert [c.id for c in nbformat.read(path, as_version=4).cells] == [c.id for c in nb.cells]  # ids kept
    for committed in NOTEBOOKS:
        text = book.committed_text(committed) or committed.read_text()
        assert strip(text) == text, committed.name


def test_checker_rejects_saved_widget_state_and_executed_copies(tmp_path):
    path = make_notebook(tmp_path / "01_executed.ipynb", ["print(mode)"])
    nb = nbformat.read(path, as_version=4)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    injected = nbformat.v4.new_code_cell('mode = "smoke"')
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(2, injected)
    nbformat.write(nb, path)
    problems = book.check_clean(path)
    assert any("widget state" in p for p in problems)
    assert any("injected-parameters" in p for p in problems)


@pytest.mark.parametrize("params, cells, expected", [
    (None, ["print('no parameters')"], "no code cell is tagged 'parameters'"),
    ("steps = 3", ["print(steps)"], "does not define 'mode'"),
    ('mode = "quick"  # "smoke" | "quick" | "full"', ["print('mode is ignored')"], "never read"),
    # assigning mode again is not reading it
    ('mode = "quick"  # "smoke" | "quick" | "full"', ["mode = 'full'"], "never read"),
    ('mode = "quick"', ["print(mode)"], "does not mention mode(s) smoke, full"),
    ('mode = "fast"  # "smoke" | "quick" | "full"', ["print(mode)"], "default must be one of"),
    ('mode = "quick"  # "smoke" | "quick" | "full"', ["print(mode"], "not valid Python"),
])
def test_checker_rejects_a_missing_undocumented_or_unread_mode(tmp_path, params, cells, expected):
    path = make_notebook(tmp_path / "02_bad.ipynb", cells, params=params)
    problems = book.check_parameters(path)
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("02_bad.ipynb: ") for p in problems)  # each problem names the notebook


def test_checker_rejects_a_parameters_cell_that_is_not_first(tmp_path):
    path = make_notebook(tmp_path / "03_late.ipynb", ["print(mode)"], params_tag=False)
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(1, nbformat.v4.new_code_cell("import math"))
    nb.cells[2].metadata["tags"] = ["parameters"]
    nbformat.write(nb, path)
    assert any("not the first code cell" in p for p in book.check_parameters(path))


def test_checker_rejects_a_file_that_is_not_a_notebook(tmp_path):
    path = tmp_path / "04_broken.ipynb"
    path.write_text("{ not json")
    assert "cannot be read as a notebook" in book.check_notebook(path)[0]


def test_cli_check_fails_on_a_dirty_folder_and_passes_on_a_clean_one(tmp_path, capsys):
    make_notebook(tmp_path / "good" / "01_good.ipynb", ["print(mode)"])
    assert book_command.main(["--check", "--notebooks", str(tmp_path / "good")]) == 0
    make_notebook(tmp_path / "bad" / "01_bad.ipynb", ["print('x')"])
    assert book_command.main(["--check", "--notebooks", str(tmp_path / "bad")]) == 1
    assert "01_bad.ipynb: the injected parameter 'mode' is never read" in capsys.readouterr().err


def test_find_notebooks_selects_by_prefix_and_names_unknown_ones(tmp_path):
    for name in ("00_overview", "01_layers", "02_architecture"):
        make_notebook(tmp_path / f"{name}.ipynb", ["print(mode)"])
    assert [p.stem for p in book.find_notebooks(tmp_path)] == ["00_overview", "01_layers", "02_architecture"]
    assert [p.stem for p in book.find_notebooks(tmp_path, ["02", "00_overview.ipynb"])] == [
        "00_overview", "02_architecture"]
    with pytest.raises(ValueError, match="--only 07: no such notebook"):
        book.find_notebooks(tmp_path, ["07"])


# ------------------------------------------------------------------------------------------- the runner
PROBE = """import json, os, sys
probe = {"mode": mode, "cwd": os.getcwd(), "figures": os.environ.get("ALEXNET_BOOK_FIGURES"),
         "python": sys.executable}
open("probe.json", "w").write(json.dumps(probe))"""


def test_run_book_injects_mode_and_sets_cwd_figures_and_kernel(tmp_path):
    notebooks = tmp_path / "notebooks"
    path = make_notebook(notebooks / "01_probe.ipynb", [PROBE])
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("Next: [02_next](02_next.ipynb#Section)"))
    nbformat.write(nb, path)
    out, figures = tmp_path / "out", tmp_path / "figs"
    records = book.run_book(mode="smoke", notebooks=notebooks, out_dir=out, figures_dir=figures, progress=False)
    probe = json.loads((notebooks / "probe.json").read_text())
    assert probe == {"mode": "smoke", "cwd": str(notebooks.resolve()), "figures": str(figures.resolve()),
                     "python": sys.executable}
    assert (out / "01_probe.ipynb").exists() and "injected-parameters" in (out / "01_probe.ipynb").read_text()
    html = (out / "01_probe.html").read_text()
    assert "<html" in html[:2000].lower()
    assert 'href="02_next.html#Section"' in html and "02_next.ipynb" not in html  # links follow to the HTML
    assert [(r["notebook"], r["mode"], r["status"]) for r in records] == [("01_probe", "smoke", "ok")]
    assert json.loads((out / "timings.json").read_text())[0]["seconds"] == records[0]["seconds"]
    assert book.check_notebook(path) == []  # the committed notebook is left clean


def test_run_book_leaves_figures_out_of_the_committed_folder_by_default(tmp_path, monkeypatch):
    """Without --figures the runner sets no ALEXNET_BOOK_FIGURES: the notebooks' save_figure writes build/figures."""
    import shutil

    import papermill

    seen = []

    def execute(source, executed, **kwargs):
        seen.append(os.environ.get(book.FIGURES_ENV))
        shutil.copy(source, executed)

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    monkeypatch.delenv(book.FIGURES_ENV, raising=False)
    path = make_notebook(tmp_path / "notebooks" / "01_x.ipynb", ["print(mode)"])
    book.run_book(mode="quick", notebooks=[path], out_dir=tmp_path / "out", progress=False)
    assert seen == [None]
    book.run_book(mode="quick", notebooks=[path], out_dir=tmp_path / "out", figures_dir=tmp_path / "f",
                  progress=False)
    assert seen[1] == str((tmp_path / "f").resolve())


def test_a_failing_notebook_fails_the_book_naming_notebook_and_cell(tmp_path):
    notebooks = tmp_path / "notebooks"
    make_notebook(notebooks / "01_fails.ipynb", ["x = 1", "steps = {'smoke': 0}[mode]\n1 / steps"])
    make_notebook(notebooks / "02_runs.ipynb", ["print(mode)"])
    with pytest.raises(book.BookError) as caught:
        book.run_book(mode="smoke", notebooks=notebooks, out_dir=tmp_path / "out", figures_dir=tmp_path / "f",
                      progress=False)
    (failure,) = caught.value.failures
    # index 3 in the committed notebook (markdown, parameters, x = 1, the failing cell), although papermill
    # inserted its injected-parameters cell before it in the executed copy
    assert (failure.notebook, failure.cell_index, failure.first_line) == ("01_fails", 3, "steps = {'smoke': 0}[mode]")
    assert (failure.ename, failure.evalue) == ("ZeroDivisionError", "division by zero")
    assert "01_fails: cell 3 `steps = {'smoke': 0}[mode]` raised ZeroDivisionError: division by zero" in str(
        caught.value)
    # keep_going: the next notebook still ran, and both timings were recorded
    assert [(r["notebook"], r["status"]) for r in caught.value.timings] == [("01_fails", "failed"), ("02_runs", "ok")]
    assert len(json.loads((tmp_path / "out" / "timings.json").read_text())) == 2


def test_cli_returns_non_zero_and_names_the_failing_notebook(tmp_path, capsys):
    notebooks = tmp_path / "notebooks"
    make_notebook(notebooks / "01_fails.ipynb", ["if mode == 'smoke':\n    raise RuntimeError('broken in smoke')"])
    make_notebook(notebooks / "02_never.ipynb", ["print(mode)"])
    code = book_command.main(["--mode", "smoke", "--notebooks", str(notebooks), "--out", str(tmp_path / "out"),
                          "--figures", str(tmp_path / "f"), "--fail-fast"])
    assert code == 1
    err = capsys.readouterr().err
    assert "01_fails: cell 2 `if mode == 'smoke':` raised RuntimeError: broken in smoke" in err
    assert not (tmp_path / "out" / "02_never.ipynb").exists()  # --fail-fast stopped the book


def test_timings_merge_keeps_other_notebooks_and_modes(tmp_path):
    path = tmp_path / "timings.json"
    book.write_timings(path, [{"notebook": "01", "mode": "quick", "seconds": 5.0},
                              {"notebook": "02", "mode": "quick", "seconds": 7.0}])
    book.write_timings(path, [{"notebook": "01", "mode": "quick", "seconds": 3.0},
                              {"notebook": "01", "mode": "smoke", "seconds": 1.0}])
    got = {(r["notebook"], r["mode"]): r["seconds"] for r in book.read_timings(path)}
    assert got == {("01", "quick"): 3.0, ("02", "quick"): 7.0, ("01", "smoke"): 1.0}


def test_bad_input_is_named(tmp_path):
    with pytest.raises(ValueError, match="mode 'fast'"):
        book.run_book(mode="fast", notebooks=[tmp_path / "x.ipynb"])
    with pytest.raises(FileNotFoundError, match="no such notebook"):
        book.run_book(mode="smoke", notebooks=[tmp_path / "missing.ipynb"])
    (tmp_path / "timings.json").write_text("{oops")
    with pytest.raises(ValueError, match="timings.json is not valid JSON"):
        book.read_timings(tmp_path / "timings.json")


def test_kernel_spec_runs_this_python(tmp_path):
    from jupyter_client.kernelspec import KernelSpecManager

    folder = book.kernel_spec_dir(tmp_path)
    spec = KernelSpecManager(kernel_dirs=[str(folder / "kernels")]).get_kernel_spec(book.KERNEL_NAME)
    assert spec.argv[0] == sys.executable


# ---------------------------------------------------------------------------------- the overview's tables
def test_recorded_timings_read_the_docs_table(tmp_path):
    docs = tmp_path / "book.md"
    docs.write_text("# x\n\n| mode | data |\n|---|---|\n| smoke | tiny |\n\nSome text.\n\n"
                    "| notebook | smoke (s) | quick (s) |\n|---|---|---|\n| 00_overview | 11 | 18 |\n"
                    "| `06_ablations` | 28.5 | |\n\nafter\n")
    assert book.recorded_timings(docs) == [
        {"notebook": "00_overview", "mode": "smoke", "seconds": 11.0},
        {"notebook": "00_overview", "mode": "quick", "seconds": 18.0},
        {"notebook": "06_ablations", "mode": "smoke", "seconds": 28.5}]


def test_docs_record_the_smoke_time_of_every_notebook_they_name():
    recorded = book.recorded_timings(ROOT / "docs" / "book.md")
    smoke = {r["notebook"] for r in recorded if r["mode"] == "smoke"}
    assert "00_overview" in smoke
    assert smoke <= set(IDS)  # no time recorded for a notebook that does not exist


def test_timings_table_prefers_this_machine_then_the_docs(tmp_path):
    measured = tmp_path / "timings.json"
    book.write_timings(measured, [{"notebook": "00_overview", "mode": "quick", "seconds": 30.0, "status": "ok"},
                                  {"notebook": "01_layers", "mode": "quick", "seconds": 90.0, "status": "ok"}])
    rows, source = book.timings_table("quick", measured)
    assert source.startswith("measured here") and rows[-1]["seconds"] == "120 (2.0 min)"
    rows, source = book.timings_table("smoke", tmp_path / "absent.json")
    assert source.startswith("recorded in docs/book.md") and rows[0]["notebook"] == "00_overview"


def test_map_and_errata_link_the_book_s_notebooks(tmp_path):
    from alexnet_book import paper

    names = [name for name, *_ in book.CHAPTERS]
    assert names == sorted(names) and names[0] == "00_overview" and len(names) == 9
    assert {name for *_, name in paper.ERRATA} <= set(names)  # every erratum points at a chapter
    make_notebook(tmp_path / "02_architecture.ipynb", ["print(mode)"])
    links = {row["demonstrated in"] for row in book.errata_table(tmp_path)}
    assert "[02_architecture](02_architecture.ipynb)" in links
    assert "[01_layers](01_layers.ipynb) (not yet written)" in links
    table = book.markdown_table(book.book_map(tmp_path))
    assert table.count("\n") == len(book.CHAPTERS) + 1 and "| [02_architecture](02_architecture.ipynb) |" in table


def test_paper_network_table_adds_up_to_the_paper_s_totals():
    from alexnet_book import paper

    rows = book.paper_network_table()
    layers, total = rows[:-1], rows[-1]
    assert [r["layer"] for r in layers] == list(paper.PARAMETERS)
    assert sum(int(r["parameters"].replace(",", "")) for r in layers) == paper.TOTAL_PARAMETERS
    assert total["parameters"] == f"{paper.TOTAL_PARAMETERS:,}"
    assert [r["reads"] for r in layers[:5]] == ["image", "own tower", "both towers", "own tower", "own tower"]


def test_markdown_table_escapes_pipes():
    assert book.markdown_table([{"a": "x|y", "b": None}]) == "| a | b |\n|---|---|\n| x\\|y |  |"


def test_environment_reports_device_data_and_mode():
    rows = {r["what"]: str(r["value"]) for r in book.environment("smoke")}
    assert rows["PyTorch"] and ("cpu" in rows["device"] or "cuda" in rows["device"] or "mps" in rows["device"])
    assert "CIFAR-10" in rows and "mode 'smoke': network" in rows
