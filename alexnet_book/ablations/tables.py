"""The table as the reader sees it: text, Markdown, LaTeX, the CSV with its header (and back), all of them
written at once by ``export`` (into ``runs.results_dir()``, where the committed tables live)."""
from __future__ import annotations

import datetime
import io
import json
import math
from pathlib import Path

from ..files import atomic_write_text, machine
from .plot import plot_ablations, save_ablation_figure
from .analysis import POWER, add_power, why_empty
from .presets import ABLATION, COLUMNS, NEEDS, POWER_COLUMNS


def _number(x, std=None, signed=True) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    text = f"{x:+.1f}" if signed else f"{x:.1f}"
    if std is not None and not (isinstance(std, float) and math.isnan(std)):
        text += f" ± {std:.1f}"
    return text.replace("-", "−")


def _over_seeds(s: dict) -> str:
    """A check's mean ± std over seeds with its 95% interval, or the one seed's value: "+0.2 ± 0.5 points over 5
    seeds (95% −0.3 … +0.8)"."""
    if s["n"] > 1:
        return (f"{_number(s['mean'], s['std'])} points over {s['n']} seeds "
                f"(95% {_number(s['low'])} … {_number(s['high'])})")
    return f"{_number(s['mean'])} points, one seed (no interval)"


def capacity_text(summary: dict) -> str:
    """One line for a ``capacity_summary`` entry, e.g. "remove_conv4, all 20000 training images: error with the
    layer − without −1.0 ± 0.8 points over 7 seeds (95% −1.7 … −0.3): capacity used"."""
    s = summary
    return (f"{s['ablation']}, all {s['images']} training images: error with the layer − without {_over_seeds(s)}: "
            + ("capacity used" if s["used"] else "capacity not shown used"))


def colour_text(summary: dict) -> str:
    """One line for a ``colour_summary`` entry, e.g. "pca_colour, 10000 validation images: the networks trained
    without the noise err +0.4 ± 0.1 points more on PCA-jittered images over 5 seeds (95% +0.3 … +0.5; 3.1% of
    predictions move; baselines trained with it +0.1): active"."""
    s = summary
    baseline = "" if math.isnan(s["baseline_rise"]) else f"; baselines trained with it {_number(s['baseline_rise'])}"
    return (f"{s['ablation']}, {s['images']} validation images: the networks trained without the noise err "
            f"{_over_seeds(s)} more on PCA-jittered images "
            f"({s['changed']:.1f}% of predictions move{baseline}): "
            + ("active" if s["active"] else "not shown active"))


def views_text(summary: dict) -> str:
    """One line for a ``views_summary`` entry, e.g. "ten_crop, 10000 validation images: the 10-crop average and
    the centre crop disagree on the label of 3.1 ± 0.2% of them (5 seeds, 2.9–3.4%); exactly one right on 2.2%;
    averaged − single −0.4 points"."""
    s = summary
    what, unit = (("the 10-crop average and the centre crop", "seeds") if s["row"] == "ten_crop" else
                  ("two seeds' networks", "pairs of seeds"))
    spread = f" ± {s['std']:.1f}" if s["n"] > 1 else ""
    return (f"{s['row']}, {s['images']} validation images: {what} disagree on the label of {s['mean']:.1f}{spread}% "
            f"of them ({s['n']} {unit}, {s['low']:.1f}–{s['high']:.1f}%); exactly one right on {s['one_right']:.1f}%; "
            f"averaged − single {_number(s['delta'])} points")


MEASURE_SHORT = {"val": "val top-1", "train": "train error", "gap": "val − train error"}


