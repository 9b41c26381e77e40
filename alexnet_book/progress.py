"""Watching a run as it trains: a live plot in a notebook, and TensorBoard.

``train(live_plot=True)`` redraws ``LivePlot`` in place after logged steps; ``train(loggers=[TensorBoardLogger()])``
hands every metrics row to TensorBoard.
"""
from __future__ import annotations

import math
import time


class LivePlot:
    """Loss and error curves in a notebook, redrawn in place (one output, updated; no flicker, no new cells)."""

    def __init__(self, title: str):
        import matplotlib.pyplot as plt
        from IPython.display import display

        self.plt = plt
        self.fig, (self.ax_loss, self.ax_err) = plt.subplots(1, 2, figsize=(10, 3.4))
        self.fig.suptitle(title, fontsize=10)
        self.handle = display(self.fig, display_id=True)
        plt.close(self.fig)  # shown through the handle only, not again at the end of the cell
        self.last = 0.0

    def update(self, history: list[dict], force: bool = False) -> None:
        if not force and time.monotonic() - self.last < 1.0:
            return
        self.last = time.monotonic()
        steps = [r for r in history if r.get("train_loss") is not None]
        vals = [r for r in history if r.get("val_top1") is not None]
        self.ax_loss.clear()
        self.ax_err.clear()
        self.ax_loss.plot([r["step"] for r in steps], [r["train_loss"] for r in steps], lw=1, label="train loss")
        self.ax_loss.set_xlabel("step")
        self.ax_loss.set_ylabel("cross-entropy")
        self.ax_err.plot([r["step"] for r in steps], [r["train_error"] for r in steps], lw=1, label="train error")
        if vals:
            self.ax_err.plot([r["step"] for r in vals], [r["val_top1"] for r in vals], "o-", label="val top-1")
            self.ax_err.plot([r["step"] for r in vals], [r["val_top5"] for r in vals], "s-", label="val top-5")
        self.ax_err.set_xlabel("step")
        self.ax_err.set_ylabel("error")
        self.ax_err.set_ylim(0, 1)
        self.ax_err.legend(loc="upper right", fontsize=8)
        self.handle.update(self.fig)


class TensorBoardLogger:
    """A ``train(loggers=...)`` hook writing every metrics row to TensorBoard (``torch.utils.tensorboard``).

    ``writer``: a ``SummaryWriter`` (or anything with ``add_scalar(tag, value, step)``); by default one is made
    in ``log_dir`` (needs the ``tensorboard`` package: ``pip install tensorboard``).
    """

    def __init__(self, log_dir: str | None = None, writer=None):
        if writer is None:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(log_dir)
        self.writer = writer

    def __call__(self, row: dict) -> None:
        step = int(row["step"])
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and math.isfinite(value):
                self.writer.add_scalar(key, value, step)


def in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")
