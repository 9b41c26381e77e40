"""Training with the paper's recipe (§5), on a CPU, one GPU, or many GPUs and nodes through torchrun.

"We trained our models using stochastic gradient descent with a batch size of 128 examples, momentum of 0.9,
and weight decay of 0.0005 ... The learning rate was initialized at 0.01 ... We followed a heuristic which
was to divide the learning rate by 10 when the validation error rate stopped improving with the current
learning rate.  The learning rate was reduced three times prior to termination." (§5)

``train(TrainConfig(...))`` is the one training path: the notebooks, ``alexnet-book train``, the ablations and
torchrun all call it.  The pieces of the recipe (parameter groups, the plateau rule, the learning rate) are
:mod:`alexnet_book.sgd`, the run's state (``TrainState``: what a checkpoint holds) :mod:`alexnet_book.train_state`.
Read this module top to bottom: ``train`` and its steps -- set-up, the lookup of a finished identical run, data and network, resume, ``train_one_epoch``, ``validate``,
the end of an epoch, and ``finish`` (the final evaluation, recorded).  The configuration is
:mod:`alexnet_book.config`, devices and processes :mod:`alexnet_book.devices`, the command line
:mod:`alexnet_book.commands.train` (``python -m alexnet_book.commands.train`` runs it, as torchrun does on every rank).

Several processes (``torchrun --nproc_per_node=N``): each rank takes a disjoint share of every batch (the
global batch stays ``batch_size``), gradients are averaged by DistributedDataParallel, every validation image
is scored by exactly one rank and the counts are summed; rank 0 alone logs, checkpoints and records.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import asdict

import torch
import torch.nn.functional as F

from .augment import train_batch
from .checkpoints import check_same_data, reused_result
from .config import SCHEDULES, RunResult, TrainConfig, check_config
from .devices import all_sum, barrier, broadcast, end_processes, gather, pick_precision, rank_seed, \
    shard, start_processes
from .evaluate import evaluate
from .networks import build_network
from .progress import LivePlot, in_notebook
from .files import atomic_write_text
from .runs import MetricsLog, ResultsStore, load_checkpoint, run_lock, save_checkpoint
from .sgd import Plateau, epoch_order, learning_rate, parameter_groups
from .train_state import Run, TrainState

# ---------------------------------------------------------------------------------------------------------------
# Training


def train(config: TrainConfig, *, progress: bool = True, live_plot: bool = False, callback=None,
          store: ResultsStore | None = None, reuse: bool = True, splits=None, loggers=()) -> RunResult:
    """Train one network with the §5 recipe and return its final metrics, log and weights.

    Resumes from ``run_dir/checkpoint.pt`` when one exists (exactly: model, optimiser, plateau state, step,
    every random stream).  When ``reuse`` and the results store already holds a finished run with the same
    ``config.hash()``, that run is returned (``reused=True``) instead of training again.  ``callback(event)``
    is called after each validation with the metrics row plus "model" (the network) and "run_dir".
    ``splits`` lets a caller pass a loaded ``DataSplits`` instead of ``load_dataset(config.data, ...)``.
    ``loggers``: callables given every row the metrics log receives (a dict: step, epoch, lr, train_loss, ...),
    e.g. ``TensorBoardLogger()`` or ``print``.  A network of your own trains the same way once registered
    (``model.register_model``; ``TrainConfig(model=its name)``).
    Under torchrun (WORLD_SIZE > 1) every rank calls this; only rank 0 logs, checkpoints and records.
    """
    check_config(config)  # nonsense settings are refused before any work, with nothing recorded
    processes = start_processes(config.device)  # one process, or torchrun's ranks
    rank = processes.rank
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    held = contextlib.ExitStack()
    finished = False
    try:
        if rank == 0:  # one process trains in a run folder: an identical run waits here, then finds the result
            held.enter_context(run_lock(config.run_dir()))
        result = _train(config, processes, progress=progress and rank == 0,
                        live_plot=live_plot and rank == 0 and in_notebook(), callback=callback, store=store,
                        reuse=reuse, splits=splits, loggers=tuple(loggers) if rank == 0 else ())
        finished = True
        return result
    finally:
        held.close()
        torch.use_deterministic_algorithms(was_deterministic)  # leave the caller's process as it was
        end_processes(processes, finished=finished)


def _train(config, processes, *, progress, live_plot, callback, store, reuse, splits, loggers=()) -> RunResult:
    run = set_up(config, processes, store=store, progress=progress, callback=callback, loggers=loggers)
    found = finished_run(run, reuse)  # an identical finished run is looked up, not repeated
    if found is not None:
        check_same_data(found.get("data_identity"), config, splits, f"the finished run in {found.get('run_dir')}")
        run.say(f"run {run.key}: reusing the finished run in {found.get('run_dir')} (reuse=False trains again)")
        return reused_result(config, found, processes.device)
    state = prepare(run, splits)
    resume(run, state, reuse)
    start(run, state, live_plot)
    train_epochs(run, state)
    return finish(run, state)


def set_up(config, processes, *, store, progress, callback, loggers) -> Run:
    """The run's names and places, and how it reports."""
    run_dir = config.run_dir()
    store = store if store is not None else ResultsStore(run_dir.parent / "results.jsonl")
    say = (lambda *a: print(*a, flush=True)) if progress else (lambda *a: None)
    return Run(config=config, processes=processes, key=config.hash(), run_dir=run_dir, store=store, say=say,
               progress=progress, loggers=loggers, callback=callback)


