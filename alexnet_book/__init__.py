"""alexnet_book: the runnable companion to Krizhevsky, Sutskever & Hinton, NIPS 2012.

The public names are listed in ``__all__``; each is imported on first use, so ``import alexnet_book`` stays
fast and a notebook pulls in only what it touches.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    # the paper's numbers
    "paper": "alexnet_book.paper",
    # §3.1-3.4, §4.2 layers
    "LocalResponseNorm": "alexnet_book.layers",
    "conv2d": "alexnet_book.layers",
    "relu": "alexnet_book.layers",
    "tanh": "alexnet_book.layers",
    "local_response_norm": "alexnet_book.layers",
    "overlapping_pool": "alexnet_book.layers",
    "dropout": "alexnet_book.layers",
    "lrn_constants": "alexnet_book.layers",
    "max_abs_difference": "alexnet_book.layers",
    # §3.2, §3.5 the network
    "AlexNet": "alexnet_book.model",
    "TwoDeviceAlexNet": "alexnet_book.model",
    "TorchvisionAlexNet": "alexnet_book.model",
    "build_model": "alexnet_book.model",
    "summary": "alexnet_book.report",
    "count_parameters": "alexnet_book.report",
    "count_macs": "alexnet_book.report",
    "FourLayerNet": "alexnet_book.model",
    "layer_specs": "alexnet_book.model",
    "paper_comparison": "alexnet_book.report",
    "input_size_rules": "alexnet_book.report",
    "variant_table": "alexnet_book.report",
    "tower_diagram": "alexnet_book.report",
    "check_seed_listing": "alexnet_book.seed",
    "SEED_LISTING": "alexnet_book.seed",
    "seed_shapes": "alexnet_book.seed",
    # §2, §4.1 data and augmentation
    "load_dataset": "alexnet_book.data",
    "DataSplits": "alexnet_book.data",
    "ImageArrays": "alexnet_book.data",
    "make_subset": "alexnet_book.data",
    "make_synthetic": "alexnet_book.data",
    "JpegDataset": "alexnet_book.data",
    "train_batch": "alexnet_book.augment",
    "centre_batch": "alexnet_book.augment",
    "ten_crop_batch": "alexnet_book.augment",
    "pca_colour_offsets": "alexnet_book.augment",
    # §5 training, §6 evaluation, records (the functions train() and evaluate() share their modules' names:
    # use `from alexnet_book.train import train` and `from alexnet_book.evaluate import evaluate`)
    "TrainConfig": "alexnet_book.config",
    "RunResult": "alexnet_book.config",
    "recipe": "alexnet_book.config",
    "RECIPES": "alexnet_book.config",
    "topk_errors": "alexnet_book.evaluate",
    "ResultsStore": "alexnet_book.runs",
    "MetricsLog": "alexnet_book.runs",
    "config_hash": "alexnet_book.runs",
    # figures and the two towers (Figs. 1, 3, 4)
    "save_figure": "alexnet_book.figures",
    "plot_conv1_filters": "alexnet_book.figures",
    "nearest_neighbours": "alexnet_book.neighbours",
    "colour_index": "alexnet_book.towers",
    "tower_specialisation": "alexnet_book.towers",
    # ablations and the book
    "run_ablations": "alexnet_book.ablations",
    "AblationPanel": "alexnet_book.widgets",
    "run_book": "alexnet_book.book",
    # published weights
    "load_pretrained": "alexnet_book.pretrained",
    "load_torchvision": "alexnet_book.weights",
    "load_bvlc": "alexnet_book.bvlc",
    "predict_top5": "alexnet_book.weights",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'alexnet_book' has no attribute {name!r}")
    module = importlib.import_module(_PUBLIC[name])
    value = module if module.__name__.endswith("." + name) else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
