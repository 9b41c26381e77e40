"""Figures: export with a manifest (issue 6, item 6), Fig. 3 grid, Fig. 4 neighbours, Fig. 1, plots."""
from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from alexnet_book import features, figure_networks, figures, neighbours, relu_tanh  # noqa: E402
from alexnet_book.commands import figures as figures_command  # noqa: E402

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parent.parent


def _figure():
    with figures.book_style():
        fig, ax = plt.subplots()
        ax.plot([0, 1, 2], [0, 1, 4], label="a line")
        ax.legend()
    return fig


def test_save_figure_writes_three_formats_and_manifest(tmp_path):
    fig = _figure()
    paths = figures.save_figure(fig, "demo", caption="A demo", paper_figure="Fig. 3", notebook="05_x.ipynb",
                                data="cifar10", config_hash="abc123", figures_dir=tmp_path)
    plt.close(fig)
    assert sorted(p.suffix for p in paths) == [".pdf", ".png", ".svg"]
    assert (tmp_path / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "demo.pdf").read_bytes()[:4] == b"%PDF"
    assert b"<svg" in (tmp_path / "demo.svg").read_bytes()
    from PIL import Image
    with Image.open(tmp_path / "demo.png") as im:  # ≥ 200 dpi: a 6.4-inch-wide figure is > 1000 px
        assert im.size[0] > 1000
        assert round(im.info["dpi"][0]) >= 200
    index = json.loads((tmp_path / "index.json").read_text())
    entry = index["figures"]["demo"]
    assert entry["caption"] == "A demo" and entry["paper_figure"] == "Fig. 3"
    assert entry["notebook"] == "05_x.ipynb" and entry["data"] == "cifar10" and entry["config_hash"] == "abc123"
    assert entry["files"] == ["demo.pdf", "demo.png", "demo.svg"]
    assert entry["date"] and entry["library_version"]
    assert not list(tmp_path.glob(".*tmp"))  # no temp files left behind


def test_save_figure_is_deterministic_and_keeps_entries(tmp_path):
    figures.save_figure(_figure(), "one", caption="first", figures_dir=tmp_path)
    first = {p.name: p.read_bytes() for p in tmp_path.glob("one.*")}
    figures.save_figure(_figure(), "one", caption="first", figures_dir=tmp_path)
    second = {p.name: p.read_bytes() for p in tmp_path.glob("one.*")}
    assert first == second  # no dates or random ids inside PNG, SVG or PDF
    figures.save_figure(_figure(), "two", caption="second", figures_dir=tmp_path)
    index = figures.read_index(tmp_path)
    assert set(index["figures"]) == {"one", "two"}
    plt.close("all")


def test_save_figure_rejects_paths_as_names(tmp_path):
    with pytest.raises(ValueError, match="plain file stem"):
        figures.save_figure(_figure(), "../evil", caption="x", figures_dir=tmp_path)
    plt.close("all")


def test_figures_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ALEXNET_BOOK_FIGURES", str(tmp_path / "elsewhere"))
    assert figures.figures_dir() == tmp_path / "elsewhere" == figures.figures_dir(committed=True)
    monkeypatch.delenv("ALEXNET_BOOK_FIGURES")
    assert figures.figures_dir() == ROOT / "build" / "figures"  # the notebooks, make book: not committed
    assert figures.figures_dir(committed=True) == ROOT / "figures"  # the evidence commands


def test_notebook_figures_leave_the_committed_folder_alone(tmp_path, monkeypatch):
    """save_figure as the notebooks call it writes build/figures (git-ignored); the evidence commands --
    alexnet-book figures, ablate --out (ablations.export) -- write the committed figures/."""
    import pandas as pd

    from alexnet_book import ablations

    monkeypatch.delenv("ALEXNET_BOOK_FIGURES", raising=False)
    (tmp_path / "pyproject.toml").write_text("")  # a project whose root is tmp_path
    monkeypatch.setattr(figures, "__file__", str(tmp_path / "alexnet_book" / "figures.py"))
    fig = _figure()
    paths = figures.save_figure(fig, "nb_demo", caption="as a notebook saves it", notebook="04_training")
    assert {p.parent for p in paths} == {tmp_path / "build" / "figures"} and not (tmp_path / "figures").exists()
    paths = ablations.save_ablation_figure(fig, pd.DataFrame({"data": ["cifar10"]}), "ablations_demo")
    assert {p.parent for p in paths} == {tmp_path / "figures"}
    assert set(figures.read_index()["figures"]) == {"ablations_demo"}  # the committed manifest
    plt.close(fig)
    git = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "build/figures/nb_demo.png"])
    assert git.returncode in (0, 128)  # ignored (128: not a git checkout, e.g. an unpacked sdist)