def display_table(table):
    """The table as the reader sees it: paper and measured deltas (mean ± std) as text, in percentage points."""
    import pandas as pd

    def paper_text(r):
        numbers = " / ".join(t for t in (_number(r.paper_top1), _number(r.paper_top5)) if t)
        return numbers or r.paper_words

    empty = why_empty(table)

    def judged(r):
        if not r.n:
            return empty[r.ablation]
        needs = getattr(ABLATION.get(r.ablation), "needs", None)
        if r.verdict == "inconclusive" and r.testable is False and needs:  # the claim could not show here
            return "inconclusive: " + NEEDS[needs].format(train=_number(r.train_delta, r.train_delta_std),
                                                          mechanism=_number(r.mechanism, r.mechanism_std))
        if r.verdict == "inconclusive":
            return "inconclusive" + power_words(r)
        return r.verdict or "no claim (a convention)"

    return pd.DataFrame({
        "ablation": table["ablation"], "section": table["section"], "without the paper's choice": table["change"],
        "paper Δ top-1 / top-5": [paper_text(r) for r in table.itertuples()],
        "measured Δ top-1": [_number(m, s) for m, s in zip(table["measured_top1"], table["measured_top1_std"])],
        "measured Δ top-5": [_number(m, s) for m, s in zip(table["measured_top5"], table["measured_top5_std"])],
        "sign judged on": [MEASURE_SHORT.get(m, m) for m in table["measure"]],
        "measured Δ there": [_number(m, s) for m, s in zip(table["measured_claim"], table["measured_claim_std"])],
        "n": table["n"], "verdict": [judged(r) for r in table.itertuples()],
        "size here": list(table["size"]),
    })


def power_words(r) -> str:
    """What an inconclusive row's seeds could have found: ": 3 seeds detect ≥ 3.1 (80% power); the paper's −1.0
    needs ≈ 10" -- so that a row without a verdict says whether it was a test at all."""
    detectable = getattr(r, "detectable", math.nan)
    if detectable is None or (isinstance(detectable, float) and math.isnan(detectable)):
        return ""
    text = f": {int(r.n)} seeds detect ≥ {detectable:.1f} ({POWER:.0%} power)"
    import pandas as pd

    needed = getattr(r, "seeds_needed", None)
    paper = _number(r.paper_top1)
    if paper and not pd.isna(needed):
        text += f"; the paper's {paper} needs ≈ {int(needed)}"
    elif paper and getattr(r, "size", ""):  # sized, but no number of seeds up to 1,000 would do
        text += f"; the paper's {paper} needs over 1,000"
    return text


def to_markdown(table) -> str:
    """A GitHub Markdown table of ``display_table(table)``."""
    shown = display_table(table)
    cells = [[str(c).replace("|", "\\|") for c in row] for row in shown.itertuples(index=False)]
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def _latex_escape(text: str) -> str:
    out = []
    for ch in str(text):
        out.append({"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
                    "±": r"$\pm$", "−": "$-$", "→": r"$\to$", "α": r"$\alpha$", "β": r"$\beta$",
                    "×": r"$\times$", "§": r"\S{}", "ε": r"$\epsilon$"}.get(ch, ch))
    return "".join(out)


def to_latex(table, caption: str = "The paper's ablations, measured (delta in percentage points).") -> str:
    """A LaTeX ``table`` of ``display_table(table)`` (booktabs rules; no jinja2 needed)."""
    shown = display_table(table)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", r"\begin{tabular}{ll p{4.5cm} p{3cm} r r r l}",
             r"\toprule", " & ".join(_latex_escape(c) for c in shown.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(_latex_escape(c) for c in row) + r" \\" for row in shown.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\caption{" + _latex_escape(caption) + "}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def save_csv(table, path, *, command: str | None = None, configuration: dict | None = None,
             wall_s: float | None = None) -> Path:
    """Write the table as CSV with commented header lines: machine, date, configuration, command, times (atomically).

    ``wall_s`` is the command's wall time; the table's ``attrs`` (from ``run_ablations``) add how many runs it
    holds, how many were reused from the store, ``train_wall_s``: the training time the runs recorded, and
    ``precision``: the numerics they trained in (bf16 or fp32: ``precision="auto"`` depends on the CPU).
    """
    path = Path(path)
    head = {
        "alexnet-book ablations": "delta = error(with the paper's choice) - error(without it), percentage points",
        "command": command or "",
        "machine": machine(torch_version=True),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "configuration": json.dumps(configuration or {}, sort_keys=True, default=str),
    }
    if wall_s is not None:
        head["wall_s"] = f"{wall_s:.0f}"
    for key in ("runs", "runs_reused", "train_wall_s", "precision"):
        if key in table.attrs:
            head[key] = str(table.attrs[key])
    buffer = io.StringIO()
    for key, value in head.items():
        buffer.write(f"# {key}: {value}\n")
    table.round(4).to_csv(buffer, index=False, lineterminator="\n")  # 0.0001 percentage points is plenty
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, buffer.getvalue())
    return path


