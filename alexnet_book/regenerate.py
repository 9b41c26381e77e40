"""Every library-drawn figure of the book, regenerated headless (``alexnet-book figures``).

Above the experiments: it trains (or reuses) the figures' network (``figure_networks``), runs Fig. 1
(``relu_tanh``) and Fig. 4's search (``neighbours``), and draws everything with ``figures`` into
``build/figures`` (not committed).  The committed Figs. 1, 3 and 4 come from ``evidence.draw_evidence``.
"""
from __future__ import annotations

from pathlib import Path

from .features import layer_statistics
from .figure_networks import figure_data, figure_network, trained_config
from .figures import (plot_colour_index, plot_conv1_filters, plot_feature_maps, plot_history, plot_layer_statistics,
                      plot_neighbours, plot_specialisation_over_training, save_figure)
from .neighbours import nearest_neighbours, pick_queries, subset
from .relu_tanh import fig1_settings, plot_relu_vs_tanh, relu_vs_tanh
from .towers import tower_specialisation

GROUPS = ("fig3", "fig4", "fig1", "inside")


def regenerate_all(mode: str = "quick", figures_dir: str | Path | None = None, *, only=GROUPS,
                   pretrained: bool = True, out_dir: str | None = None, progress: bool = False) -> list[str]:
    """Draw every library figure of the book into ``figures_dir`` (default: ``build/figures``, not committed;
    the committed Figs. 1, 3, 4 come from ``evidence.draw_evidence``) with its manifest entry; returns their names.

    fig3: conv1 kernels of the network trained in ``mode`` (both contrasts), the towers' colour-index
    distributions and their course over training, and -- when their files are on disk -- torchvision's and
    BVLC's conv1.  fig4: fc7 vs pixel neighbours.  fig1: ReLU vs tanh for both initialisations.  inside:
    training curves, feature maps, per-layer statistics.  Runs reuse finished identical runs from the store.
    """
    import matplotlib.pyplot as plt

    unknown = set(only) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown figure groups {sorted(unknown)}; choose from {GROUPS}")
    saved = []
    run_opts = {} if out_dir is None else {"out_dir": out_dir}

    def save(fig, name, caption, **meta):
        # the quick/smoke figures go to build/figures (not committed): the committed Figs. 1, 3 and 4 are the
        # evidence figures (evidence.draw_evidence), which a quick run must never overwrite
        save_figure(fig, name, caption=f"{caption} [{mode} mode]", figures_dir=figures_dir, **meta)
        plt.close(fig)
        saved.append(name)
        if progress:
            print(f"saved {name}")

    if {"fig3", "fig4", "inside"} & set(only):
        net = figure_network("trained", mode, progress=progress, config=trained_config(mode, **run_opts))
        data_name = f"{net.run.config.data} (limit {net.run.config.limit})"
        meta = dict(data=data_name, config_hash=net.config_hash)
        splits = figure_data(net, mode, progress=progress)
        preprocess = net.preprocess(splits)
        if "fig3" in only:
            _fig3(save, net, meta, pretrained=pretrained, progress=progress)
        if "fig4" in only:
            _fig4(save, net, splits, preprocess, meta, progress=progress)
        if "inside" in only:
            _inside(save, net, splits, preprocess, meta)
    if "fig1" in only:
        _fig1(save, mode, run_opts, progress=progress)
    return saved


def _fig3(save, net, meta, *, pretrained: bool, progress: bool) -> None:
    """Fig. 3: the figures' network's conv1 (both contrasts), its towers, and the imported networks' conv1."""
    for normalise in ("kernel", "global"):
        save(plot_conv1_filters(net.model, normalise=normalise),
             f"fig3_conv1_filters_{normalise}", f"The conv1 kernels of the scaled two-tower AlexNet, tower 1 "
             f"above tower 2, {normalise} contrast", paper_figure="Fig. 3", notebook="05_filters_and_towers",
             **meta)
    result = tower_specialisation(net.model)
    save(plot_colour_index(result), "fig3_colour_index",
         f"Colour index of the conv1 kernels per tower: {result}", paper_figure="Fig. 3",
         notebook="05_filters_and_towers", **meta)
    if net.tracking is not None and len(net.tracking):
        save(plot_specialisation_over_training(net.tracking), "fig3_towers_during_training",
             "Median colour index per tower and |Cliff's delta| after every epoch", paper_figure="Fig. 3",
             notebook="05_filters_and_towers", **meta)
    if pretrained:
        from .pretrained import load_pretrained

        for source in ("torchvision", "bvlc"):
            try:
                model, info = load_pretrained(source, progress=progress)
            except FileNotFoundError as missing:
                if progress:
                    print(f"skipping fig3_conv1_filters_{source}: {str(missing).splitlines()[0]}")
                continue
            save(plot_conv1_filters(model), f"fig3_conv1_filters_{source}",
                 f"The conv1 kernels of {source}'s ImageNet AlexNet ({info.get('architecture', '')})",
                 paper_figure="Fig. 3", notebook="05_filters_and_towers", data="ImageNet (pretrained)",
                 config_hash=None)


def _fig4(save, net, splits, preprocess, meta, *, progress: bool) -> None:
    """Fig. 4: five validation images and their nearest training images in fc7 and in pixels."""
    index = pick_queries(splits.val, 5)
    queries = subset(splits.val, index)
    result = nearest_neighbours(net.model, queries, splits.train, preprocess=preprocess, progress=progress)
    save(plot_neighbours(queries, splits.train, result, class_names=splits.class_names), "fig4_neighbours",
         "Five test images and their six nearest training images in fc7 (after ReLU) and in pixel space",
         paper_figure="Fig. 4", notebook="08_neighbours", **meta)


def _inside(save, net, splits, preprocess, meta) -> None:
    """Looking inside the figures' network: training curves, feature maps, per-layer statistics."""
    save(plot_history(net.run.history), "training_curves",
         "Training error, validation error, loss and learning rate per epoch of the figures' network",
         notebook="04_training", **meta)
    save(plot_feature_maps(net.model, splits.val.images[0], preprocess=preprocess), "feature_maps",
         "The feature maps after each conv layer for one validation image", paper_figure="Fig. 2",
         notebook="05_filters_and_towers", **meta)
    table = layer_statistics(net.model, splits.val.images[:256], preprocess=preprocess)
    save(plot_layer_statistics(table), "layer_statistics",
         "Per-layer weight standard deviation and share of zero activations on 256 validation images",
         notebook="05_filters_and_towers", **meta)


def _fig1(save, mode: str, run_opts: dict, *, progress: bool) -> None:
    """Fig. 1: ReLU vs tanh in the four-layer net, for both initialisations (``relu_tanh.fig1_settings``)."""
    from .data import load_dataset

    settings = fig1_settings(mode, **run_opts)
    fig1_splits = load_dataset(settings["data"], limit=settings["limit"], progress=progress)
    results = [relu_vs_tanh(splits=fig1_splits, progress=progress, **fig1_settings(mode, init, **run_opts))
               for init in ("paper", "default")]
    save(plot_relu_vs_tanh(results), "fig1_relu_vs_tanh",
         "Training error of the four-layer CIFAR-10 net, ReLU (solid) vs tanh (dashed), per initialisation: "
         + "; ".join(str(r) for r in results), paper_figure="Fig. 1", notebook="07_relu_vs_tanh",
         data=f"{fig1_splits.name} (limit {settings['limit']})", config_hash=",".join(results[0].config_hashes[:1]))