# --- Fig. 3 ----------------------------------------------------------------------------------------------

def _grey_then_red(n=8, k=5):
    grey = torch.randn(n, 1, k, k, generator=torch.Generator().manual_seed(0)).expand(n, 3, k, k)
    red = torch.zeros(n, 3, k, k)
    red[:, 0] = 4 * torch.rand(n, k, k, generator=torch.Generator().manual_seed(1))
    return torch.cat([grey, red])


def test_filter_grid_layout_and_per_kernel_contrast():
    w = torch.randn(20, 3, 4, 4) * torch.linspace(0.01, 10, 20)[:, None, None, None]
    grid = figures.filter_grid(w, columns=8, normalise="kernel", gap=1)
    assert grid.shape == (3 * 5 - 1, 8 * 5 - 1, 3)
    tiles = [grid[r * 5:r * 5 + 4, c * 5:c * 5 + 4] for r in range(3) for c in range(8)][:20]
    for tile in tiles:  # every kernel stretched to the full range on its own
        assert tile.min() == pytest.approx(0.0) and tile.max() == pytest.approx(1.0)
    glob = figures.filter_grid(w, columns=8, normalise="global", gap=1)
    assert glob[0:4, 0:4].max() - glob[0:4, 0:4].min() < 0.05  # the weakest kernel fades under one stretch
    with pytest.raises(ValueError):
        figures.filter_grid(w, normalise="bogus")


def test_conv1_figure_puts_tower_one_on_top():
    from alexnet_book.model import AlexNet, TorchvisionAlexNet

    net = AlexNet(10, scale="scaled")
    with torch.no_grad():
        net.features.conv1.weight.copy_(_grey_then_red(16))
    for normalise in ("kernel", "global"):
        fig = figures.plot_conv1_filters(net, normalise=normalise)
        axes = [ax for ax in fig.axes if ax.images]
        assert len(axes) == 2
        top, bottom = (ax.images[0].get_array() for ax in axes)
        assert abs(top[..., 0] - top[..., 1]).max() < 1e-6  # tower 1: grey, R = G
        assert abs(bottom[..., 0] - bottom[..., 1]).max() > 0.3  # tower 2: red
        assert "tower 1" in axes[0].get_title(loc="left") and "tower 2" in axes[1].get_title(loc="left")
        plt.close(fig)
    fig = figures.plot_conv1_filters(TorchvisionAlexNet(10))
    assert len([ax for ax in fig.axes if ax.images]) == 1  # one tower, one block
    assert fig.axes[0].images[0].get_array().shape == (4 * 12 - 1, 16 * 12 - 1, 3)  # 64 kernels: 4 rows of 16
    plt.close(fig)


# --- Fig. 4 ----------------------------------------------------------------------------------------------

class ChannelMeanNet(torch.nn.Module):
    """A stand-in network whose fc7 activity is the mean of the red channel: we know its neighbours."""

    def __init__(self):
        super().__init__()
        from collections import OrderedDict
        self.features = torch.nn.Flatten()
        fc7 = torch.nn.Linear(3 * 4 * 4, 1)
        with torch.no_grad():
            fc7.weight.zero_()
            fc7.weight[0, :16] = 1 / 16
            fc7.bias.zero_()
        self.classifier = torch.nn.Sequential(OrderedDict(fc7=fc7, relu7=torch.nn.ReLU(),
                                                          fc8=torch.nn.Linear(1, 2)))

    def forward(self, x):
        return self.classifier(self.features(x))


def _constructed_images(n=41):
    """Red channel i (so fc7 neighbours are the nearest integers); green/blue one of 4 loud patterns."""
    g = torch.Generator().manual_seed(0)
    patterns = torch.randn(4, 2, 4, 4, generator=g) * 100
    images = torch.zeros(n, 3, 4, 4)
    images[:, 0] = torch.arange(n, dtype=torch.float32)[:, None, None]
    images[:, 1:] = patterns[torch.arange(n) % 4]
    return images, torch.arange(n) % 4