def load_csv(path):
    """Read a table written by ``save_csv``; its header lines land in ``table.attrs`` (machine, date, command...)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; produce it with `alexnet-book ablate --quick --out {path}`")
    lines = path.read_text().splitlines(keepends=True)
    meta, start = {}, 0
    while start < len(lines) and lines[start].startswith("# "):
        key, _, value = lines[start][2:].rstrip("\n").partition(": ")
        meta[key] = value
        start += 1
    try:
        table = pd.read_csv(io.StringIO("".join(lines[start:])))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ValueError(f"{path} is not an ablation table ({err}); regenerate it with `alexnet-book ablate`") from None
    if "verdict" not in table.columns and "n" in table.columns:  # a table written before verdicts: one seed is inconclusive by the rule
        table["verdict"] = ["inconclusive" if n and n < 2 else "" for n in table["n"]]
    for column in ("testable", "without_gap", "train_delta", "train_delta_std", "mechanism", "mechanism_std"):
        if column not in table.columns:
            table[column] = math.nan
    missing = [c for c in COLUMNS if c not in table.columns and c not in POWER_COLUMNS]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}; regenerate it with `alexnet-book ablate`")
    for column in ("sign_agrees", "testable"):
        table[column] = table[column].map({True: True, False: False, "True": True, "False": False})
    table = table.astype({"sign_agrees": object, "testable": object}).where(table.notna(), None)
    for column in ("paper_top1", "paper_top5", "measured_top1", "measured_top1_std", "measured_top5",
                   "measured_top5_std", "measured_claim", "measured_claim_std", "without_gap",
                   "train_delta", "train_delta_std", "mechanism", "mechanism_std"):
        table[column] = table[column].astype(float)
    for column in ("claim", "paper_words", "data", "scale", "budget", "measure", "verdict"):
        # a text column empty in every row (a one-row table of a claim without words) reads back as float NaN
        table[column] = table[column].astype(object).fillna("")
    table = add_power(table.drop(columns=[c for c in POWER_COLUMNS if c in table.columns]))[list(COLUMNS)]
    table.attrs.update(meta)
    return table



def export(table, stem, *, command=None, configuration=None, wall_s=None, figure: bool = True) -> list[Path]:
    """Write ``stem``.csv (with its header), .md and .tex, and the figure through ``figures.save_figure``."""
    import matplotlib.pyplot as plt

    stem = Path(stem)
    stem = stem.with_suffix("") if stem.suffix in (".csv", ".md", ".tex") else stem
    paths = [save_csv(table, stem.with_suffix(".csv"), command=command, configuration=configuration, wall_s=wall_s)]
    for suffix, text in ((".md", to_markdown(table)), (".tex", to_latex(table))):
        atomic_write_text(stem.with_suffix(suffix), text)
        paths.append(stem.with_suffix(suffix))
    if figure:
        fig = plot_ablations(table)
        paths += save_ablation_figure(fig, table, stem.name if stem.name.startswith("ablations") else
                                      f"ablations_{stem.name}")
        plt.close(fig)
    return paths

