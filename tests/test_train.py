"""Training (§5): the recipe's pieces, records and reuse, NaN stops, exact resume (also after SIGKILL), the CLI."""
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import alexnet_book.train as T
from alexnet_book.runs import ResultsStore, config_hash, load_checkpoint
from alexnet_book.commands import train as train_command
from alexnet_book.config import LATER_FIELDS, TrainConfig, recipe
from alexnet_book.networks import build_network
from alexnet_book.progress import LivePlot
from alexnet_book.sgd import Plateau, learning_rate, parameter_groups
from support import quiet, tiny_config

TESTS = Path(__file__).resolve().parent


# -- the recipe's pieces -------------------------------------------------------------------------------------------

def test_plateau_divides_after_patience_at_most_max_drops():
    p = Plateau(patience=2, max_drops=3)
    drops = [p.update(e) for e in [0.9, 0.8, 0.8, 0.85, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]]
    # improvements at 0, 1, 4; then a drop after every 2 non-improving validations, three times in all
    assert [i for i, d in enumerate(drops) if d] == [3, 6, 8]
    assert p.drops == 3
    q = Plateau(2, 3)
    q.load_state_dict(p.state_dict())
    assert q.state_dict() == p.state_dict()


def test_learning_rate_schedule():
    c = TrainConfig(lr=0.01)
    assert learning_rate(c, 0, 1000, 100, 0) == 0.01
    assert learning_rate(c, 500, 1000, 100, 2) == pytest.approx(1e-4)  # two plateau drops: ÷100 (§5)
    w = TrainConfig(lr=0.1, warmup_epochs=2, schedule="linear")
    assert learning_rate(w, 0, 1000, 100, 0) == pytest.approx(0.1 / 200)
    assert learning_rate(w, 199, 1000, 100, 0) == pytest.approx(0.1 * (1 - 199 / 1000))
    assert learning_rate(w, 500, 1000, 100, 0) == pytest.approx(0.05)
    assert learning_rate(w, 1000, 1000, 100, 0) == 0.0


def test_sgd_is_the_papers_update_rule_at_constant_lr():
    """§5: v ← 0.9·v − 0.0005·ε·w − ε·∂L/∂w;  w ← w + v."""
    torch.manual_seed(0)
    w = torch.randn(5, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.01, momentum=0.9, weight_decay=5e-4)
    w_paper, v = w.detach().clone(), torch.zeros(5)
    for _ in range(4):
        loss = (w ** 3).sum()
        opt.zero_grad()
        loss.backward()
        grad = 3 * w_paper ** 2
        opt.step()
        v = 0.9 * v - 5e-4 * 0.01 * w_paper - 0.01 * grad
        w_paper = w_paper + v
    assert torch.allclose(w.detach(), w_paper, atol=1e-7)


def test_bias_like_authors_groups():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Linear(4, 2))
    plain = parameter_groups(model, TrainConfig())
    assert len(plain) == 1 and plain[0]["weight_decay"] == 5e-4
    weights, biases = parameter_groups(model, TrainConfig(bias_like_authors=True))
    assert all(p.ndim > 1 for p in weights["params"]) and len(weights["params"]) == 2
    assert all(p.ndim == 1 for p in biases["params"]) and len(biases["params"]) == 2
    assert (weights["weight_decay"], weights["lr_scale"]) == (5e-4, 1.0)
    assert (biases["weight_decay"], biases["lr_scale"]) == (0.0, 2.0)


def test_initialisation_options():
    paper_net = build_network(TrainConfig(), 10, 32)  # §5: N(0, 0.01), biases 1 in conv2/4/5, fc6, fc7
    assert paper_net.features.conv2.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert paper_net.features.conv2.bias.eq(1).all() and paper_net.features.conv3.bias.eq(0).all()
    he = build_network(TrainConfig(init_std="he", init_bias=0.1), 10, 32)
    fan_in = he.features.conv3.weight[0].numel()  # 3·3·64
    assert he.features.conv3.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.05)
    assert he.classifier.fc6.bias.eq(0.1).all() and he.classifier.fc8.bias.eq(0).all()
    wide = build_network(TrainConfig(init_std=0.03), 10, 32)
    assert wide.classifier.fc7.weight.std().item() == pytest.approx(0.03, rel=0.05)
    assert wide.input_scale == 1.0 and build_network(TrainConfig(input_scale=0.5), 10, 32).input_scale == 0.5
    with pytest.raises(ValueError, match="init_std"):
        build_network(TrainConfig(model="fourlayer", init_std="he"), 10, 32)
    with pytest.raises(ValueError, match="init_std must be"):
        build_network(TrainConfig(init_std="xavier"), 10, 32)


# -- a whole run ---------------------------------------------------------------------------------------------------