def test_nearest_neighbours_match_brute_force_in_both_spaces():
    net = ChannelMeanNet()
    train, labels = _constructed_images()
    queries = train[[10, 21, 33]] + 0.25  # slightly off the training images
    qlabels = labels[[10, 21, 33]]
    result = neighbours.nearest_neighbours(net, queries, train, k=4, query_labels=qlabels, train_labels=labels,
                                        batch_size=7)  # several blocks: the running top-k must merge them
    feat = torch.relu(queries[:, 0].mean((1, 2)))[:, None]
    train_feat = torch.relu(train[:, 0].mean((1, 2)))[:, None]
    for q in range(3):  # the reference: a plain loop over every pair
        fd = torch.tensor([float((feat[q] - train_feat[i]).norm()) for i in range(len(train))])
        pd = torch.tensor([float((queries[q] - train[i]).double().norm()) for i in range(len(train))])
        assert set(result.feature_indices[q].tolist()) == set(fd.argsort()[:4].tolist())
        assert set(result.pixel_indices[q].tolist()) == set(pd.argsort()[:4].tolist())
        assert torch.allclose(result.feature_distances[q], fd.sort().values[:4].float(), atol=1e-3)
    # fc7 neighbours are the adjacent red levels (mixed patterns); pixel neighbours share the loud pattern
    assert result.feature_indices[0].tolist()[:2] in ([10, 11], [11, 10])
    assert (result.pixel_label_agreement == 1).all()
    assert (result.feature_label_agreement < 1).all()
    assert result.overlap.max() < 1
    summary = result.summary()
    assert summary["k"] == 4 and summary["pixel_label_agreement"] == 1.0


def test_fc7_of_alexnet_is_after_relu_and_neighbours_find_themselves():
    from alexnet_book.model import AlexNet

    torch.manual_seed(0)
    net = AlexNet(10, scale="scaled", init="default")
    images = torch.randn(12, 3, 32, 32) * 60
    feats = features.hidden_features(net, images, "fc7", batch_size=5)
    assert feats.shape == (12, 512) and feats.min() >= 0 and (feats == 0).any()
    result = neighbours.nearest_neighbours(net, images[:4], images, k=3, batch_size=5)
    assert result.feature_indices[:, 0].tolist() == [0, 1, 2, 3]  # each query is its own nearest neighbour
    assert result.pixel_indices[:, 0].tolist() == [0, 1, 2, 3]
    fig = figures.plot_neighbours(images[:4], images, result, max_queries=3)
    assert len(fig.axes) == 1 and fig.axes[0].images[0].get_array().shape[0] > 3 * 32
    plt.close(fig)


def test_fig4_runs_at_full_scale_on_an_imagenet_subset_in_the_official_archive_format(tmp_path, monkeypatch):
    """Fig. 4 on ImageNet data: a subset (manifest) of ILSVRC-2012-format archives, 224-px crops, 4096-d fc7."""
    from support import write_imagenet_archives  # the official layout: train tar of tars, flat val, devkit

    from alexnet_book import data
    from alexnet_book.model import AlexNet

    monkeypatch.setenv("ALEXNET_BOOK_DATA", str(tmp_path / "cache"))
    torch.set_num_threads(1)
    write_imagenet_archives(tmp_path / "in", ["n03000000", "n01000000", "n02000000"], per_class=2)
    manifest = data.make_subset(data.open_imagenet(tmp_path / "in"), ["n01000000", "n03000000"], 2,
                                out=tmp_path / "sub.json")
    d = data.load_dataset("imagenet-subset", manifest, scale="full", progress=False)
    assert d.crop == 224 and len(d.train) == 4 and d.train.images.shape[1:] == (256, 256, 3)
    torch.manual_seed(0)
    net = AlexNet(len(d.classes), scale="full", init="default")
    assert features.hidden_features(net, d.train, "fc7", mean_image=d.mean_image, crop=d.crop).shape == (4, 4096)
    # each class's two training images are the same solid colour: in both spaces a query's two nearest
    # training images are its own class's (distance 0), never the other class's
    result = neighbours.nearest_neighbours(net, d.train, d.train, k=2, mean_image=d.mean_image, crop=d.crop)
    assert (result.pixel_label_agreement == 1).all() and (result.feature_label_agreement == 1).all()
    assert torch.allclose(result.pixel_distances, torch.zeros(4, 2), atol=1e-2)
    queries = neighbours.nearest_neighbours(net, d.val, d.train, k=2, mean_image=d.mean_image, crop=d.crop)
    assert queries.feature_indices.shape == (len(d.val), 2) and (queries.pixel_label_agreement == 1).all()


