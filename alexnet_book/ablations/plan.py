"""Which runs an ablation table needs: the rows chosen, each variant's TrainConfig, the runs in order."""
from __future__ import annotations

from .presets import ABLATION, ABLATIONS, BASELINE, Ablation


def select(ablations=None) -> tuple[Ablation, ...]:
    """The ablations named in ``ablations`` (names or claim names, a list or a comma-separated string); all when None."""
    if ablations is None:
        return ABLATIONS
    if isinstance(ablations, str):
        ablations = [a for a in ablations.split(",") if a.strip()]
    chosen = []
    for name in ablations:
        if isinstance(name, Ablation):
            chosen.append(name)
            continue
        name = name.strip()
        matches = [a for a in ABLATIONS if name in (a.name, a.claim)]
        if not matches:
            raise ValueError(f"unknown ablation {name!r}; choose from {', '.join(ABLATION)} "
                             f"(`alexnet-book ablate --list` describes them)")
        chosen += [a for a in matches if a not in chosen]
    if not chosen:
        raise ValueError("no ablation selected; name at least one (e.g. --only lrn,dropout)")
    return tuple(chosen)


def variant_config(base, ablation: Ablation | None, **fields):
    """The TrainConfig of one variant: ``base`` with the ablation's change (model_options merged) and ``fields``."""
    import dataclasses

    change = {**(ablation.change if ablation is not None else {}), **fields}
    options = {**base.model_options, **change.pop("model_options", {})}
    return dataclasses.replace(base, model_options=options, **change)


def plan_runs(data: str = "auto", scale: str | None = "scaled", budget_epochs: int | None = 2,
              budget_steps: int | None = None, seeds=(0,), device: str = "auto", ablations=None,
              limit: int | None = None, base: dict | None = None, recipe: str = "paper") -> list[tuple[str, int, object]]:
    """The runs an ablation table needs: (variant name, seed, TrainConfig), the baseline first for each seed --
    where a chosen row compares against it: a row with its own "with" run (``Ablation.base_change``, e.g.
    ``lrn_fourlayer``) does not, so ``ablations="lrn_fourlayer"`` trains no AlexNet at all.

    Every run starts from ``config.RECIPES[recipe]`` ("paper" = §5 as written); data, scale, device, the budget
    and ``limit`` (when given) replace the recipe's; ``base`` holds further TrainConfig fields shared by every
    run (e.g. ``{"out_dir": "runs", "lr": 0.01}``).  Variants are trained without the 10-crop evaluation (only
    the baseline's is used, by ``ten_crop``).
    """
    from ..config import RECIPES, TrainConfig

    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")

    chosen = select(ablations)
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("no seeds given; pass at least one, e.g. seeds=(0,)")
    if budget_steps is not None and budget_steps <= 0:
        raise ValueError(f"budget_steps must be a positive number of optimiser steps, not {budget_steps}")
    if budget_steps is None and (budget_epochs is None or budget_epochs <= 0):
        raise ValueError(f"budget_epochs must be a positive number of epochs, not {budget_epochs}")
    if limit is not None and limit <= 0:
        raise ValueError(f"limit must be a positive number of images per split, not {limit}")
    fields = {**RECIPES[recipe], "data": data, "scale": scale, "device": device, "max_steps": budget_steps}
    if limit is not None:
        fields["limit"] = limit
    if budget_epochs is not None:
        fields["epochs"] = int(budget_epochs)
    elif budget_steps is not None:
        fields["epochs"] = 10**6  # the step budget stops the run
    fields.update(base or {})
    needs_baseline = any(not a.base_change for a in chosen)
    runs = []
    for seed in seeds:
        baseline = TrainConfig(**{**fields, "seed": seed})
        if needs_baseline:
            runs.append((BASELINE, seed, baseline))
        for a in chosen:
            if not a.trains:
                continue
            with_run = baseline
            if a.base_change:
                with_run = variant_config(baseline, Ablation(a.with_name, None, "", "", a.base_change), ten_crop=False)
                runs.append((a.with_name, seed, with_run))
            runs.append((a.name, seed, variant_config(with_run, a, ten_crop=False)))
    return runs


def budget_text(budget_epochs=None, budget_steps=None, limit=None) -> str:
    """The budget in words: "2 epochs", "300 steps", with ", 1000 images/split" when limited."""
    n, unit = (budget_steps, "step") if budget_steps else (budget_epochs, "epoch")
    text = f"{n} {unit}{'' if n == 1 else 's'}"
    return text + (f", {limit} images/split" if limit else "")