def test_train_learns_records_and_checkpoints(tmp_path, tiny):
    torch.set_num_threads(1)
    events = []
    config = tiny(model="fourlayer", epochs=4, lr=0.05, bias_like_authors=True)
    result = quiet(config, callback=events.append)
    assert not result.reused and result.run_dir == config.run_dir()
    m = result.metrics
    assert m["steps"] == 16 and m["epochs"] == 4
    assert m["val_top1_error"] < 0.5  # four colour classes: chance is 0.75
    assert 0 <= m["val_top1_error_10crop"] <= 1 and m["val_top5_error"] == 0.0  # 4 classes: top-5 always right
    assert json.loads((result.run_dir / "config.json").read_text())["lr"] == 0.05
    h = result.history
    assert list(h.columns) == ["step", "epoch", "lr", "train_loss", "train_error", "val_top1", "val_top5",
                               "images_per_s", "time", "train_eval_error"]
    assert h.val_top1.notna().sum() == 4 and h.step.max() == 16
    assert [e["epoch"] for e in events] == [1, 2, 3, 4] and all(isinstance(e["model"], torch.nn.Module)
                                                                for e in events)
    row = ResultsStore(tmp_path / "results.jsonl").find(config.hash())
    assert row["metrics"] == m and row["data"] == "synthetic" and row["seed"] == 0 and row["wall_s"] > 0
    assert "cores" in row["machine"] and row["precision"] == "fp32"
    state = load_checkpoint(result.run_dir / "checkpoint.pt")
    assert {"model", "optimizer", "plateau", "step", "epoch", "ranks", "config"} <= set(state)
    assert state["step"] == 16 and state["epoch"] == 4 and {"torch", "augment"} <= set(state["ranks"][0]["rng"])
    lrs = [g["lr"] for g in state["optimizer"]["param_groups"]]
    assert lrs == [0.05, 0.1]  # biases at twice the weights' learning rate
    assert state["optimizer"]["param_groups"][1]["weight_decay"] == 0.0


def test_identical_finished_run_is_reused_not_repeated(monkeypatch, tiny):
    torch.set_num_threads(1)
    config = tiny(model="fourlayer", epochs=1, ten_crop=False)
    first = quiet(config)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(T, "train_batch", no_training)
    again = quiet(config)
    assert again.reused and again.metrics == first.metrics
    assert all(torch.equal(a, b) for a, b in zip(again.model.state_dict().values(),
                                                 first.model.state_dict().values()))
    with pytest.raises(AssertionError, match="trained again"):
        quiet(config, reuse=False)


def test_non_finite_loss_stops_at_once_naming_step_and_config(tiny):
    config = tiny(model="fourlayer", lr=1e30, input_scale=1e6)
    with pytest.raises(FloatingPointError) as info:
        quiet(config)
    text = str(info.value)
    assert "at step " in text and config.hash() in text
    step = int(text.split("at step ")[1].split()[0])
    assert step <= 3  # it stops as soon as the loss stops being finite, not at the end of the epoch


def test_budget_then_continue_equals_one_uninterrupted_run(tmp_path):
    torch.set_num_threads(1)
    whole = quiet(tiny_config(tmp_path / "a"))
    part = quiet(tiny_config(tmp_path / "b", max_steps=6))  # stops mid-epoch 2
    assert part.metrics["steps"] == 6 and not part.reused
    rest = quiet(tiny_config(tmp_path / "b"))  # same trajectory: continues from step 6
    assert rest.run_dir == part.run_dir
    assert all(torch.equal(a, b) for a, b in zip(whole.model.state_dict().values(),
                                                 rest.model.state_dict().values()))
    for key in ("val_top1_error", "val_top5_error", "val_loss", "val_top1_error_10crop", "train_loss", "steps"):
        assert whole.metrics[key] == rest.metrics[key], key
    cols = ["step", "epoch", "lr", "train_loss", "train_error", "val_top1", "val_top5"]
    assert whole.history[cols].equals(rest.history[cols])


def test_a_constant_rate_run_given_more_epochs_continues(tmp_path):
    """With a constant learning rate the length never enters the trajectory, so a run given more epochs (Fig. 1's
    tanh when 45 were not enough) continues from where the shorter one ended, and equals one run of that length."""
    torch.set_num_threads(1)
    constant = dict(schedule="constant", ten_crop=False)
    whole = quiet(tiny_config(tmp_path / "a", epochs=3, eval_every=3, **constant))
    short = quiet(tiny_config(tmp_path / "b", epochs=2, eval_every=2, **constant))
    longer = quiet(tiny_config(tmp_path / "b", epochs=3, eval_every=3, **constant))
    assert longer.run_dir == short.run_dir and not longer.reused and longer.metrics["epochs"] == 3.0
    assert all(torch.equal(a, b) for a, b in zip(whole.model.state_dict().values(),
                                                 longer.model.state_dict().values()))
    plateau = tiny_config(tmp_path, epochs=2)  # the plateau rule and linear decay do look at the length
    assert plateau.run_hash() != tiny_config(tmp_path, epochs=3).run_hash()