def test_layer_output_module_resolves_names():
    from alexnet_book.model import AlexNet, TorchvisionAlexNet

    tv = TorchvisionAlexNet(10)
    assert features.layer_output_module(tv, "fc7") is tv.classifier[5]  # the ReLU after Linear(4096, 4096)
    net = AlexNet(10, scale="scaled")
    assert features.layer_output_module(net, "fc7") is net.classifier.relu7
    assert features.layer_output_module(net, "pool5") is net.features.pool5
    with pytest.raises(ValueError, match="no layer"):
        features.layer_output_module(net, "fc9")


# --- inside the network ----------------------------------------------------------------------------------

def test_layer_statistics_sees_relu_sparsity_and_tanh_saturation():
    from alexnet_book.model import build_model

    images = torch.randn(16, 3, 32, 32) * 60
    relu = features.layer_statistics(build_model("fourlayer", activation="relu"), images)
    tanh = features.layer_statistics(build_model("fourlayer", activation="tanh"), images)
    assert relu.layer.tolist() == ["conv1", "conv2", "conv3", "fc4"]
    assert relu.zero_fraction.iloc[0] > 0.3 and tanh.zero_fraction.iloc[0] == 0
    assert tanh.saturated_fraction.iloc[0] > 0.1 and relu.saturated_fraction.iloc[0] == 0
    assert relu.weight_std.iloc[0] == pytest.approx(0.01, rel=0.1)  # the paper's N(0, 0.01)
    fig = figures.plot_layer_statistics(relu)
    plt.close(fig)


def test_feature_maps_figure_has_a_row_per_conv_layer():
    from alexnet_book.model import AlexNet

    fig = figures.plot_feature_maps(AlexNet(10, scale="scaled"), torch.randn(3, 32, 32) * 50, max_maps=8)
    assert len(fig.axes) == 6 and all(ax.images for ax in fig.axes)  # input + conv1..conv5
    assert "conv5" in fig.axes[5].get_title(loc="left") and "of 96 maps, 7×7" in fig.axes[5].get_title(loc="left")
    assert fig.axes[1].images[0].get_array().shape == (32, 8 * 33 - 1, 3)  # conv1: 8 maps of 32×32 in a row
    plt.close(fig)


def test_history_plot_and_per_epoch():
    import pandas as pd

    h = pd.DataFrame(dict(step=[1, 2, 2, 3, 4, 4], epoch=[0.5, 1, 1, 1.5, 2, 2], lr=[0.01] * 6,
                          train_loss=[2, 1.9, 1.9, 1.5, 1.2, 1.2],
                          train_error=[.9, .95, .8, .6, .45, .5], val_top1=[None, None, .85, None, None, .6],
                          val_top5=[None, None, .5, None, None, .3]))
    e = figures.per_epoch(h)
    assert e.epoch.tolist() == [1, 2] and e.train_error.tolist() == [.8, .5] and e.val_top1.tolist() == [.85, .6]
    plt.close(figures.plot_history(h))


# --- Fig. 1 ----------------------------------------------------------------------------------------------

def test_epochs_to_error_interpolates():
    assert relu_tanh.epochs_to_error([0.8, 0.5, 0.3, 0.2], 0.25) == pytest.approx(3.5)
    assert relu_tanh.epochs_to_error([0.5, 0.4], 0.25) == float("inf")
    assert relu_tanh.epochs_to_error([0.9, 0.25], 0.25) == pytest.approx(2.0)


def _fake_fig1(relu_curve, tanh_curve, seeds=(0, 1, 2)):
    import pandas as pd

    rows, epochs = [], []
    for seed in seeds:
        for activation, curve in (("relu", relu_curve), ("tanh", tanh_curve)):
            rows += [dict(activation=activation, seed=seed, lr=0.01, epoch=e, train_error=err)
                     for e, err in enumerate(curve, start=1)]
        epochs.append(dict(seed=seed, relu=relu_tanh.epochs_to_error(relu_curve), tanh=relu_tanh.epochs_to_error(tanh_curve)))
    epochs = pd.DataFrame(epochs)
    epochs["ratio"] = epochs.tanh / epochs.relu
    return relu_tanh.ReluVsTanh(init="paper", target=0.25, lr={"relu": 0.01, "tanh": 0.01}, tuning=pd.DataFrame(),
                              curves=pd.DataFrame(rows), epochs=epochs, config_hashes=[])


