"""The overview's tables (notebook 00): the map of the book, the paper on one page, the errata, this machine,
the time each notebook takes."""
from __future__ import annotations

import os
import platform
import re
import sys
from pathlib import Path

from ..files import machine
from .notebooks import FIGURES_ENV, MODES, ROOT, find_notebooks
from .run import read_timings

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
    from .. import paper

    return [{"as printed": erratum, "what is right": correction, "demonstrated in": notebook_link(name, folder)}
            for erratum, correction, name in paper.ERRATA]


def seed_faults_table(corrected=None) -> list[dict]:
    """The seed document's faults, each run here (``seed.check_seed_listing``; notebook 02 shows them in full)."""
    from ..seed import check_seed_listing

    return [{"fault": row.fault, "the seed": row.seed, "the paper": row.paper, "running it shows": row.result,
             "shown": "yes" if row.shown else "NO: the demonstration failed"}
            for row in check_seed_listing(corrected).itertuples()]


def paper_network_table() -> list[dict]:
    """The two-GPU network of §3.5 / Fig. 2, layer by layer, with the parameters and MACs of PAPER.md §1."""
    from .. import paper

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
    from .. import paper

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
    from .. import paper

    fmt = lambda value: "" if value is None else f"{value:+.1f}"
    return [{"claim": c.description, "top-1 Δ": fmt(c.top1), "top-5 Δ": fmt(c.top5), "in words": c.other,
             "§": c.section} for c in paper.CLAIMS]


def paper_results_tables() -> tuple[list[dict], list[dict]]:
    """Table 1 (ILSVRC-2010 test) and Table 2 (ILSVRC-2012), error rates in percent."""
    from .. import paper

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
        from .. import data

        found = data.find_cifar10()
        cifar = str(found) if found else f"not found: the book falls back to the synthetic set ({data.HOW_TO_GET_DATA})"
    except ImportError:
        cifar = "alexnet_book.data not yet available"
    except FileNotFoundError as error:
        cifar = str(error)
    try:
        from ..figures import figures_dir

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

