"""The chart of the table: measured deltas beside the paper's, saved through ``figures.save_figure``."""
from __future__ import annotations

from pathlib import Path

from .analysis import why_empty


def plot_ablations(table, ax=None):
    """Horizontal bars: the measured top-1 delta (± std over seeds) beside the paper's, per ablation."""
    import matplotlib.pyplot as plt
    import numpy as np

    from ..figures import book_style

    with book_style():
        if ax is None:
            fig, ax = plt.subplots(figsize=(6.4, 0.32 * len(table) + 1.2))
        else:
            fig = ax.figure
        y = np.arange(len(table))[::-1]
        paper_top1 = table["paper_top1"].astype(float).to_numpy()
        measured = table["measured_top1"].astype(float).to_numpy()
        std = np.nan_to_num(table["measured_top1_std"].astype(float).to_numpy())
        ax.barh(y + 0.2, np.nan_to_num(paper_top1), height=0.38, color="#bbbbbb", label="paper")
        ax.barh(y - 0.2, np.nan_to_num(measured), height=0.38, xerr=std, color="#1f77b4",
                label="measured", error_kw={"elinewidth": 0.8})
        empty = why_empty(table)
        for yi, p, m, name, measure in zip(y, paper_top1, measured, table["ablation"], table["measure"]):
            if np.isnan(p):
                ax.text(0, yi + 0.2, " no number in the paper", va="center", fontsize=6, color="#777777")
            if np.isnan(m):  # measured in another unit (an epochs ratio), or not measured, and why
                note = empty[name].split(":")[0] if name in empty else f"measured in {measure}, not top-1"
                ax.text(0, yi - 0.2, " " + note, va="center", fontsize=6, color="#777777")
        ax.axvline(0, color="black", linewidth=0.8)
        lo, hi = ax.get_xlim()
        ax.set_xlim(lo, max(hi, 0.3 * (hi - lo)))  # room for the notes right of zero
        ax.set_yticks(y, table["ablation"])
        ax.set_xlabel("Δ top-1 error (percentage points) = with − without the paper's choice\n"
                      "negative: the paper's choice helps")
        title = "Ablations: paper vs measured"
        if len(table) and table["data"].iloc[0]:
            title += f" ({table['data'].iloc[0]} {table['scale'].iloc[0]}, {table['budget'].iloc[0]})"
        ax.set_title(title)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def save_ablation_figure(fig, table, name: str) -> list[Path]:
    """Save the measured-vs-paper chart through ``figures.save_figure`` (one caption, CLI and notebook alike)."""
    from ..figures import save_figure

    data = table["data"].iloc[0] if len(table) else None
    return save_figure(fig, name, caption="Measured vs claimed top-1 error deltas of the paper's ablations "
                       "(delta = with - without the paper's choice; negative: the choice helps).", data=data,
                       notebook="06_ablations", committed=True)