def test_relu_vs_tanh_summary_exact_bound_and_matched_target():
    relu = [0.9, 0.25] + [0.2] * 10            # 25% after 2 epochs
    tanh = [0.9] * 11 + [0.25]                 # after 12: six times slower
    s = _fake_fig1(relu, tanh).summary()
    assert s["exact"] and s["ratio_median"] == pytest.approx(6.0) and s["seeds"] == 3
    short = _fake_fig1(relu, [0.9, 0.8, 0.7, 0.6])  # tanh never gets there in 4 epochs: a lower bound 4/2
    s = short.summary()
    assert s["measured"] and not s["exact"] and s["ratio_median"] == pytest.approx(2.0)
    assert "≥ 2.0×" in short.ratio_text()
    neither = _fake_fig1([0.8, 0.6, 0.5], [0.85, 0.8, 0.6])  # both short: compare at 60%, reached by all
    s = neither.summary()
    assert not s["measured"] and s["matched_target"] == pytest.approx(0.6)
    assert s["matched_ratio"] == pytest.approx(3 / relu_tanh.epochs_to_error([0.8, 0.6, 0.5], 0.6))
    assert "no ratio at the paper's target" in str(neither)
    stopped = _fake_fig1([0.9, 0.5, 0.24], [0.9, 0.8, 0.6, 0.4, 0.3, 0.2])  # runs ended at the target: shorter ReLU
    s = stopped.summary()
    assert s["relu_final_error"] == pytest.approx(0.24) and s["tanh_final_error"] == pytest.approx(0.2)
    plt.close(relu_tanh.plot_relu_vs_tanh([short, neither]))


def test_fig1_verdict_judges_direction_and_the_papers_six_times_with_the_seeds_spread():
    v = relu_tanh.fig1_verdict
    tight = v([6.02, 6.21, 6.18, 5.95, 6.10])  # five seeds around 6: both parts agree
    assert (tight["direction"], tight["magnitude"]) == ("agrees", "agrees")
    assert tight["low"] < tight["geomean"] < tight["high"] and 5.9 < tight["geomean"] < 6.2
    book = v([2.63, 2.86, 2.77])  # the book's own net: ReLU faster, but nowhere near six times
    assert (book["direction"], book["magnitude"]) == ("agrees", "disagrees")
    wide = v([3.0, 9.0, 6.0])  # meets the band but spans 3-9x: no claim either way on the magnitude
    assert wide["magnitude"] == "inconclusive"
    slower = v([0.5, 0.55, 0.52])  # tanh faster: the direction disagrees
    assert slower["direction"] == "disagrees" and slower["magnitude"] == "disagrees"
    tie = v([0.8, 1.3, 1.0])
    assert tie["direction"] == "inconclusive"
    one = v([6.0])  # one seed has no interval
    assert (one["direction"], one["magnitude"]) == ("inconclusive", "inconclusive")
    assert "inconclusive" in relu_tanh.verdict_text(one)
    # an exact result carries its verdict in the summary and the caption; a lower bound carries none
    relu = [0.9, 0.25] + [0.2] * 10
    exact = _fake_fig1(relu, [0.9] * 11 + [0.25])
    assert exact.summary()["verdict"]["direction"] == "agrees" and "verdict: ReLU faster" in str(exact)
    short = _fake_fig1(relu, [0.9, 0.8, 0.7, 0.6])
    assert "verdict" not in str(short) and short.summary()["verdict"]["seeds"] == 0


def test_relu_vs_tanh_stop_at_target_ends_each_run_at_the_target(tmp_path):
    from alexnet_book.data import load_dataset

    torch.set_num_threads(1)
    splits = load_dataset("synthetic", limit=64, progress=False)
    kwargs = dict(init="paper", data="synthetic", limit=64, epochs=4, seeds=(0,), batch_size=32,
                  lr_grid={"relu": (0.003,), "tanh": (0.01,)}, out_dir=str(tmp_path), splits=splits, progress=False)
    whole = relu_tanh.relu_vs_tanh(**kwargs)
    per_run = {a: c.train_error.tolist() for a, c in whole.curves.groupby("activation")}
    target = max(curve[1] for curve in per_run.values())  # a level both runs reach within 2 of the 4 epochs
    stopped = relu_tanh.relu_vs_tanh(**{**kwargs, "target": target, "stop_at_target": True,
                                      "out_dir": str(tmp_path / "stopped")})
    cut = 0
    for activation, curve in stopped.curves.groupby("activation"):
        full = per_run[activation]
        first = next(i for i, err in enumerate(full) if err <= target)  # the first epoch at or below the target
        assert curve.train_error.tolist() == pytest.approx(full[:first + 1]), activation
        cut += first + 1 < len(full)
    assert cut == 2  # both runs really ended early
    assert stopped.epochs.relu[0] == pytest.approx(relu_tanh.epochs_to_error(per_run["relu"], target))
    assert relu_tanh.fig1_settings("full")["stop_at_target"] and "stop_at_target" not in relu_tanh.fig1_settings("quick")