def finished_run(run: Run, reuse: bool) -> dict | None:
    """The results store's row of an identical finished run (rank 0 looks, every rank gets its answer)."""
    found = run.store.find(run.key) if reuse and run.processes.rank == 0 else None
    return broadcast(found, run.processes.world)


def prepare(run: Run, splits) -> TrainState:
    """Data, network, optimiser and random streams: the state of a run at step 0."""
    config, device, rank, world = run.config, run.processes.device, run.processes.rank, run.processes.world
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} does not split over {world} processes; "
                         f"choose a multiple of {world}")
    if config.schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {config.schedule!r}; choose 'plateau', 'constant' or 'linear'")
    if config.deterministic:
        torch.use_deterministic_algorithms(True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if splits is None:
        from .data import load_dataset

        # Every rank opens the data itself.  The first to need the cache builds it under the cache's file lock
        # while the others wait on that lock -- not in a collective, whose timeout (10 minutes by default) a
        # first ImageNet build would exceed -- and then map the finished cache.  With a data folder per node,
        # each node builds its own (under its own lock), and no collective waits on it.
        splits = load_dataset(config.data, config.root, scale=config.scale, limit=config.limit,
                              progress=run.progress)
    from .data import data_identity

    run.splits, run.data_id = splits, data_identity(splits)
    run.precision = pick_precision(config.precision, device)

    torch.manual_seed(config.seed)  # the paper's initialisation (§5) draws from torch's generator
    net = build_network(config, len(splits.classes), splits.crop).to(device)
    if config.channels_last:  # NHWC: faster on GPUs, and on this CPU too (docs/benchmarks.md)
        net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(parameter_groups(net, config), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    plateau = Plateau(config.patience, config.max_drops)
    torch.manual_seed(rank_seed(config.seed, rank))  # dropout masks differ between ranks
    augment_rng = torch.Generator().manual_seed(rank_seed(config.seed, rank, stream=1))  # crops, flips, PCA noise
    state = TrainState(net=net, optimizer=optimizer, plateau=plateau, augment_rng=augment_rng)
    prepare_data(run)
    return state


def prepare_data(run: Run) -> None:
    """Batch sizes and step counts, and the data on the device: the mean, the PCA, this rank's shares."""
    config, splits, device = run.config, run.splits, run.processes.device
    rank, world = run.processes.rank, run.processes.world
    run.local_batch = config.batch_size // world
    run.steps_per_epoch = len(splits.train) // config.batch_size  # the last partial batch is dropped
    if run.steps_per_epoch == 0:
        raise ValueError(f"batch_size {config.batch_size} exceeds the {len(splits.train)} training images; "
                         f"lower --batch-size or raise --limit")
    run.total_steps = config.epochs * run.steps_per_epoch
    if config.max_steps is not None:
        run.total_steps = min(run.total_steps, config.max_steps)
    run.mean_image = splits.mean_image.to(device)
    run.pca = (splits.pca_eigvals.to(device), splits.pca_eigvecs.to(device)) if config.pca_colour else None
    run.val_share = shard(splits.val, rank, world)
    # a fixed subset of the training images (the same for every seed and variant), scored like validation
    if config.train_eval_size:
        pick = torch.randperm(len(splits.train), generator=torch.Generator().manual_seed(0))
        pick = pick[:config.train_eval_size].sort().values
        run.train_probe = shard(dataclasses.replace(splits.train, images=splits.train.images[pick],
                                                    labels=splits.train.labels[pick]), rank, world)
    if config.data_on_device:  # the uint8 training set held on the device; the same batches, made there
        from .device_data import DeviceFeed

        run.feed = DeviceFeed(splits.train.images, run.mean_image, splits.crop, device=device, pca=run.pca,
                              crops_flips=config.crops_flips)


def resume(run: Run, state: TrainState, reuse: bool) -> None:
    """Continue from the run's checkpoint when it holds a place in this very run; rank 0 reads it and every rank
    takes what rank 0 read.  Writes config.json and opens the metrics log (rank 0)."""
    config, processes, path = run.config, run.processes, run.checkpoint_path
    if processes.rank == 0:
        run.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run.run_dir / "config.json", json.dumps(asdict(config), indent=2, sort_keys=True) + "\n")
    barrier(processes.world)
    run.log = MetricsLog(run.run_dir / "metrics.csv") if processes.rank == 0 else None
    saved = load_checkpoint(path) if processes.rank == 0 and path.exists() else None
    # rank 0's run folder decides: every rank resumes from the state it read (or none starts from it)
    saved = broadcast(saved, processes.world)
    saved = usable_checkpoint(run, saved, reuse)
    if saved is not None:
        if not state.load_state_dict(saved, processes):
            run.say(f"{path} was written by {len(saved['ranks'])} processes, now {processes.world}: "
                    f"random streams restart, so the continuation is not bitwise the same")
        if run.log is not None:
            run.log.truncate(saved["log_rows"])  # drop rows logged after this checkpoint by a killed run
        run.say(f"resuming {run.run_dir} at epoch {state.epoch}, step {state.step}")
    elif run.log is not None:
        run.log.truncate(0)


def usable_checkpoint(run: Run, saved: dict | None, reuse: bool) -> dict | None:
    """``saved`` when this run continues from it; None when it starts afresh instead (said why)."""
    from .data import same_data

    config, path = run.config, run.checkpoint_path
    if saved is not None and config.max_steps is not None and saved["step"] > config.max_steps:
        run.say(f"{path} is at step {saved['step']}, past max_steps={config.max_steps}; starting afresh")
        saved = None
    if saved is not None and not reuse and saved["step"] >= run.total_steps:
        run.say(f"{path} holds a finished run and reuse=False: training again from the start")
        saved = None
    if saved is not None and not same_data(saved.get("data_identity"), run.data_id):
        if reuse:  # a run is never continued on other data: refused here (reuse=False starts it afresh)
            check_same_data(saved.get("data_identity"), config, run.splits, str(path))
        run.say(f"{path} was written on other data and reuse=False: training again from the start")
        saved = None
    return saved


def start(run: Run, state: TrainState, live_plot: bool) -> None:
    """The network as the steps call it (DDP, compiled), the opening line, and the session's clocks and plot."""
    config, device, world = run.config, run.processes.device, run.processes.world
    run.model = state.net
    if world > 1:
        run.model = torch.nn.parallel.DistributedDataParallel(state.net, device_ids=[device.index] if device.type
                                                              == "cuda" else None)
    if config.compile:
        run.model = torch.compile(run.model)
    splits = run.splits
    run.say(f"run {run.key} in {run.run_dir}: {config.model} on {splits.name} ({len(splits.train)} train / "
            f"{len(splits.val)} val images, crop {splits.crop}), device {device}, "
            f"{'bf16 autocast' if run.precision else 'fp32'}, {world} process(es), {run.steps_per_epoch} steps per "
            f"epoch")
    state.t0 = time.perf_counter()
    state.history = run.log.read().to_dict("records") if run.log is not None and len(run.log) else []
    run.plot = LivePlot(f"{config.model} on {splits.name} · run {run.key}") if live_plot else None
    state.window_t, state.window_images = time.perf_counter(), 0
    state.epoch_train_s, state.epoch_images = 0.0, 0
    state.lr = learning_rate(config, state.step, config.epochs * run.steps_per_epoch, run.steps_per_epoch,
                             state.plateau.drops)


def train_epochs(run: Run, state: TrainState) -> None:
    """Epochs until the run's length, its step budget, or ``stop_train_error``; checkpoints as it goes."""
    from tqdm.auto import tqdm

    config = run.config
    epochs_bar = tqdm(total=config.epochs, initial=state.epoch, desc="epochs", unit="epoch",
                      disable=not run.progress, file=sys.stdout)
    run.model.train()
    while state.epoch < config.epochs and state.step < run.total_steps:
        train_one_epoch(run, state)
        if state.batch < run.steps_per_epoch:
            break  # the step budget ran out mid-epoch
        if end_of_epoch(run, state, epochs_bar):
            break
    epochs_bar.close()
    if state.batch:  # stopped by max_steps mid-epoch: keep the place, so a larger budget continues from here
        write_checkpoint(run, state)


def train_one_epoch(run: Run, state: TrainState) -> None:
    """The steps of the current epoch from where it stands, in the epoch's order (or until the step budget)."""
    from tqdm.auto import tqdm

    config = run.config
    order = epoch_order(len(run.splits.train), config.seed, state.epoch)
    steps_bar = tqdm(total=run.steps_per_epoch, initial=state.batch, desc=f"epoch {state.epoch + 1}", unit="step",
                     leave=False, disable=not run.progress, file=sys.stdout)
    while state.batch < run.steps_per_epoch and state.step < run.total_steps:
        step_t = time.perf_counter()
        loss_value, errors, n = train_step(run, state, order)
        state.step, state.batch = state.step + 1, state.batch + 1
        state.images_seen += config.batch_size
        state.window_images += config.batch_size
        state.train_s += time.perf_counter() - step_t
        state.epoch_train_s += time.perf_counter() - step_t
        state.epoch_images += config.batch_size
        if run.progress:
            steps_bar.update(1)
            steps_bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{state.lr:.2g}",
                                  img_s=f"{config.batch_size / max(time.perf_counter() - step_t, 1e-9):.0f}")
        if state.step % config.log_every == 0:
            log_steps(run, state, loss_value, errors, n)
        if config.checkpoint_every and state.step % config.checkpoint_every == 0:
            write_checkpoint(run, state)
    steps_bar.close()


