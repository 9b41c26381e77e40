"""Opening a trained run: ``load_run(path) -> (model, config, info)``, the one way from a saved file to a network.

``train`` writes two kinds of file into a run folder (``runs.save_checkpoint``): ``checkpoint.pt``, the state to
continue from, and at the end ``model-<hash>.pt``, the finished network with its class count, crop and final
metrics.  Both hold the weights under "model" and the run's ``TrainConfig`` under "config".  ``load_run`` rebuilds
the network the run trained (``networks.build_network``, as ``train`` built it) and says in ``info`` how to feed
it: ``info["preprocess"]`` is a ``Preprocess`` (the input scale and crop; the mean is the training set's mean
image, from its data).  A file without the class count and crop (``checkpoint.pt``, or one written by other code)
is rebuilt from the shapes of its weights and the options its config states.

``reused_result`` opens a finished run that ``train`` finds in the results store; ``check_same_data`` refuses to
reuse or continue a run trained on other data than the data opened now.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .config import RunResult, TrainConfig
from .layers import scale_lrn_alpha_
from .model import build_model
from .networks import build_network
from .runs import load_checkpoint


@dataclass(frozen=True)
class Preprocess:
    """How a trained network is fed (§2): the centre ``crop`` of an image minus the training set's mean image,
    times ``input_scale`` (the config's; 1 = the paper's raw 0-255 units)."""

    input_scale: float = 1.0
    crop: int | None = None

    def centre(self, pixels: torch.Tensor, mean_image: torch.Tensor, device=None) -> torch.Tensor:
        """Stored uint8 images (N, S, S, 3) as the network's input: centre crop, minus the mean, times the scale."""
        from .augment import centre_batch

        return centre_batch(pixels, mean_image, self.crop, device=device) * self.input_scale


def check_state_dict(obj, path) -> dict[str, torch.Tensor]:
    """``obj`` when it is a state dict (a non-empty dict of tensors), else a one-line ValueError naming ``path``."""
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: not a state dict (a dict of tensors); pass torchvision's alexnet-owt-*.pth")
    return obj


def load_strict(model: nn.Module, state: dict[str, torch.Tensor], path) -> None:
    """load_state_dict(strict) with a one-line error naming the file and what differs."""
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own if k in state
             and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        raise ValueError(f"{path}: does not fit {type(model).__name__} (missing {missing[:3]}, unexpected "
                         f"{unexpected[:3]}, shapes {wrong[:3]}); is it the right file for this network?")
    model.load_state_dict(state)


def read_run(path: str | Path) -> tuple[dict, TrainConfig]:
    """(the checkpoint's contents, the run's TrainConfig) of a file written by ``train``, without a network."""
    state = load_checkpoint(path)
    return state, TrainConfig.from_dict(state.get("config", {}))


def load_run(path: str | Path, *, state: dict | None = None, num_classes: int | None = None,
             crop: int | None = None) -> tuple[nn.Module, TrainConfig, dict]:
    """The network a run trained, its TrainConfig, and ``info``: num_classes, crop, input_scale, ``preprocess``
    (a ``Preprocess``), class_names (when saved), config (the saved dict) and checkpoint (the file's contents).

    ``state``: the file's contents when already read; ``num_classes``/``crop``: the data's, for a checkpoint that
    does not record them (``checkpoint.pt``).  With both known the network is built as ``train`` built it
    (``build_network``: the same random draws, ``model.input_scale`` set), else from the shapes of the weights.
    """
    path = Path(path)
    state = load_checkpoint(path) if state is None else state
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise ValueError(f"{path}: neither torchvision's alexnet state dict nor an alexnet-book checkpoint (no "
                         f"'model' entry); pass a checkpoint.pt written by alexnet-book train")
    saved = state.get("config") if isinstance(state.get("config"), dict) else {}
    config = TrainConfig.from_dict(saved)
    num_classes = num_classes or state.get("num_classes")
    crop = crop or state.get("crop")
    if saved.get("model") and num_classes and crop:
        model = build_network(config, num_classes, crop)
        model.load_state_dict(state["model"])
    else:
        model = network_from_shapes(state, saved, path)
        model.input_scale = config.input_scale  # as build_network sets it: evaluate and the figures read it
        crop = crop or getattr(model, "input_size", None)
    classes = state.get("class_names") or saved.get("class_names") or state.get("classes")
    info = {"num_classes": num_classes, "crop": crop, "input_scale": config.input_scale,
            "preprocess": Preprocess(config.input_scale, crop), "class_names": list(classes) if classes else None,
            "config": saved, "checkpoint": state}
    return model, config, info


