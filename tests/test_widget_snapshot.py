"""Exported pages show widgets offline: each widget view is replaced by a static snapshot of its last state."""
from __future__ import annotations

import re

import ipywidgets as W
import nbformat
from ipywidgets.embed import dependency_state

from alexnet_book import book
from alexnet_book.widget_snapshot import STATE_MIME, VIEW_MIME, snapshot_notebook

CDN = re.compile(r"unpkg\.com|html-manager|embed-amd|jupyter-js-widgets")


def notebook_with(widget) -> nbformat.NotebookNode:
    """A notebook as an executed one is saved: a cell whose output is ``widget``, its state in the metadata."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("panel")
    cell.outputs = [nbformat.v4.new_output("execute_result", execution_count=1, data={
        "text/plain": repr(widget), VIEW_MIME: {"version_major": 2, "version_minor": 0, "model_id": widget.model_id}})]
    cell.execution_count = 1
    nb.cells = [nbformat.v4.new_markdown_cell("# a panel"), cell]
    nb.metadata["widgets"] = {STATE_MIME: {"version_major": 2, "version_minor": 0,
                                           "state": dependency_state(widget, drop_defaults=True)}}
    return nb


def export(nb, tmp_path) -> str:
    executed = tmp_path / "executed.ipynb"
    nbformat.write(nb, executed)
    return book.export_html(executed, tmp_path / "page.html").read_text()


def test_exported_page_draws_widgets_without_a_widget_manager(tmp_path):
    out = W.Output()
    out.outputs = ({"output_type": "stream", "name": "stdout", "text": "inside the output\n"},)
    panel = W.VBox([W.HTML("<b>hello panel</b>"),
                    W.HBox([W.Dropdown(options=["cifar10", "synthetic"], value="synthetic", description="data set"),
                            W.Button(description="Run")]),
                    W.IntText(value=42, description="epochs", style={"description_width": "11em"}),
                    W.IntProgress(value=3, max=6, description="runs"), W.Label("3 of 6 runs"), out])
    page = export(notebook_with(panel), tmp_path)
    assert not CDN.search(page), CDN.search(page)  # no widget manager from a CDN...
    assert STATE_MIME not in page and VIEW_MIME not in page  # ...and nothing left for one to draw
    snapshot = page[page.index('class="widget-snapshot"'):]
    for shown in ("<b>hello panel</b>", ">synthetic<", ">Run<", 'value="42"', "width:11em", "3 / 6",
                  "3 of 6 runs", "inside the output"):
        assert shown in snapshot, shown
    assert "cifar10" not in snapshot  # the chosen option only, as a closed drop-down shows it


def test_the_ablation_panel_is_drawn_with_its_table_and_chart(tmp_path):
    from alexnet_book.runs import ResultsStore
    from alexnet_book.widgets import AblationPanel

    panel = AblationPanel.from_preset("quick", store=ResultsStore(tmp_path / "results.jsonl"),
                                      train_fn=lambda *a, **k: None, check_data=lambda name: None)
    nb = notebook_with(panel)
    assert snapshot_notebook(nb) == 1 and "widgets" not in nb.metadata
    drawn = nb.cells[1].outputs[0].data["text/html"]
    assert "results/ablations_study.csv" in drawn and "steps (0: epochs)" in drawn
    assert 'class="ablation-table"' in drawn and "padding:2px 10px" in drawn
    assert '<img src="data:image/png;base64,' in drawn  # the chart


def test_a_view_without_saved_state_keeps_its_text(tmp_path):
    nb = notebook_with(W.Label("x"))
    nb.metadata["widgets"][STATE_MIME]["state"] = {}
    assert snapshot_notebook(nb) == 0
    assert set(nb.cells[1].outputs[0].data) == {"text/plain"}
    assert not CDN.search(export(nb, tmp_path))