def train_step(run: Run, state: TrainState, order: torch.Tensor) -> tuple[float, int, int]:
    """One SGD step on this rank's share of the next batch (§4.1 augmentation, §5 update); (loss, errors, n)."""
    config, device = run.config, run.processes.device
    state.lr = set_lr(run, state)
    start = state.batch * config.batch_size + run.processes.rank * run.local_batch
    index = order[start:start + run.local_batch]
    if run.feed is not None:
        upcoming = order[start + config.batch_size:start + config.batch_size + run.local_batch]
        x = run.feed.batch(index, state.augment_rng, upcoming=upcoming)
    else:
        x = train_batch(run.splits.train.images[index], run.mean_image, run.splits.crop,
                        crops_flips=config.crops_flips, pca=run.pca, generator=state.augment_rng, device=device)
    if config.input_scale != 1.0:
        x = x * config.input_scale
    # train_batch hands back NCHW with NHWC strides; convolutions follow their input's layout, so the
    # layout is chosen here
    x = x.contiguous(memory_format=torch.channels_last if config.channels_last else torch.contiguous_format)
    labels = run.splits.train.labels[index].to(device)
    with autocast(run):
        logits = run.model(x)
    loss = F.cross_entropy(logits.float(), labels)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    state.optimizer.step()

    loss_value = loss.item()
    if not math.isfinite(loss_value):
        raise FloatingPointError(
            f"training loss is {loss_value} at step {state.step + 1} (epoch {state.epoch + 1}) of run {run.key} "
            f"({run.run_dir}); config {json.dumps(asdict(config), sort_keys=True)}. Lower the learning rate "
            f"(--lr) or set an input scale (--input-scale)")
    errors = (logits.detach().argmax(1) != labels).sum().item()
    state.epoch_sums += torch.tensor([loss_value * len(labels), errors, len(labels)], dtype=torch.float64)
    return loss_value, errors, len(labels)


