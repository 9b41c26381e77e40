"""The book end to end: execute every notebook headless, export HTML and figures, check notebooks are clean.

``run_book(mode="quick")`` runs ``notebooks/NN_*.ipynb`` in name order with papermill, injecting only
``mode`` ("smoke" | "quick" | "full") into each notebook's ``parameters`` cell, with the notebooks folder as
the working directory.  It writes the executed copies and their rendered HTML to ``build/book/``, the wall time
of each notebook to ``build/book/timings.json`` and, through ``figures.save_figure``, the notebooks' figures to
``build/figures/`` (or the folder given, through ``ALEXNET_BOOK_FIGURES``): running the book leaves the
committed tree as it was.  A failing notebook fails the run and is named with its failing cell.
``check_notebook`` is what CI uses to keep committed notebooks clean and parameterised.

The package: ``notebooks`` (finding and checking them), ``run`` (executing them, HTML, timings), ``overview``
(notebook 00's tables).  This ``__init__`` exports the public API, so ``book.X`` reaches every name.
"""
from __future__ import annotations

from .notebooks import (CELL_TIMEOUT, FIGURES_ENV, INJECTED_PARAMETERS, KERNEL_NAME, KERNELSPEC, MODES, ROOT,
                        check_clean, check_notebook, check_notebooks, check_parameters, committed_text,
                        find_notebooks, notebooks_folder)
from .overview import (CHAPTERS, MODE_MEANING, book_map, environment, errata_table, markdown_table, notebook_link,
                       paper_claims_table, paper_network_table, paper_recipe_table, paper_results_tables,
                       recorded_timings, seed_faults_table, timings_table)
from .run import BookError, NotebookFailure, export_html, kernel_spec_dir, read_timings, run_book, write_timings

__all__ = ["CELL_TIMEOUT", "CHAPTERS", "FIGURES_ENV", "INJECTED_PARAMETERS", "KERNELSPEC", "KERNEL_NAME",
           "MODES", "MODE_MEANING", "ROOT", "BookError", "NotebookFailure", "book_map", "check_clean",
           "check_notebook", "check_notebooks", "check_parameters", "committed_text", "environment",
           "errata_table", "export_html", "find_notebooks", "kernel_spec_dir", "markdown_table", "notebook_link",
           "notebooks_folder", "paper_claims_table", "paper_network_table", "paper_recipe_table",
           "paper_results_tables", "read_timings", "recorded_timings", "run_book", "seed_faults_table",
           "timings_table", "write_timings"]
