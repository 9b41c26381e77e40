"""Running the table: finished runs read from the results store (on the same data), the others trained;
the ensembles of Table 2 and the LRN activity of the trained baselines."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from .analysis import ablation_table
from .plan import budget_text, plan_runs, select
from .presets import BASELINE


def trained_networks(runs, names, store=None, *, splits=None):
    """(name, seed, config, trained network, data) for every finished run among ``runs`` whose variant is in
    ``names`` and whose saved network is on disk (the results store's ``model_path``); the data set is loaded
    once, from the first one's config, unless ``splits`` passes it."""
    from ..checkpoints import load_run

    store = _store(store, runs[0][2].out_dir if runs else "runs")
    for name, seed, config in runs:
        row = store.find(config.hash()) if name in names else None
        path = Path(row.get("model_path", "")) if row else None
        if path is None or not path.is_file():
            continue
        if splits is None:
            from ..data import load_dataset

            splits = load_dataset(config.data, config.root, scale=config.scale, limit=config.limit, progress=False)
        net, _, _ = load_run(path)  # the network as train built it, with the saved weights
        yield name, seed, config, net, splits


def baseline_networks(runs, store=None, *, splits=None):
    """(seed, config, trained network, data) for every finished baseline among ``runs`` whose saved network is on
    disk; the data set is loaded once (``trained_networks``)."""
    for _, seed, config, net, data in trained_networks(runs, {BASELINE}, store, splits=splits):
        yield seed, config, net, data


def ensemble_results(runs, results: dict, store=None, *, splits=None) -> dict:
    """Table 2's ensembles from the finished baseline runs: {("ensemble", seed_i): [pair, ...]}.

    For every pair of seeds (i < j) the two baseline networks' centre-crop softmax outputs on the validation set
    are averaged; a pair holds delta_top1/delta_top5 = error(ensemble) − mean error(the two networks), fractions.
    With n seeds there are n(n−1)/2 pairs; ``all`` (under the first seed's key, as the row's note) the ensemble
    of every seed.  Runs whose saved network is missing are left out.  ``splits`` may pass the loaded data.
    """
    from itertools import combinations

    from ..evaluate import topk_errors

    chosen = [(name, seed, config) for name, seed, config in runs if (BASELINE, seed) in results]
    store = _store(store, chosen[0][2].out_dir if chosen else "runs")
    probs, labels = {}, None
    for seed, config, net, splits in baseline_networks(chosen, store, splits=splits):
        probs[seed] = _val_probabilities(store, config, net, splits)
        labels = splits.val.labels
    out = {}
    if len(probs) < 2:
        return out

    def errors(p):
        e = topk_errors(p, labels)
        return e["top1_error"], e["top5_error"]

    single = {s: errors(p) for s, p in probs.items()}
    for i, j in combinations(sorted(probs), 2):
        e1, e5 = errors((probs[i] + probs[j]) / 2)
        out.setdefault(("ensemble", i), []).append(dict(
            seeds=(i, j), delta_top1=e1 - (single[i][0] + single[j][0]) / 2,
            delta_top5=e5 - (single[i][1] + single[j][1]) / 2))
    all1, all5 = errors(sum(probs.values()) / len(probs))
    out["ensemble_all"] = dict(seeds=tuple(sorted(probs)), top1=all1, top5=all5,
                               mean_single_top1=sum(v[0] for v in single.values()) / len(single),
                               mean_single_top5=sum(v[1] for v in single.values()) / len(single))
    return out


# (model file, size, mtime, ten_crop) -> validation softmax: the ensemble row and the views check score each
# network once per process
_VAL_PROBABILITIES: dict = {}


def _model_key(store, config) -> tuple:
    path = Path(store.find(config.hash())["model_path"])
    return str(path.resolve()), path.stat().st_size, path.stat().st_mtime_ns


def _val_probabilities(store, config, net, splits, *, ten_crop: bool = False):
    """A saved network's softmax on every validation image (centre crop, or the 10 crops), fp32; memoised."""
    from ..evaluate import split_probabilities

    key = (*_model_key(store, config), ten_crop)
    if key not in _VAL_PROBABILITIES:
        _VAL_PROBABILITIES[key] = split_probabilities(net, splits.val, splits.mean_image, splits.crop,
                                                      ten_crop=ten_crop)
    return _VAL_PROBABILITIES[key]


VIEW_ROWS = ("ten_crop", "ensemble")  # the rows that train nothing: the views check is what they rest on


def trained_views(runs, rows, store=None, *, splits=None):
    """What the two rows that train nothing rest on, from the finished baselines' saved networks (fp32): two
    predictions of the same image can only be averaged into a better one where they differ.

    ``rows``: the table's row names (only ``VIEW_ROWS`` among them count).  One row per seed for ten_crop (the
    10-crop average against the same network's centre crop) and per pair of seeds for ensemble (the two networks'
    centre crops averaged against each alone): row, seeds ("0" or "0-1"), images, changed (% of validation images
    whose top-1 label differs between the two predictions compared), one_right (% where exactly one of the two
    labels is right: what averaging can win or lose), delta (points of top-1 error, averaged − single; for a pair,
    − the mean of the two).  Empty when neither row is asked for or no baseline is on disk.
    """
    from itertools import combinations

    import pandas as pd

    from ..evaluate import topk_errors

    wanted = [r for r in VIEW_ROWS if r in set(rows or ())]
    if not wanted or not runs:
        return pd.DataFrame()
    store = _store(store, runs[0][2].out_dir)
    centre, ten, labels = {}, {}, None
    for seed, config, net, data in baseline_networks(runs, store, splits=splits):
        centre[seed] = _val_probabilities(store, config, net, data)
        if "ten_crop" in wanted:
            ten[seed] = _val_probabilities(store, config, net, data, ten_crop=True)
        labels = data.val.labels

    def compare(row, seeds, a, b, averaged):
        la, lb = a.argmax(dim=1), b.argmax(dim=1)
        right_a, right_b = la == labels, lb == labels

        def error(p):
            return 100 * topk_errors(p, labels)["top1_error"]

        single = (error(a) + error(b)) / 2 if row == "ensemble" else error(a)  # a 10-crop row: a is the centre
        return dict(row=row, seeds=seeds, images=len(labels), changed=100 * float((la != lb).float().mean()),
                    one_right=100 * float((right_a != right_b).float().mean()), delta=error(averaged) - single)

    out = []
    if "ten_crop" in wanted:
        out += [compare("ten_crop", str(s), centre[s], ten[s], ten[s]) for s in sorted(ten)]
    if "ensemble" in wanted:
        out += [compare("ensemble", f"{i}-{j}", centre[i], centre[j], (centre[i] + centre[j]) / 2)
                for i, j in combinations(sorted(centre), 2)]
    return pd.DataFrame(out)


def cached_results(runs, store=None) -> dict:
    """The finished runs among ``runs`` (from ``plan_runs``) found in the results store: {(variant, seed): metrics}."""
    store = _store(store, runs[0][2].out_dir if runs else "runs")
    found, identities = {}, {}
    for name, seed, config in runs:
        row = store.find(config.hash())
        if row is not None and _on_the_same_data(row, config, identities):
            found[(name, seed)] = _row_metrics(row)
    return found


def seed_results(runs, store=None):
    """The per-seed numbers behind a table's mean ± std: one row per finished run among ``runs`` (from
    ``plan_runs``) in the results store -- run (variant name), seed, validation top-1 / top-5 error, the eval-mode
    training error on its fixed probe and the running training error (all %), images/s, wall seconds and the
    numerics it trained in.  Empty when none is finished."""
    import pandas as pd

    store = _store(store, runs[0][2].out_dir if runs else "runs")
    rows, identities = [], {}
    for name, seed, config in runs:
        row = store.find(config.hash())
        if row is None or not _on_the_same_data(row, config, identities):
            continue
        m = _row_metrics(row)

        def percent(key):
            value = m.get(key)
            return 100 * value if isinstance(value, (int, float)) else float("nan")

        rows.append(dict(run=name, seed=seed, val_top1_error=percent("val_top1_error"),
                         val_top5_error=percent("val_top5_error"), train_eval_error=percent("train_eval_error"),
                         train_error=percent("train_error"), images_per_s=m.get("images_per_s"),
                         wall_s=m.get("wall_s"), precision=row.get("precision", "")))
    return pd.DataFrame(rows)


def _on_the_same_data(row: dict, config, identities: dict) -> bool:
    """Whether a stored run was trained on the data ``config`` opens now (rows without a data identity pass);
    ``identities`` memoises the current identity per data set, so a table lists each set once."""
    from ..data import dataset_identity, same_data

    if not row.get("data_identity"):
        return True
    key = (config.data, config.root, config.scale, config.limit)
    if key not in identities:
        try:
            identities[key] = dataset_identity(config.data, config.root, scale=config.scale, limit=config.limit)
        except FileNotFoundError:
            identities[key] = None
    return identities[key] is None or same_data(row["data_identity"], identities[key])


def _row_metrics(row: dict) -> dict:
    """A results-store row's final metrics (nested under "metrics" or flat)."""
    return dict(row.get("metrics") or row)


def _store(store, out_dir="runs"):
    """The results store: the one given (or its path), else train's default for ``out_dir``."""
    from ..runs import ResultsStore, runs_dir

    if store is None:
        return ResultsStore(runs_dir(out_dir) / "results.jsonl")
    if isinstance(store, (str, Path)):
        return ResultsStore(store)
    return store


def run_ablations(data: str = "auto", scale: str | None = "scaled", budget_epochs: int | None = 2,
                  budget_steps: int | None = None, seeds=(0,), device: str = "auto", ablations=None,
                  limit: int | None = None, store=None, progress: bool = True, on_update=None, *,
                  base: dict | None = None, recipe: str = "paper", train_fn=None, on_run=None, reuse: bool = True):
    """Train the baseline and every variant for each seed, and return the ablation table (§3.1–§7).

    A run already in the results store (same config hash) is read from it, not repeated (``reuse=False``
    hands every run to the trainer); the others go through ``train.train`` (or ``train_fn``, same
    signature, for tests and widgets), which resumes an interrupted run from its checkpoint: calling this
    again after an interruption picks up where it stopped.  ``on_update(table)`` is called
    after each finished run; ``on_run(i, n, name, seed, result)`` too, for progress displays.
    Budget: ``budget_epochs`` epochs, or ``budget_steps`` optimiser steps when given.  ``recipe`` and
    ``base``: the training recipe shared by every run (see ``plan_runs``).
    """
    from tqdm.auto import tqdm

    if train_fn is None:
        from ..train import train as train_fn
    chosen = select(ablations)
    runs = plan_runs(data, scale, budget_epochs, budget_steps, seeds, device, chosen, limit, base, recipe)
    store = _store(store, runs[0][2].out_dir)
    seeds = tuple(int(s) for s in seeds)
    meta = dict(data=data, scale=scale or "", budget=budget_text(budget_epochs, budget_steps, runs[0][2].limit))
    results, reused, numerics = {}, 0, {}

    def table():
        t = ablation_table(results, chosen, seeds, **meta)
        # the training time of the runs in the table (as each run recorded it, reused or not)
        t.attrs.update(runs=sum(isinstance(v, dict) and "val_top1_error" in v for v in results.values()),
                       runs_reused=reused,
                       train_wall_s=round(sum(m.get("wall_s") or 0.0 for m in results.values()
                                          if isinstance(m, dict)), 1))
        if numerics:
            t.attrs["precision"] = precision_text(numerics.values())
        return t

    bar = tqdm(runs, desc="ablation runs", unit="run", disable=not progress)
    wants_ensemble = any(a.kind == "ensemble" for a in chosen)
    for i, (name, seed, config) in enumerate(bar, start=1):
        bar.set_postfix_str(f"{name} seed {seed}")
        row = store.find(config.hash()) if reuse else None
        if row is not None:  # finished before on other data (another archive under the same name): refused
            from ..checkpoints import check_same_data

            check_same_data(row.get("data_identity"), config, None, f"the finished run in {row.get('run_dir')}")
        if row is not None:  # finished before: its metrics are all the table needs
            result = SimpleNamespace(config=config, metrics=_row_metrics(row), reused=True)
            reused += 1
        else:
            result = train_fn(config, progress=progress, store=store)
        results[(name, seed)] = dict(result.metrics)
        stored = row if row is not None else store.find(config.hash())  # train() has just added it
        if stored is not None and stored.get("precision"):
            numerics[(name, seed)] = (stored["precision"], stored.get("machine", ""))
        if on_run is not None:
            on_run(i, len(runs), name, seed, result)
        if on_update is not None:
            on_update(table())
    bar.close()
    if any(a.needs == "colour" for a in chosen):
        colour = colour_results([r for r in runs if (r[0], r[1]) in results], store)
        results.update(colour)
        if colour and on_update is not None:
            on_update(table())
    if wants_ensemble and len(seeds) > 1:
        ensembles = ensemble_results(runs, results, store)
        results.update(ensembles)
        if ensembles and on_update is not None:
            on_update(table())
    return table()


def precision_text(runs) -> str:
    """What numerics a table's runs trained in, from (precision, machine) pairs: "fp32 (8 runs)", or for a table
    that mixes them (runs reused from a store filled on another CPU), "bf16 (10 runs), fp32 (4 runs); MIXED: ...".
    ``precision="auto"`` is bf16 on a CPU with native bf16 and fp32 elsewhere, so one config can train either way."""
    from collections import Counter

    runs = list(runs)
    counts = Counter(p for p, _ in runs)
    text = ", ".join(f"{p} ({n} run{'s' if n != 1 else ''})" for p, n in sorted(counts.items()))
    if len(counts) > 1:
        text += ("; MIXED: baselines and variants may differ in numerics as well as in the change under test "
                 "(runs reused from a store filled on other machines: " + "; ".join(sorted({m for _, m in runs if m}))
                 + ")")
    return text


def trained_capacity(runs, store=None, *, splits=None):
    """The capacity check on the whole training split, for every row that needs it (removing a middle conv layer).

    The table judges "with the layer the network fits its training images better" from each run's eval-mode
    error on a fixed subset of training images (``train_eval_size``: 1,000 in the study recipe).  At ≈ 30% error
    that probe's own sampling error is ≈ 1.4 points per network, a large part of the seed-to-seed spread of its
    delta.  Here both saved networks of each seed -- the baseline and the one without the layer -- are scored
    (eval mode, centre crop, fp32) on every training image they were trained on.  One row per (ablation, seed)
    with both networks on disk: ablation, seed, images, error_with, error_without (%), delta (points, with −
    without: negative where the layer adds fit), and probe_delta, the same delta on the run's own probe (NaN
    where the run did not measure one).  Empty when no such pair is on disk.  ``capacity_summary`` judges it.
    """
    import pandas as pd

    from ..evaluate import centre_probabilities, topk_errors
    from .analysis import _metric
    from .presets import ABLATION

    wanted = {n for n, _, _ in runs if n in ABLATION and ABLATION[n].needs == "capacity"}
    if not wanted:
        return pd.DataFrame()
    store = _store(store, runs[0][2].out_dir)
    scored = {}
    for name, seed, config, net, splits in trained_networks(runs, wanted | {BASELINE}, store, splits=splits):
        probabilities = centre_probabilities(net, splits.train, splits.mean_image, splits.crop)
        probe = _metric(_row_metrics(store.find(config.hash())), "train_eval_error")
        scored[(name, seed)] = (100 * topk_errors(probabilities, splits.train.labels)["top1_error"], 100 * probe,
                                len(splits.train.labels))
    rows = []
    for name, seed in sorted(k for k in scored if k[0] != BASELINE):
        if (BASELINE, seed) not in scored:
            continue
        (with_error, with_probe, images), (without_error, without_probe, _) = scored[(BASELINE, seed)], scored[(name, seed)]
        rows.append(dict(ablation=name, seed=seed, images=images, error_with=with_error, error_without=without_error,
                         delta=with_error - without_error, probe_delta=with_probe - without_probe))
    return pd.DataFrame(rows)


# (model file, size, mtime) -> colour_sensitivity: a table and its CSV score each network once per process
_COLOUR_SCORES: dict = {}


def trained_colour(runs, store=None, *, splits=None):
    """PCA colour noise's mechanism check (presets.NEEDS "colour") for every seed of a row that needs it: the
    network trained without the noise and the baseline (trained with it), each scored by
    ``mechanisms.colour_sensitivity`` on the validation set, clean and PCA-jittered (the same shifts for both).

    One row per (ablation, seed, network) with both on disk or either: ablation, seed, network ("without": the
    row's own run; "baseline"), images, clean_error, jittered_error (%), rise (points) and changed (% of
    predictions moved).  The row is testable where the "without" networks' rise has its 95% interval above zero.
    Empty when no such network is on disk.
    """
    import pandas as pd

    from ..mechanisms import colour_sensitivity
    from .presets import ABLATION

    wanted = {n for n, _, _ in runs if n in ABLATION and ABLATION[n].needs == "colour"}
    if not wanted:
        return pd.DataFrame()
    store = _store(store, runs[0][2].out_dir)
    rows = []
    for name, seed, config, net, data in trained_networks(runs, wanted | {BASELINE}, store, splits=splits):
        key = _model_key(store, config)
        if key not in _COLOUR_SCORES:
            _COLOUR_SCORES[key] = colour_sensitivity(net, data, input_scale=config.input_scale)
        for row_name in sorted(wanted) if name == BASELINE else [name]:
            rows.append(dict(ablation=row_name, seed=seed, network="baseline" if name == BASELINE else "without",
                             **_COLOUR_SCORES[key]))
    frame = pd.DataFrame(rows)
    return frame.sort_values(["ablation", "seed", "network"], ignore_index=True) if len(frame) else frame


def colour_results(runs, store=None, *, splits=None) -> dict:
    """{("colour", seed): rise} for the table (fractions, as train's metrics): each seed's network trained
    without PCA colour noise, its validation error rise on PCA-jittered images (``trained_colour``)."""
    frame = trained_colour(runs, store, splits=splits)
    if not len(frame):
        return {}
    without = frame[frame["network"] == "without"]
    return {("colour", int(seed)): float(rise) / 100 for seed, rise in zip(without["seed"], without["rise"])}


def trained_lrn_activity(runs, store=None):
    """``mechanisms.lrn_activity`` of every finished network the table compares *with* LRN: each seed's baseline
    and each row's own "with" run (``lrn_fourlayer:with``, the four-layer CIFAR-10 net).  One row per seed,
    network and LRN layer: is LRN really normalising in the networks the table compares?  Empty when none is on
    disk (or none has an LRN layer)."""
    import pandas as pd

    from ..mechanisms import recipe_lrn_activity

    names = {BASELINE} | {name for name, _, _ in runs if name.endswith(":with")}
    tables = []
    for name, seed, config, net, splits in trained_networks(runs, names, store):
        t = recipe_lrn_activity(config, splits, net)
        if not len(t):
            continue
        t.insert(0, "network", name)
        t.insert(0, "seed", seed)
        tables.append(t)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