def autocast(run: Run):
    """bf16 autocast when the run computes in it, else nothing."""
    if run.precision:
        return torch.autocast(run.processes.device.type, dtype=run.precision)
    return contextlib.nullcontext()


def set_lr(run: Run, state: TrainState) -> float:
    """ε at the current step, set on every parameter group (times its ``lr_scale``)."""
    config = run.config
    lr = learning_rate(config, state.step, config.epochs * run.steps_per_epoch, run.steps_per_epoch,
                       state.plateau.drops)
    for group in state.optimizer.param_groups:
        group["lr"] = group["lr_scale"] * lr
    return lr


def log_steps(run: Run, state: TrainState, loss_value: float, errors: int, n: int) -> None:
    """A row of the metrics log: the last step's loss and error over all ranks, and the window's images/s."""
    world = run.processes.world
    s = all_sum(torch.tensor([loss_value, errors, n], dtype=torch.float64), world, run.processes.device)
    if run.processes.rank == 0:
        now = time.perf_counter()
        row = {"step": state.step, "epoch": round(state.epoch + state.batch / run.steps_per_epoch, 4),
               "lr": state.lr, "train_loss": s[0].item() / world, "train_error": s[1].item() / s[2].item(),
               "images_per_s": round(state.window_images / max(now - state.window_t, 1e-9), 1),
               "time": round(state.wall_before + now - state.t0, 3)}
        record_row(run, state, row)
        state.window_t, state.window_images = now, 0
        if run.plot:
            run.plot.update(state.history)


