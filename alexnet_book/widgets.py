"""Interactive panels for the notebooks: re-run the paper's ablations (§3.1–§7) and watch the table fill in.

``AblationPanel()`` is an ipywidgets box: pick the data set and scale, the budget, the seeds and the
ablations, press Run.  Runs go through ``ablations.run_ablations`` (so finished runs are reused from the
results store and interrupted ones resume); the progress bar, the table and the chart update as each run
finishes, and runs already in the store are shown as soon as the panel is displayed -- or, while the store
holds none for the chosen settings, the committed study (``results/ablations_study.csv``), with a line saying
so.  A bad choice shows a one-line message in the panel instead of a traceback.
"""
from __future__ import annotations

import base64
import html
import io
import numbers
import re

import ipywidgets as W
import numpy as np

from . import ablations as ab

DATA_SETS = ("cifar10", "synthetic", "imagenet-subset", "imagenette", "imagewoof", "imagenet", "auto")
DEVICES = ("auto", "cpu", "cuda", "mps")
COMMITTED = "ablations_study.csv"  # the committed evidence the panel shows until the reader's own runs exist
LABEL_WIDTH = "11em"  # room for the longest description, "steps (0: epochs)", without an ellipsis
CELL = "padding:2px 10px;border-bottom:1px solid #ddd;vertical-align:top"