def _fake_trainer(monkeypatch, curve_of):
    """Replace train() by a stand-in whose per-epoch training errors are ``curve_of(activation, lr, seed)``,
    honouring ``max_steps`` and ``stop_train_error`` as train() does; returns the list of configs it ran."""
    import pandas as pd

    import alexnet_book.train as T

    ran = []

    def fake_train(cfg, **_):
        ran.append(cfg)
        curve = curve_of(cfg.model_options["activation"], cfg.lr, cfg.seed)[:cfg.epochs]
        if cfg.max_steps is not None:
            curve = curve[:cfg.max_steps // (64 // cfg.batch_size)]
        if cfg.stop_train_error is not None:
            hit = next((i for i, e in enumerate(curve) if e <= cfg.stop_train_error), None)
            curve = curve if hit is None else curve[:hit + 1]
        history = pd.DataFrame({"epoch": range(1, len(curve) + 1), "step": range(1, len(curve) + 1),
                                "train_error": curve})
        return type("Result", (), {"history": history})()

    monkeypatch.setattr(T, "train", fake_train)
    return ran


def _descent(epochs_to_quarter, epochs=12):
    """A training-error curve from chance reaching 25% after ``epochs_to_quarter`` epochs (linear)."""
    return [max(0.9 - (0.9 - 0.25) * e / epochs_to_quarter, 0.05) for e in range(1, epochs + 1)]


def test_tuning_brackets_the_optimum_on_an_unreported_seed_and_caps_losers(monkeypatch):
    from alexnet_book.data import load_dataset

    best = {"relu": 0.004, "tanh": 0.001}  # relu's optimum above the grid, tanh's inside it
    ran = _fake_trainer(monkeypatch, lambda a, lr, seed: _descent(3 + 2 * abs(math.log2(lr / best[a]))))
    splits = load_dataset("synthetic", limit=64, progress=False)
    result = relu_tanh.relu_vs_tanh(data="synthetic", limit=64, epochs=12, seeds=(0, 1), tuning_seed=100,
                                  batch_size=32, splits=splits, bracket=True, stop_at_target=True, progress=False,
                                  lr_grid={"relu": (0.0005, 0.001, 0.002), "tanh": (0.0005, 0.001, 0.002)})
    assert result.lr == {"relu": 0.004, "tanh": 0.001}
    relu = result.tuning[result.tuning.activation == "relu"]
    assert relu.lr.tolist() == [0.001, 0.0005, 0.002, 0.004, 0.008]  # middle first, then extended until bracketed
    tanh = result.tuning[result.tuning.activation == "tanh"]
    assert tanh.lr.tolist() == [0.001, 0.0005, 0.002] and not tanh.capped.iloc[0] and tanh.capped.iloc[1:].all()
    # a capped rate stops at the epoch where it could no longer beat the best so far: ceil(3) = 3 epochs here
    assert (tanh.epochs_run.iloc[1:] <= 3).all() and (tanh.epochs_to_target.iloc[1:] > 3).all()
    tuning_seeds = {c.seed for c in ran if c.lr not in (0.004, 0.001) or c.seed == 100}
    assert 100 in tuning_seeds and {c.seed for c in ran} == {0, 1, 100}
    assert set(result.epochs.seed) == {0, 1}  # the tuning seed is not reported


def test_fig1_authors_configuration(monkeypatch, tmp_path):
    cfg = relu_tanh.fig1_config("tanh", 0.001, 3, layout="18pct", data="cifar10")
    assert (cfg.scale, cfg.precision, cfg.bias_like_authors) == ("native", "fp32", True)
    assert cfg.model_options == {"activation": "tanh", "init": "paper", "layout": "18pct"}
    assert (cfg.weight_decay, cfg.crops_flips, cfg.pca_colour, cfg.schedule) == (0.0, False, False, "constant")
    book = relu_tanh.fig1_config("tanh", 0.001, 3)  # the earlier runs keep their hashes
    assert "layout" not in book.model_options and book.scale is None and book.precision == "auto"
    result = _fake_fig1([0.9, 0.25] + [0.2] * 4, [0.9] * 5 + [0.24])
    result.layout = "18pct"
    back = relu_tanh.ReluVsTanh.load(result.save(tmp_path / "fig1", command="test"))
    assert back.summary() == result.summary() and back.layout == "18pct"
    assert json.loads((tmp_path / "fig1" / "summary.json").read_text())["command"] == "test"
    with pytest.raises(FileNotFoundError, match="fig1-evidence"):
        relu_tanh.ReluVsTanh.load(tmp_path / "nothing")


# --- export: the CLI, end to end in smoke mode -------------------------------------------------------------

def test_cli_regenerates_every_figure_in_smoke_mode(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out, runs = tmp_path / "figs", tmp_path / "runs"
    assert figures_command.main(["--mode", "smoke", "--out", str(out), "--runs", str(runs), "--no-pretrained",
                             "--quiet"]) == 0
    index = figures.read_index(out)["figures"]
    expected = {"fig3_conv1_filters_kernel", "fig3_conv1_filters_global", "fig3_colour_index", "fig4_neighbours",
                "training_curves", "feature_maps", "layer_statistics", "fig1_relu_vs_tanh"}
    assert expected <= set(index)
    for name in expected:
        for f in index[name]["files"]:
            assert (out / f).stat().st_size > 1000
        assert "[smoke mode]" in index[name]["caption"]
    assert index["fig3_conv1_filters_kernel"]["paper_figure"] == "Fig. 3"
    assert index["fig1_relu_vs_tanh"]["paper_figure"] == "Fig. 1" and index["fig4_neighbours"]["config_hash"]
    # missing imported weights: the notebooks' network falls back to the run trained above (reused, not retrained)
    monkeypatch.setattr("alexnet_book.pretrained.load_pretrained",
                        lambda *a, **k: (_ for _ in ()).throw(FileNotFoundError("no bvlc here: download it")))
    net = figure_networks.figure_network("bvlc", "smoke", progress=False,
                                 config=figure_networks.trained_config("smoke", out_dir=str(runs)))
    assert net.source == "trained" and net.run.reused and "no bvlc here" in net.note
    plt.close("all")


def test_cli_rejects_bad_options():
    with pytest.raises(SystemExit):
        figures_command.main(["--mode", "nonsense"])


def test_imported_network_is_fed_with_its_own_preprocessing(tmp_path):
    from alexnet_book.model import TorchvisionAlexNet

    path = tmp_path / "alexnet-owt.pth"  # a torchvision-format state dict, as downloaded
    torch.save(TorchvisionAlexNet().state_dict(), path)
    net = figure_networks.figure_network(str(path), "smoke", progress=False)
    assert net.run is None and net.input_size == 224 and "torchvision" in net.note
    images = torch.full((2, 256, 256, 3), 128, dtype=torch.uint8)
    images[:, :, :, 0] = 255
    x = net.preprocess(None)(images)
    assert x.shape == (2, 3, 224, 224)
    mean, std = net.info["preprocessing"]["mean"], net.info["preprocessing"]["std"]
    assert x[0, 0, 0, 0].item() == pytest.approx((1.0 - mean[0]) / std[0], abs=1e-5)
    assert x[0, 1, 5, 5].item() == pytest.approx((128 / 255 - mean[1]) / std[1], abs=1e-5)
    with pytest.raises(ValueError, match="smaller than"):
        net.preprocess(None)(torch.zeros(1, 36, 36, 3, dtype=torch.uint8))


def test_two_device_network_gives_the_grouped_networks_features():
    from alexnet_book.model import AlexNet, TwoDeviceAlexNet

    grouped = AlexNet(10, scale="scaled", init="default")
    split = TwoDeviceAlexNet(10, scale="scaled", devices=("cpu", "cpu"))
    split.load_grouped_state_dict(grouped.state_dict())
    x = torch.randn(6, 3, 32, 32) * 50
    assert torch.allclose(features.hidden_features(split, x), features.hidden_features(grouped, x))
    fig = figures.plot_conv1_filters(split)
    assert len([ax for ax in fig.axes if ax.images]) == 2
    plt.close(fig)


def test_our_checkpoint_is_fed_as_it_was_trained(tmp_path):
    from alexnet_book.train import train

    run = train(figure_networks.trained_config("smoke", out_dir=str(tmp_path), max_steps=1), progress=False)
    path = next(tmp_path.glob("*/model-*.pt"))
    net = figure_networks.figure_network(str(path), "smoke", progress=False)
    assert net.model.input_scale == run.config.input_scale  # the checkpoint's input scale, not 1
    data = figure_networks.figure_data(net, "smoke", progress=False)
    x = net.preprocess(data)(data.val.images[:2])
    from alexnet_book.augment import centre_batch
    expected = centre_batch(data.val.images[:2], data.mean_image, data.crop) * run.config.input_scale
    assert torch.allclose(x, expected)


def test_fig1_evidence_resumes_from_the_committed_folder_when_the_runs_folder_is_gone(monkeypatch, tmp_path):
    """The runs folder may not outlive a machine; the evidence folder's finished runs are reused, and only those:
    a run it gives as in progress, or a folder written with other settings, is trained again."""
    best = {"relu": 0.002, "tanh": 0.001}
    ran = _fake_trainer(monkeypatch, lambda a, lr, seed: _descent(3 + 2 * abs(math.log2(lr / best[a]))))
    settings = dict(data="synthetic", limit=64, batch_size=32, epochs={"relu": 12, "tanh": 12}, seeds=(0, 1),
                    lr_grid={"relu": (0.001, 0.002, 0.004), "tanh": (0.0005, 0.001, 0.002)})
    first = relu_tanh.fig1_evidence("18pct", tmp_path / "results", out_dir=str(tmp_path / "runs"), progress=False,
                                    **settings)
    assert len(ran) == 3 + 3 + 2 * 2 and (first.tuning.source == "trained").all()
    folder = tmp_path / "results" / "fig1_authors_18pct"
    first_summary = json.loads((folder / "summary.json").read_text())
    ran.clear()
    again = relu_tanh.fig1_evidence("18pct", tmp_path / "results", out_dir=str(tmp_path / "runs2"),
                                    progress=False, **settings)
    assert ran == [] and (again.tuning.source == "recorded").all()
    assert again.summary() == first.summary()
    # the provenance of what the earlier invocation trained is kept: its config hashes, its time added to this one's
    saved = json.loads((folder / "summary.json").read_text())
    assert len(saved["config_hashes"]) == 3 + 3 + 2 * 2 and saved["config_hashes"] == first_summary["config_hashes"]
    assert saved["wall_seconds"] >= first_summary["wall_seconds"]
    assert again.curves.reset_index(drop=True).equals(first.curves.reset_index(drop=True))
    # a snapshot that gives one tuning run as in progress: that one (and nothing else) is trained again
    summary = json.loads((folder / "summary.json").read_text())
    rows = [dict(r, seed=100, state="finished") for r in first.tuning.to_dict("records")]
    rows[-1]["state"] = "in progress"
    seeds = first.curves.groupby(["activation", "lr", "seed"]).size().index  # a snapshot lists the seeds' runs too
    summary["runs"] = rows + [dict(activation=a, lr=lr, seed=seed, capped=False, state="finished")
                              for a, lr, seed in seeds]
    (folder / "summary.json").write_text(json.dumps(summary))
    relu_tanh.fig1_evidence("18pct", tmp_path / "results", out_dir=str(tmp_path / "runs3"), progress=False,
                            **settings)
    assert [(c.model_options["activation"], c.lr, c.seed) for c in ran] == [
        (rows[-1]["activation"], rows[-1]["lr"], 100)]
    # other settings: nothing is reused
    ran.clear()
    relu_tanh.fig1_evidence("18pct", tmp_path / "results", out_dir=str(tmp_path / "runs4"), progress=False,
                            **{**settings, "seeds": (0, 2)})
    assert len(ran) == 3 + 3 + 2 * 2


def test_conv1_figure_gives_each_towers_median_as_the_tables_do():
    """An even number of kernels per tower: the median is the mean of the two middle indices (numpy's, as in
    kernels.csv), not torch's lower middle value."""
    import numpy as np

    from alexnet_book.figures import plot_conv1_filters
    from alexnet_book.towers import colour_index

    w = torch.randn(8, 3, 5, 5, generator=torch.Generator().manual_seed(3))
    fig = plot_conv1_filters(w, towers=2)
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]
    expected = [f"{float(np.median(colour_index(w[i:i + 4]).numpy())):.2f}" for i in (0, 4)]
    assert [t.rsplit(" ", 1)[-1] for t in titles] == expected
    plt.close(fig)
