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
    # §3.2, §3.5 the network
    "AlexNet": "alexnet_book.model",
    "TwoDeviceAlexNet": "alexnet_book.model",
    "TorchvisionAlexNet": "alexnet_book.model",
    "build_model": "alexnet_book.model",
    "summary": "alexnet_book.model",
    "count_parameters": "alexnet_book.model",
    "count_macs": "alexnet_book.model",
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
