"""The state of one check run (``Check``): plan, device, where things go, the report so far, the clock.  The
steps receive it; ``run.run_check`` makes it and runs them."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch

from .plan import Plan, card_name, card_slug
from .report import markdown, projections


class Check:
    """One run's state: plan, device, where things go, the report so far, the clock."""

    def __init__(self, plan: Plan, out: Path, work: Path, budget_s: float, cifar_path: str | None,
                 quiet: bool = False):
        self.plan, self.out, self.work, self.cifar_path = plan, out, work, cifar_path
        self.start, self.budget_s = time.perf_counter(), budget_s
        self.deadline = self.start + budget_s
        self.device = torch.device(plan.device)
        self.card = card_name(self.device)
        self.slug = card_slug(self.card, self.device.type)
        self.cifar = None
        self.cache = work / "cache"
        self.quiet = quiet
        self.peaks: dict = {}
        self.report: dict = {}

    def say(self, text: str) -> None:
        if not self.quiet:
            print(f"[gpu-check {time.perf_counter() - self.start:6.1f}s] {text}", flush=True)

    @property
    def json_path(self) -> Path:
        return self.out / f"gpu_check_{self.slug}.json"

    @property
    def md_path(self) -> Path:
        return self.out / f"gpu_check_{self.slug}.md"

    def write(self) -> None:
        from ..files import atomic_write_text

        self.report["wall_s"] = time.perf_counter() - self.start
        try:
            self.report["projections"] = projections(self.report)
        except Exception as error:  # noqa: BLE001 -- the measurements are still written
            self.report["projections"] = {"error": f"{type(error).__name__}: {error}"}
        atomic_write_text(self.json_path, json.dumps(self.report, indent=1, default=_jsonable) + "\n")
        try:
            text = markdown(self.report)
        except Exception as error:  # noqa: BLE001
            text = (f"## GPU check: {self.card}\n\nThe section could not be written ({error!r}); "
                    f"see {self.json_path.name}.")
        atomic_write_text(self.md_path, text + "\n")

    def until(self, name: str) -> float:
        """The clock time by which step ``name`` should end: its cumulative share of the budget (a step that
        ends early leaves its time to the next), the last step everything but the reserve."""
        if self.plan.dry:  # the plumbing, all of it: no step is cut for time
            return math.inf
        end = self.deadline - self.plan.reserve_s
        share = self.plan.shares.get(name)
        return end if share is None else min(end, self.start + share * self.budget_s)


def _jsonable(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return str(value)
