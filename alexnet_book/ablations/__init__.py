"""The paper's ablations (§3.1–§7): each claim, the run that re-measures it, and the table beside the paper.

The paper argues for a list of design choices, each credited with an error-rate gain (its §3.1–§4.2, §6, §7).
``ABLATIONS`` holds them as data: a name (the ``paper.CLAIMS`` name where the paper states a number), the
configuration change that removes the choice, and where the paper says so.  ``run_ablations`` trains the
baseline and one network per variant and seed through ``train.train`` -- which reuses finished runs from the
results store by config hash and resumes an interrupted run from its checkpoint -- and returns the table.

Sign convention (the paper's):  delta = error(with the paper's choice) − error(without it), in percentage
points.  The paper's claims are therefore negative ("LRN reduces top-1 error by 1.4%" is −1.4), and a
measured delta agrees in sign when it is negative too.

The package, one module per step (this ``__init__`` exports the public API, so ``from alexnet_book.ablations import
X`` and ``ablations.X`` reach every name): ``presets`` (the rows, their measures, the presets), ``plan`` (which runs
a table needs), ``runner`` (running them, reusing the results store), ``analysis`` (deltas and verdicts),
``tables`` (text, Markdown, LaTeX, CSV), ``plot`` (the chart), ``published`` (Tables 1 and 2 and the reader's runs).
"""
from __future__ import annotations

from .analysis import (POWER, SIZE_WORDS, VERDICTS, ablation_table, add_power, capacity_summary, colour_summary,
                       detectable_effect, epochs_to, half_width, iterations_ratio, seeds_needed, size_against_paper,
                       t_critical, verdict, views_summary)
from .plan import budget_text, plan_runs, select, variant_config
from .plot import plot_ablations, save_ablation_figure
from .presets import (ABLATION, ABLATIONS, BASELINE, CLAIM_ROWS, COLUMNS, MEASURES, NEEDS, POWER_COLUMNS,
                      PRESETS, Ablation, claims_table)
from .published import paper_tables, your_runs
from .runner import (VIEW_ROWS, baseline_networks, cached_results, colour_results, ensemble_results,
                     precision_text, run_ablations, seed_results, trained_capacity, trained_colour,
                     trained_lrn_activity, trained_networks, trained_views)
from ..runs import results_dir  # the committed results folder (notebook 06 reads it as ab.results_dir)
from .tables import (MEASURE_SHORT, capacity_text, colour_text, display_table, export, load_csv, save_csv, to_latex,
                     to_markdown, views_text)

__all__ = ["ABLATION", "ABLATIONS", "BASELINE", "CLAIM_ROWS", "COLUMNS", "MEASURES", "MEASURE_SHORT", "NEEDS",
           "POWER", "POWER_COLUMNS", "PRESETS", "SIZE_WORDS", "VERDICTS", "VIEW_ROWS", "Ablation", "ablation_table",
           "add_power", "baseline_networks", "budget_text", "cached_results", "capacity_summary", "capacity_text",
           "claims_table", "colour_results", "colour_summary", "colour_text", "detectable_effect", "display_table",
           "ensemble_results", "epochs_to", "export",
           "half_width", "iterations_ratio", "load_csv", "paper_tables", "plan_runs", "plot_ablations",
           "precision_text", "results_dir", "run_ablations", "save_ablation_figure", "save_csv", "seed_results",
           "seeds_needed", "select", "size_against_paper", "t_critical", "to_latex", "to_markdown", "trained_capacity",
           "trained_colour", "trained_lrn_activity", "trained_networks", "trained_views", "variant_config", "verdict",
           "views_summary", "views_text", "your_runs"]
