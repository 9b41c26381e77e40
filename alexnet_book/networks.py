"""The network a training configuration names (§3.5, §5): ``build_network(config, num_classes, crop)``.

``model.build_model`` builds a network from its name and options; this adds what a ``TrainConfig`` says on top:
the scale the data's crop implies, the initialisation (§5's, another std, or He's), and LRN's α matched to the
input scale (§3.3).
"""
from __future__ import annotations

import torch

from . import paper
from .config import TrainConfig
from .layers import scale_lrn_alpha_
from .model import build_model, paper_init_


def build_network(config: TrainConfig, num_classes: int, crop: int) -> torch.nn.Module:
    """The network the config names, sized for the data: its class count, and "scaled" for 32 px crops."""
    scale = config.scale if config.scale in ("scaled", "full") else ("scaled" if crop <= 64 else "full")
    model = build_model(config.model, **{"num_classes": num_classes, "scale": scale, **config.model_options})
    if config.init_std is not None or config.init_bias is not None:
        if config.model != "alexnet" or config.model_options.get("init", "paper") != "paper":
            raise ValueError(f"init_std/init_bias change the paper's initialisation of the alexnet model; drop them "
                             f"for model {config.model!r} with options {config.model_options}")
        std = config.init_std if isinstance(config.init_std, (int, float)) else paper.RECIPE["init_std"]
        paper_init_(model, std=std, bias_value=1.0 if config.init_bias is None else config.init_bias)
        if config.init_std == "he":  # He et al. (2015), not the paper: keeps the signal's scale through the layers
            for module in model.modules():
                if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                    torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        elif not isinstance(config.init_std, (int, float, type(None))):
            raise ValueError(f"init_std must be a number, 'he' or None, not {config.init_std!r}")
    if config.lrn_follows_input_scale and config.input_scale != 1.0:
        scale_lrn_alpha_(model, config.input_scale)
    model.input_scale = config.input_scale  # read by evaluate(), so a trained network is scored as it was trained
    return model