def record_row(run: Run, state: TrainState, row: dict) -> None:
    """One row into the metrics log, the loggers and the session's history (rank 0)."""
    run.log.append(row)
    for logger in run.loggers:
        logger(row)
    state.history.append(row)


def end_of_epoch(run: Run, state: TrainState, epochs_bar) -> bool:
    """Validate, apply the plateau rule (§5), log, checkpoint; True when ``stop_train_error`` ends the run."""
    config, processes = run.config, run.processes
    s = all_sum(state.epoch_sums.clone(), processes.world, processes.device)
    state.last_train = {"train_loss": s[0].item() / s[2].item(), "train_error": s[1].item() / s[2].item()}
    state.epoch, state.batch = state.epoch + 1, 0
    state.epoch_sums.zero_()
    row = {"step": state.step, "epoch": state.epoch, "lr": state.lr, **state.last_train}
    if state.epoch % config.eval_every == 0 or state.epoch == config.epochs:
        state.last_val = validate(run, state)
        row.update(val_top1=state.last_val["top1"], val_top5=state.last_val["top5"])
        if "train_eval" in state.last_val:
            row["train_eval_error"] = state.last_val["train_eval"]
        if config.schedule == "plateau" and state.plateau.update(state.last_val["top1"]):
            run.say(f"epoch {state.epoch}: validation error stopped improving; learning rate ÷10 "
                    f"(drop {state.plateau.drops} of {config.max_drops})")
    if processes.rank == 0:
        now = time.perf_counter()
        row.update(images_per_s=round(state.epoch_images / max(state.epoch_train_s, 1e-9), 1),
                   time=round(state.wall_before + now - state.t0, 3))
        record_row(run, state, row)
        if run.plot:
            run.plot.update(state.history, force=True)
        if run.callback is not None:
            run.callback({**row, "model": state.net, "run_dir": run.run_dir, "config": config})
    state.window_t, state.window_images = time.perf_counter(), 0
    state.epoch_train_s, state.epoch_images = 0.0, 0
    epochs_bar.update(1)
    epochs_bar.set_postfix(loss=f"{state.last_train['train_loss']:.3f}",
                           val_top1=f"{row.get('val_top1', float('nan')):.3f}")
    write_checkpoint(run, state)
    if config.stop_train_error is not None and state.last_train["train_error"] <= config.stop_train_error:
        run.say(f"epoch {state.epoch}: training error {state.last_train['train_error']:.4f} ≤ "
                f"{config.stop_train_error} (stop_train_error): run ends here")
        return True
    return False


def validate(run: Run, state: TrainState) -> dict:
    """Every validation image scored once: each rank its shard, the counts summed (§6)."""
    config, device, world = run.config, run.processes.device, run.processes.world
    r = evaluate(state.net, run.val_share, run.mean_image, run.splits.crop, device=device, precision=run.precision,
                 batch_size=max(run.local_batch, 64), input_scale=config.input_scale)
    c = all_sum(torch.tensor([r["top1_correct"], r["top5_correct"], r["loss"] * r["n"], r["n"]],
                             dtype=torch.float64), world, device)
    out = {"top1": 1 - c[0].item() / c[3].item(), "top5": 1 - c[1].item() / c[3].item(),
           "loss": c[2].item() / c[3].item(), "step": state.step}
    if run.train_probe is not None:  # overfitting: the same measurement on training images (eval mode, centre crop)
        r = evaluate(state.net, run.train_probe, run.mean_image, run.splits.crop, device=device,
                     precision=run.precision, batch_size=max(run.local_batch, 64), input_scale=config.input_scale)
        c = all_sum(torch.tensor([r["top1_correct"], r["n"]], dtype=torch.float64), world, device)
        out["train_eval"] = 1 - c[0].item() / c[1].item()
    return out