def test_stop_train_error_ends_the_run_at_the_first_epoch_at_or_below_it(tmp_path):
    from alexnet_book.figures import per_epoch

    torch.set_num_threads(1)
    whole = quiet(tiny_config(tmp_path, epochs=4))
    errors = per_epoch(whole.history).set_index("epoch").train_error
    target = float(errors.loc[2])
    assert errors.loc[1] > target  # this tiny run's epoch 2 is the first at or below its own error
    stopped = quiet(tiny_config(tmp_path / "stop", epochs=4, stop_train_error=target))
    assert stopped.metrics["epochs"] == 2.0 and stopped.metrics["train_error"] == pytest.approx(target)
    # the same trajectory: the stopped run continues, without the stop, to the whole run's weights
    rest = quiet(tiny_config(tmp_path / "stop", epochs=4))
    assert rest.run_dir == stopped.run_dir and rest.metrics["epochs"] == 4.0
    assert all(torch.equal(a, b) for a, b in zip(whole.model.state_dict().values(),
                                                 rest.model.state_dict().values()))


def test_fields_added_later_leave_existing_hashes_alone():
    config = tiny_config("runs")
    old = {k: v for k, v in dataclasses.asdict(config).items() if k not in ("out_dir", *LATER_FIELDS)}
    assert config.hash() == config_hash(old)  # a store written before the field existed still matches
    assert tiny_config("runs", stop_train_error=0.25).hash() != config.hash()
    assert tiny_config("runs", stop_train_error=0.25).run_hash() == config.run_hash()  # a budget, like max_steps


CHILD = """
import os, signal, sys
import torch
sys.path.insert(0, {tests!r})
from support import fake_splits, tiny_config
import alexnet_book.train as T

out_dir, kill_at = sys.argv[1], int(sys.argv[2])
if kill_at:  # SIGKILL this process as it starts its kill_at-th optimiser step
    real, calls = T.train_batch, [0]
    def dying(*args, **kwargs):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    T.train_batch = dying
torch.set_num_threads(1)
T.train(tiny_config(out_dir), splits=fake_splits(), progress=False)
"""