def table_html(frame) -> str:
    """A DataFrame as an HTML table whose cells carry their own padding and rules (inline styles: no stylesheet
    is needed, so the columns stay apart in JupyterLab, in the classic notebook and in exported pages)."""
    head = "".join(f'<th style="{CELL};text-align:left;border-bottom:2px solid #888">{html.escape(str(c))}</th>'
                   for c in frame.columns)
    rows = []
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            numeric = isinstance(value, numbers.Number) and not isinstance(value, (bool, np.bool_))
            text = "" if value is None or (isinstance(value, float) and value != value) else str(value)
            cells.append(f'<td style="{CELL};text-align:{"right" if numeric else "left"}">{html.escape(text)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="ablation-table" style="border-collapse:collapse;font-size:0.9em">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def committed_table(path=None):
    """The committed study table (``ablations.load_csv``) or None when it is not there or unreadable."""
    path = ab.results_dir() / COMMITTED if path is None else path
    try:
        return ab.load_csv(path)
    except (FileNotFoundError, ValueError, OSError):
        return None


def parse_seeds(text: str) -> tuple[int, ...]:
    """Seeds typed as "0 1 2" or "0, 1, 2" (or a range "0-4") -> (0, 1, 2)."""
    text = str(text).strip()
    seeds: list[int] = []
    for item in filter(None, re.split(r"[\s,]+", text)):
        match = re.fullmatch(r"(\d+)-(\d+)", item)
        if match:
            lo, hi = int(match[1]), int(match[2])
            if hi < lo:
                raise ValueError(f"seed range {item!r} runs backwards; write it low-high, e.g. 0-4")
            seeds += range(lo, hi + 1)
        elif re.fullmatch(r"\d+", item):
            seeds.append(int(item))
        else:
            raise ValueError(f"seeds must be whole numbers separated by spaces or commas (e.g. '0 1 2'); "
                             f"could not read {item!r}")
    if not seeds:
        raise ValueError("type at least one seed, e.g. '0' or '0 1 2'")
    return tuple(dict.fromkeys(seeds))


class AblationPanel(W.VBox):
    """Choose data, scale, budget, seeds and ablations; Run; the table and chart fill in as runs finish (§3.1–§7).

    ``train_fn`` replaces ``train.train`` (tests inject a fast fake); ``store`` is the results store (a path or
    a ``runs.ResultsStore``; default: train's, ``runs/results.jsonl``); ``check_data(name)`` raises
    ``FileNotFoundError`` when a data set is missing (default: ``data.open_source``, which locates without
    decoding); ``recipe`` and ``base`` are the training recipe every run starts from (``run_ablations``).
    ``committed`` is the table shown while the store holds no runs of the chosen settings: a path of a table
    written by ``ablations.save_csv`` (default: ``results/ablations_study.csv``), or None for none.
    Other keywords set the initial values of the controls.
    """

    def __init__(self, *, train_fn=None, store=None, check_data=None, data: str = "cifar10", scale: str = "scaled",
                 epochs: int = 2, steps: int = 0, limit: int = 0, seeds: str = "0", ablations=None,
                 device: str = "auto", recipe: str = "quick", base: dict | None = None, committed="default"):
        self.train_fn, self.store, self.base, self.recipe = train_fn, store, base, recipe
        self.committed_path = (ab.results_dir() / COMMITTED if committed == "default"
                               else None if committed is None else committed)
        self.committed = committed_table(self.committed_path) if self.committed_path is not None else None
        self.check_data = check_data if check_data is not None else _default_check_data
        style = {"description_width": LABEL_WIDTH}
        self.data = W.Dropdown(options=DATA_SETS if data in DATA_SETS else (data, *DATA_SETS), value=data,
                               description="data set", style=style)
        self.scale = W.Dropdown(options=("scaled", "full"), value=scale, description="scale", style=style)
        self.epochs = W.IntText(value=epochs, description="epochs", style=style)
        self.steps = W.IntText(value=steps, description="steps (0: epochs)", style=style)
        self.limit = W.IntText(value=limit, description="images (0: all)", style=style)
        self.seeds = W.Text(value=str(seeds), description="seeds", placeholder="0 1 2", style=style)
        self.device = W.Dropdown(options=DEVICES, value=device, description="device", style=style)
        self.ablations = W.SelectMultiple(
            options=[(f"{a.name} ({a.section})", a.name) for a in ab.ABLATIONS],
            value=tuple(a.name for a in ab.select(ablations)), rows=min(len(ab.ABLATIONS), 14),
            description="ablations", style=style, layout=W.Layout(width="28em"))
        self.run_button = W.Button(description="Run", button_style="primary", icon="play",
                                   tooltip="train the baseline and the chosen variants (finished runs are reused)")
        self.progress = W.IntProgress(value=0, min=0, max=1, description="runs", style=style)
        self.status = W.Label(value="")
        self.message = W.HTML(value="")
        self.source = W.HTML(value="")  # which table is shown: the reader's runs, or the committed study
        self.table = W.HTML(value="")
        self.chart = W.Output()
        self.last_table = None
        controls = W.HBox([W.VBox([self.data, self.scale, self.epochs, self.steps, self.limit, self.seeds,
                                   self.device]), self.ablations])
        super().__init__([controls, W.HBox([self.run_button, self.progress, self.status]), self.message,
                          self.source, self.table, self.chart])
        self.run_button.on_click(self.run)
        for control in (self.data, self.scale, self.epochs, self.steps, self.limit, self.seeds, self.ablations):
            control.observe(self._changed, names="value")
        self.show_cached()

    @classmethod
    def from_preset(cls, name: str = "quick", **kwargs) -> "AblationPanel":
        """A panel set to one of ``ablations.PRESETS`` ("smoke", "quick", "full"); keywords as for the panel."""
        if name not in ab.PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(ab.PRESETS)}")
        p = ab.PRESETS[name]
        values = dict(data=p["data"], scale=p["scale"], epochs=p["budget_epochs"] or 0, steps=p["budget_steps"] or 0,
                      limit=p["limit"] or 0, seeds=" ".join(map(str, p["seeds"])), device=p["device"],
                      recipe=p["recipe"])
        return cls(**{**values, **kwargs})

    # --- reading the choices ---------------------------------------------------------------------------------
    def settings(self) -> dict:
        """The chosen settings as ``run_ablations`` keywords; a ValueError with one clear line when invalid."""
        if not self.ablations.value:
            raise ValueError("select at least one ablation in the list (ctrl/shift-click to choose several)")
        epochs, steps, limit = int(self.epochs.value), int(self.steps.value), int(self.limit.value)
        if steps < 0 or epochs < 0 or limit < 0:
            raise ValueError("epochs, steps and images must not be negative")
        if steps == 0 and epochs == 0:
            raise ValueError("the budget is 0: set epochs (or steps) to at least 1")
        seeds = parse_seeds(self.seeds.value)
        return dict(data=self.data.value, scale=self.scale.value, budget_epochs=epochs or None,
                    budget_steps=steps or None, seeds=seeds, device=self.device.value,
                    ablations=list(self.ablations.value), limit=limit or None, recipe=self.recipe)

    def _changed(self, change=None):
        self.show_cached()

    # --- showing ---------------------------------------------------------------------------------------------
    def show_message(self, text: str, kind: str = "error") -> None:
        colour = {"error": "#b00020", "info": "#333333", "done": "#1b5e20"}[kind]
        self.message.value = f'<span style="color:{colour}">{html.escape(text)}</span>' if text else ""

    def show_table(self, table) -> None:
        """Put the table (HTML) and the chart (a matplotlib figure as PNG) into the panel."""
        import matplotlib.pyplot as plt

        self.last_table = table
        self.table.value = table_html(ab.display_table(table))
        fig = ab.plot_ablations(table)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
        plt.close(fig)
        png = base64.b64encode(buffer.getvalue()).decode()
        self.chart.outputs = ({"output_type": "display_data", "metadata": {},
                               "data": {"image/png": png, "text/plain": "<ablation chart>"}},)

    def show_cached(self) -> int:
        """Show the runs of the current choices already in the results store; returns how many were found."""
        try:
            s = self.settings()
            runs = ab.plan_runs(**s, base=self.base)
            found = ab.cached_results(runs, self.store)
        except Exception:  # a half-typed choice, or no store yet: say so only when the reader presses Run
            self.status.value = ""
            return 0
        self.progress.max, self.progress.value = len(runs), len(found)
        self.status.value = f"{len(found)} of {len(runs)} runs in the results store"
        if found:
            self.show_table(ab.ablation_table(found, s["ablations"], s["seeds"], data=s["data"], scale=s["scale"],
                                              budget=ab.budget_text(s["budget_epochs"], s["budget_steps"],
                                                                    runs[0][2].limit)))
            self.source.value = _note("Shown: your runs of the settings above, from the results store.")
        else:
            self.show_committed()
        return len(found)

    def show_committed(self) -> bool:
        """Show the committed study table (or nothing when there is none), with a line saying what it is."""
        if self.committed is None:
            self.table.value, self.chart.outputs, self.source.value = "", (), ""
            return False
        self.show_table(self.committed)
        t = self.committed
        made = ", ".join(x for x in (t.attrs.get("command", ""), t.attrs.get("date", "")[:10]) if x)
        what = ", ".join(str(t[c].iloc[0]) for c in ("data", "scale", "budget") if len(t) and t[c].iloc[0])
        self.source.value = _note(
            f"Shown: the committed study, {_shown_path(self.committed_path)} ({what}; made by {made}). The results "
            f"store holds no runs of the settings above yet: press Run to re-run the chosen ablations at that "
            f"budget (finished runs are reused); the table and chart then show your runs.")
        return True

    # --- running ---------------------------------------------------------------------------------------------
    def run(self, button=None):
        """Run the chosen ablations (the Run button): progress, table and chart update after every run."""
        try:
            s = self.settings()
            self.check_data(s["data"])
            runs = ab.plan_runs(**s, base=self.base)
        except (ValueError, FileNotFoundError) as err:
            self.show_message(str(err))
            return None
        self.show_message("")
        self.source.value = _note("Shown: your runs of the settings above, as they finish (reused ones at once).")
        self.progress.max, self.progress.value = len(runs), 0
        self.progress.bar_style = ""
        self.status.value = f"0 of {len(runs)} runs"
        self.run_button.disabled = True

        def on_run(i, n, name, seed, result):
            self.progress.value = i
            how = "reused" if getattr(result, "reused", False) else "trained"
            self.status.value = f"{i} of {n} runs: {name} seed {seed} ({how})"

        try:
            table = ab.run_ablations(**s, store=self.store, progress=False, on_update=self.show_table,
                                     base=self.base, train_fn=self.train_fn, on_run=on_run)
        except KeyboardInterrupt:
            self.show_message("interrupted: press Run again to pick up where it stopped", "info")
            return None
        except Exception as err:  # the panel shows one line, never a traceback
            self.progress.bar_style = "danger"
            self.show_message(f"{type(err).__name__}: {err}")
            return None
        finally:
            self.run_button.disabled = False
        self.progress.bar_style = "success"
        self.show_table(table)
        self.show_message(f"done: {len(runs)} runs", "done")
        return table


def _note(text: str) -> str:
    return f'<span style="color:#555">{html.escape(text)}</span>'


def _shown_path(path) -> str:
    """``path`` relative to the project when it lies inside it (results/ablations_study.csv), else as given."""
    from pathlib import Path

    from .files import project_root

    try:
        return str(Path(path).resolve().relative_to(project_root().resolve()))
    except ValueError:
        return str(path)


def _default_check_data(name: str) -> None:
    """Raise FileNotFoundError (or ValueError) when the data set cannot be located; nothing is decoded."""
    from .data import open_source

    open_source(name)
