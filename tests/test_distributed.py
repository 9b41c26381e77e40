"""Several processes (torchrun, DistributedDataParallel): 2 CPU ranks over gloo reproduce the 1-process run."""
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from alexnet_book.runs import ResultsStore, load_checkpoint
from alexnet_book.config import TrainConfig
from alexnet_book.train import train

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
from support import fake_splits  # noqa: E402

CHILD = """
import json, os, sys
import torch
sys.path.insert(0, {tests!r})
from test_distributed import ddp_config, record_what_is_seen
from support import fake_splits
from alexnet_book.train import train

torch.set_num_threads(1)
seen = record_what_is_seen()
train(ddp_config(sys.argv[1]), splits=fake_splits(n_val=41), progress=False)
with open(os.path.join(sys.argv[1], f"seen-{{os.environ['RANK']}}.json"), "w") as f:
    json.dump(seen, f)
"""


def record_what_is_seen() -> dict:
    """Wrap the batch makers so a process notes which training images (by pixel sum) and how many validation
    images it handled."""
    import alexnet_book.evaluate as E
    import alexnet_book.train as T

    seen = {"train": [], "val": 0}
    train_batch, centre_batch = T.train_batch, E.centre_batch

    def noting_train_batch(images, *args, **kwargs):
        seen["train"].append(images.flatten(1).long().sum(1).tolist())
        return train_batch(images, *args, **kwargs)

    def noting_centre_batch(images, *args, **kwargs):
        seen["val"] += len(images)
        return centre_batch(images, *args, **kwargs)

    T.train_batch, E.centre_batch = noting_train_batch, noting_centre_batch
    return seen


def ddp_config(out_dir) -> TrainConfig:
    """fp32, deterministic, no augmentation or dropout: the only difference left is who computes what."""
    return TrainConfig(data="synthetic", model="fourlayer", epochs=2, batch_size=16, lr=0.05, input_scale=1 / 64,
                       crops_flips=False, pca_colour=False, precision="fp32", deterministic=True, log_every=1,
                       ten_crop=True, out_dir=str(out_dir))


def test_two_gloo_processes_reproduce_one_process(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests=str(TESTS)))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1")
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script), str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    torch.set_num_threads(1)
    seen = record_what_is_seen()
    try:
        one = train(ddp_config(tmp_path / "one"), splits=fake_splits(n_val=41), progress=False)
    finally:
        import alexnet_book.evaluate as E
        import alexnet_book.train as T
        from alexnet_book.augment import centre_batch, train_batch

        T.train_batch, E.centre_batch = train_batch, centre_batch
    key = ddp_config(tmp_path / "two").hash()
    row = ResultsStore(tmp_path / "two" / "results.jsonl").find(key)
    assert row is not None and row["world_size"] == 2  # rank 0 recorded the run, once
    assert len(ResultsStore(tmp_path / "two" / "results.jsonl").rows()) == 1

    # each step, the two ranks took disjoint halves of the one-process batch (global batch 16 = 2 × 8)
    import json

    ranks = [json.loads((tmp_path / "two" / f"seen-{r}.json").read_text()) for r in (0, 1)]
    assert len(seen["train"]) == len(ranks[0]["train"]) == len(ranks[1]["train"]) == 8
    for batch, half0, half1 in zip(seen["train"], ranks[0]["train"], ranks[1]["train"]):
        assert len(half0) == len(half1) == 8 and half0 + half1 == batch
    # every validation (one per epoch; the final one reuses the last) scored all 41 images once between the ranks
    assert seen["val"] == 2 * 41 and ranks[0]["val"] + ranks[1]["val"] == 2 * 41
    assert sorted([ranks[0]["val"], ranks[1]["val"]]) == [2 * 20, 2 * 21]

    # the loss curve, step by step (each logged loss is the global batch's, all-reduced)
    h1 = one.history
    h2 = pd.read_csv(Path(row["run_dir"]) / "metrics.csv")
    assert len(h1) == len(h2) and (h1.step.values == h2.step.values).all()
    assert h1.train_loss.values == pytest.approx(h2.train_loss.values, rel=1e-5, abs=1e-6)
    assert (h1.train_error.fillna(-1).values == h2.train_error.fillna(-1).values).all()

    # validation: 41 images over 2 ranks (20 + 21), each scored once -- errors and mean loss agree
    m1, m2 = one.metrics, row["metrics"]
    for k in ("val_top1_error", "val_top5_error", "val_top1_error_10crop", "val_top5_error_10crop"):
        assert m1[k] == pytest.approx(m2[k], abs=1e-9), k
    assert m1["val_loss"] == pytest.approx(m2["val_loss"], rel=1e-5)

    w1 = one.model.state_dict()
    w2 = load_checkpoint(row["model_path"])["model"]
    for k in w1:
        assert torch.allclose(w1[k], w2[k], rtol=1e-4, atol=1e-6), k


RESUME_CHILD = """
import os, sys
import torch
sys.path.insert(0, {tests!r})
from test_distributed import ddp_config
from support import fake_splits
import alexnet_book.train as T

torch.set_num_threads(1)
if os.environ["RANK"] != "0":  # a rank on another node, without the run folder: it must not need it
    def no_folder(*a, **k):
        raise AssertionError("only rank 0 reads the checkpoint")
    T.load_checkpoint = no_folder
steps = None if sys.argv[2] == "all" else int(sys.argv[2])
config = ddp_config(sys.argv[1])
T.train(T.TrainConfig.from_dict({{**config.__dict__, "max_steps": steps}}), splits=fake_splits(n_val=41),
        progress=False)
"""


def test_a_resumed_run_under_torchrun_takes_rank_0s_checkpoint(tmp_path):
    """Rank 0 reads the run folder and broadcasts the state: the other ranks resume from it without reading
    anything (on a node without the folder they used to start at step 0 and the job deadlocked); a run stopped
    after 3 steps and continued equals the uninterrupted run."""
    script = tmp_path / "child.py"
    script.write_text(RESUME_CHILD.format(tests=str(TESTS)))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1")

    def torchrun(folder, steps):
        done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                               str(script), str(folder), steps], env=env, capture_output=True, text=True,
                              timeout=240)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    torchrun(tmp_path / "whole", "all")
    torchrun(tmp_path / "parts", "3")
    torchrun(tmp_path / "parts", "all")
    rows = {name: ResultsStore(tmp_path / name / "results.jsonl").find(ddp_config(tmp_path / name).hash())
            for name in ("whole", "parts")}
    a, b = (load_checkpoint(rows[n]["model_path"])["model"] for n in ("whole", "parts"))
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_rank_seeds_never_collide_across_seeds():
    from alexnet_book.devices import rank_seed

    assert rank_seed(7, 0) == 7 and rank_seed(7, 0, stream=1) == 7 + 1_000_003  # one process: as before
    streams = [(s, r, t) for s in range(200) for r in range(8) for t in (0, 1)]
    values = [rank_seed(s, r, t) for s, r, t in streams]
    assert len(set(values)) == len(values)  # seed 0 rank 1 no longer shares seed 1 rank 0's masks
    assert all(0 <= v < 2 ** 63 for v in values)