def network_from_shapes(checkpoint: dict, config: dict, path) -> nn.Module:
    """A checkpoint's network rebuilt from the shapes of its weights and the options its ``config`` dict states."""
    state = check_state_dict(checkpoint["model"], path)
    name = config.get("model") or ("torchvision" if "features.0.weight" in state else
                                   "fourlayer" if "classifier.fc4.weight" in state else "alexnet")
    options = dict(config.get("model_options") or {})
    if name == "torchvision":
        options["num_classes"] = state["classifier.6.weight"].shape[0]
    elif name == "fourlayer":
        options["num_classes"] = state["classifier.fc4.weight"].shape[0]
    else:  # the shapes say the scale, towers, removed layer and classes; the config says the rest
        options["num_classes"] = state["classifier.fc8.weight"].shape[0]
        options.setdefault("scale", "full" if state["features.conv1.weight"].shape[-1] == 11 else "scaled")
        options.setdefault("towers", state["features.conv1.weight"].shape[0] // state["features.conv2.weight"].shape[1])
        options.setdefault("remove", next((c for c in ("conv3", "conv4") if f"features.{c}.weight" not in state), None))
        options["init"] = "default"
    model = build_model(name, **options)
    load_strict(model, state, path)
    if config.get("lrn_follows_input_scale") and config.get("input_scale", 1.0) != 1.0:
        scale_lrn_alpha_(model, config["input_scale"])  # as networks.build_network does
    return model


def reused_result(config: TrainConfig, row: dict, device: torch.device) -> RunResult:
    """A RunResult rebuilt from the results store's row, its metrics log and its saved weights."""
    import pandas as pd

    run_dir = Path(row.get("run_dir", config.run_dir()))
    history = pd.read_csv(run_dir / "metrics.csv") if (run_dir / "metrics.csv").exists() else pd.DataFrame()
    model = None
    model_path = Path(row.get("model_path", run_dir / f"model-{config.hash()}.pt"))
    if model_path.exists():
        model, _, _ = load_run(model_path)
        model.to(device)
    return RunResult(config=config, run_dir=run_dir, metrics=row["metrics"], history=history, model=model, reused=True)


def check_same_data(recorded: dict | None, config: TrainConfig, splits, what: str) -> None:
    """Refuse, in one line naming both, to reuse or resume ``what`` when it was trained on other data than the
    data this run opens now (e.g. root unset and $ALEXNET_BOOK_CIFAR10 pointing elsewhere, or the synthetic
    fallback).  Records without a data identity (written before it was recorded) and data that cannot be located
    now are not checked."""
    from .data import data_identity, dataset_identity, same_data

    if not recorded:
        return
    try:
        current = data_identity(splits) if splits is not None else \
            dataset_identity(config.data, config.root, scale=config.scale, limit=config.limit)
    except FileNotFoundError:
        return
    if not same_data(recorded, current) and splits is None:
        # the keys differ: build (or open) today's cache, so that its decoded content can be compared with the
        # recorded cache's (the same archive under a key made another way is the same data)
        from .data import load_dataset

        current = data_identity(load_dataset(config.data, config.root, scale=config.scale, limit=config.limit,
                                             progress=False))
    if not same_data(recorded, current):
        raise ValueError(f"{what} was trained on {recorded.get('source')} (cache {recorded.get('cache_key') or '-'})"
                         f", but this run opens {current['source']} (cache {current['cache_key'] or '-'}); give "
                         f"--root to make it a run of its own, or another --out-dir, or --no-reuse to train again "
                         f"in its place")