def test_sigkill_then_resume_is_bitwise_identical(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests=str(TESTS)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def run(out_dir, kill_at=0):
        return subprocess.run([sys.executable, str(script), str(out_dir), str(kill_at)], env=env,
                              capture_output=True, text=True, timeout=120)

    kill_at = random.Random().randint(5, 12)  # 12 steps in all; checkpoints every 3 steps and at epoch ends
    torch.set_num_threads(1)  # as in the child, so the reference run computes the same bits
    quiet(tiny_config(tmp_path / "ref"))
    killed = run(tmp_path / "killed", kill_at)
    assert killed.returncode == -signal.SIGKILL, f"kill_at={kill_at}: {killed.stderr}"
    config = tiny_config(tmp_path / "killed")
    assert (config.run_dir() / "checkpoint.pt").exists()
    assert ResultsStore(tmp_path / "killed" / "results.jsonl").find(config.hash()) is None
    resumed = run(tmp_path / "killed")
    assert resumed.returncode == 0, resumed.stderr

    key = config.hash()
    a = ResultsStore(tmp_path / "ref" / "results.jsonl").find(key)
    b = ResultsStore(tmp_path / "killed" / "results.jsonl").find(key)
    timing = {"wall_s", "images_per_s"}
    assert {k: v for k, v in a["metrics"].items() if k not in timing} == \
           {k: v for k, v in b["metrics"].items() if k not in timing}, f"kill_at={kill_at}"
    wa = load_checkpoint(a["model_path"])["model"]
    wb = load_checkpoint(b["model_path"])["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa), f"kill_at={kill_at}: weights differ"
    import pandas as pd

    cols = ["step", "epoch", "lr", "train_loss", "train_error", "val_top1", "val_top5"]
    ha = pd.read_csv(Path(a["run_dir"]) / "metrics.csv")[cols]
    hb = pd.read_csv(Path(b["run_dir"]) / "metrics.csv")[cols]
    assert ha.equals(hb), f"kill_at={kill_at}: metrics logs differ"


# -- notebooks and the command line --------------------------------------------------------------------------------

def test_live_plot_updates_one_display_in_place(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import IPython.display

    shown = []

    class Handle:
        updates = 0

        def update(self, obj):
            Handle.updates += 1

    def fake_display(obj, display_id=None):
        shown.append(obj)
        return Handle()

    monkeypatch.setattr(IPython.display, "display", fake_display)
    plot = LivePlot("test")
    history = [{"step": 1, "train_loss": 2.0, "train_error": 0.9},
               {"step": 2, "train_loss": 1.5, "train_error": 0.8, "val_top1": 0.7, "val_top5": 0.2}]
    for _ in range(3):
        plot.update(history, force=True)
    assert len(shown) == 1 and Handle.updates == 3  # one output, redrawn three times
    assert len(plot.ax_err.lines) == 3  # train error, val top-1, val top-5


def test_cli_help_documents_every_config_field(capsys):
    with pytest.raises(SystemExit):
        train_command.main(["--help"])
    text = capsys.readouterr().out
    for name in TrainConfig.__dataclass_fields__:
        flag = "--model-option" if name == "model_options" else "--" + name.replace("_", "-")
        assert flag in text, flag
    assert "torchrun" in text


def test_cli_options_become_the_config():
    args = train_command.build_parser().parse_args(["--recipe", "quick", "--epochs", "3", "--no-pca-colour", "--model-option",
                                        "towers=1", "--model-option", "lrn=null", "--max-steps", "10",
                                        "--data", "cifar10", "--lr", "0.05", "--init-std", "0.02",
                                        "--stop-train-error", "0.25"])
    c = train_command.config_from_args(args)
    assert c == recipe("quick", epochs=3, pca_colour=False, model_options={"towers": 1, "lrn": None}, max_steps=10,
                       lr=0.05, init_std=0.02, stop_train_error=0.25)
    assert train_command.config_from_args(train_command.build_parser().parse_args([])) == TrainConfig()  # the paper's recipe by default


def test_cli_reports_bad_input_in_one_line(capsys):
    assert train_command.main(["--data", "no-such-set"]) == 2
    err = capsys.readouterr().err
    assert "no-such-set" in err and "Traceback" not in err


class TinyReaderNet(torch.nn.Module):
    """A reader's own network with the book's input contract: (N, 3, S, S) in, (N, classes) logits out."""

    def __init__(self, num_classes: int = 10, width: int = 8):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, width, 3, padding=1)
        self.head = torch.nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def test_a_readers_own_network_trains_through_the_same_recipe_store_and_ablations(tmp_path, tiny):
    from alexnet_book import ablations as ab
    from alexnet_book.model import REGISTERED, build_model, register_model

    register_model("tiny_reader_net", TinyReaderNet)
    try:
        config = tiny(model="tiny_reader_net", model_options={"width": 6}, epochs=2, lr=0.05)
        result = quiet(config)
        assert isinstance(result.model, TinyReaderNet) and result.model.conv.out_channels == 6
        assert result.metrics["steps"] == 8 and 0 <= result.metrics["val_top1_error"] <= 1
        assert quiet(config).reused  # the store knows it by its name and options, like the book's networks
        # the same name through the ablation runner: a variant changes one option
        table = ab.run_ablations("synthetic", "scaled", 1, None, seeds=(0,), ablations="weight_decay",
                                 progress=False, base={"out_dir": str(tmp_path), "model": "tiny_reader_net"},
                                 recipe="smoke", train_fn=lambda c, **kw: quiet(dataclasses.replace(
                                     c, data="synthetic", precision="fp32", input_scale=1 / 64,
                                     init_std=None, init_bias=None, model_options={}), **{k: v for k, v in kw.items()
                                                                               if k == "store"}))
        assert table["n"].tolist() == [1]
        with pytest.raises(ValueError, match="one of the book's networks"):
            register_model("alexnet", TinyReaderNet)
        with pytest.raises(ValueError, match="register_model"):
            build_model("nobody_registered_this")
    finally:
        REGISTERED.pop("tiny_reader_net", None)


def test_loggers_receive_every_metrics_row_and_tensorboard_gets_scalars(tiny):
    from alexnet_book.progress import TensorBoardLogger

    class FakeWriter:
        def __init__(self):
            self.scalars = []

        def add_scalar(self, tag, value, step):
            self.scalars.append((tag, value, step))

    rows, writer = [], FakeWriter()
    result = quiet(tiny(epochs=2), loggers=[rows.append, TensorBoardLogger(writer=writer)])
    logged = result.history.to_dict("records")
    assert len(rows) == len(logged) and [r["step"] for r in rows] == [r["step"] for r in logged]
    tags = {t for t, _, _ in writer.scalars}
    assert {"train_loss", "train_error", "lr", "val_top1", "val_top5"} <= tags and "step" not in tags
    assert all(isinstance(v, float) or isinstance(v, int) for _, v, _ in writer.scalars)