def write_checkpoint(run: Run, state: TrainState) -> None:
    """The checkpoint (``TrainState.state_dict``); ranks' random streams are gathered to rank 0, which writes it."""
    ranks = gather(state.rank_state(run.processes.device), run.processes.world)
    if run.processes.rank == 0:
        save_checkpoint(run.checkpoint_path, state.state_dict(run, ranks))


def finish(run: Run, state: TrainState) -> RunResult:
    """The final evaluation (§6): centre crop, and 10 crops; the network saved and the run recorded (rank 0)."""
    config = run.config
    if state.last_val.get("step") != state.step:
        state.last_val = validate(run, state)
    metrics = final_metrics(run, state)
    if run.plot:
        run.plot.update(state.history, force=True)
    if run.processes.rank == 0:
        record(run, state, metrics)
    history_df = run.log.read() if run.log is not None else None
    return RunResult(config=config, run_dir=run.run_dir, metrics=metrics, history=history_df, model=state.net,
                     reused=False)


def final_metrics(run: Run, state: TrainState) -> dict:
    """The run's final numbers: validation errors (and 10-crop ones), training errors, length and speed."""
    config, device, world = run.config, run.processes.device, run.processes.world
    last_val = state.last_val
    metrics = {"val_top1_error": last_val["top1"], "val_top5_error": last_val["top5"], "val_loss": last_val["loss"]}
    if "train_eval" in last_val:
        metrics["train_eval_error"] = last_val["train_eval"]
        # the per-epoch curve, for "epochs to a training error" (§4.2's iterations to converge)
        metrics["train_eval_curve"] = [[r["epoch"], r["train_eval_error"]] for r in state.history
                                       if isinstance(r.get("train_eval_error"), float)
                                       and math.isfinite(r["train_eval_error"])]
    if config.ten_crop:
        r = evaluate(state.net, run.val_share, run.mean_image, run.splits.crop, ten_crop=True, device=device,
                     precision=run.precision, batch_size=max(run.local_batch, 16), input_scale=config.input_scale,
                     progress=run.progress)
        c = all_sum(torch.tensor([r["top1_correct"], r["top5_correct"], r["n"]], dtype=torch.float64), world,
                    device)
        metrics.update(val_top1_error_10crop=1 - c[0].item() / c[2].item(),
                       val_top5_error_10crop=1 - c[1].item() / c[2].item())
    s = all_sum(state.epoch_sums.clone(), world, device)
    if s[2] > 0:  # the run ended mid-epoch: the partial epoch's training numbers
        metrics.update(train_loss=s[0].item() / s[2].item(), train_error=s[1].item() / s[2].item())
    else:
        metrics.update(state.last_train)
    wall_s = state.wall_before + time.perf_counter() - state.t0
    metrics.update(epochs=round(state.step / run.steps_per_epoch, 4), steps=state.step, wall_s=round(wall_s, 3),
                   images_per_s=round(state.images_seen / max(state.train_s, 1e-9), 1))
    return metrics


def record(run: Run, state: TrainState, metrics: dict) -> None:
    """The finished network saved as model-<hash>.pt and the run added to the results store (rank 0)."""
    config, splits, key = run.config, run.splits, run.key
    model_path = run.run_dir / f"model-{key}.pt"
    save_checkpoint(model_path, {"model": state.net.state_dict(), "config": asdict(config), "metrics": metrics,
                                 "num_classes": len(splits.classes), "crop": splits.crop,
                                 "data_identity": run.data_id})
    run.store.add({"config_hash": key, "config": asdict(config), "data": splits.name, "seed": config.seed,
                   "metrics": metrics, "wall_s": metrics["wall_s"], "run_dir": str(run.run_dir.resolve()),
                   "model_path": str(model_path.resolve()), "device": str(run.processes.device),
                   "world_size": run.processes.world, "precision": "bf16" if run.precision else "fp32",
                   "source": splits.source, "data_identity": run.data_id})
    run.say("final: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
                                  if not isinstance(v, list)))


if __name__ == "__main__":  # the library does not import its command line: say where the command is
    sys.exit("python -m alexnet_book.train: the command moved; run `python -m alexnet_book.commands.train ...` "
             "(under torchrun: `torchrun ... -m alexnet_book.commands.train ...`) or `alexnet-book train ...`")
