"""One call for notebooks: ``load_pretrained(source) -> (model, info)`` for any trained AlexNet (PAPER.md §6).

``source`` is "torchvision" (:mod:`alexnet_book.weights`), "bvlc" (:mod:`alexnet_book.bvlc`) or a file: a
``.caffemodel``, a torchvision ``.pth``, or a checkpoint written by ``alexnet-book train``
(:func:`alexnet_book.checkpoints.load_run`).  ``info`` says how to feed the network.
"""
from __future__ import annotations

from pathlib import Path

from torch import nn

from . import paper
from .bvlc import BVLC_CROP, BVLC_MEAN_RGB, BVLC_RESIZE, bvlc_transform, load_bvlc
from .checkpoints import load_run
from .weights import (IMAGENET_MEAN, IMAGENET_STD, TORCHVISION_CROP, TORCHVISION_RESIZE, WEIGHTS, _torchvision_from_state,
                      candidate_paths, fetch, find_weights, imagenet_class_names, load_torch_file, manual_steps,
                      torchvision_transform)


def _reference(name: str) -> dict:
    row = next((r for r in paper.REPRODUCTIONS if r[0] == name), None)
    return {} if row is None else {"top1_accuracy": round(100 - row[1], 3), "top5_accuracy": round(100 - row[2], 3),
                                   "note": row[3]}


def load_pretrained(source: str | Path, *, download: bool = False, progress: bool = True) -> tuple[nn.Module, dict]:
    """A trained network and how to feed it: ``source`` "torchvision", "bvlc" or a path (.caffemodel, .pth, ours).

    Returns (model in eval mode, info) with info keys: source, path, architecture, input_size, preprocessing
    (space, scale, mean, std, resize, crop: the input is (pixels_0_1 · scale − mean) / std), transform (PIL image
    → input tensor, None for our checkpoints, whose mean is the training set's mean image), class_names, reference
    (published accuracy).  Missing files raise FileNotFoundError with the manual steps (``download=True`` fetches
    the published files first, failing fast offline).
    """
    source_str = str(source)
    if source_str in WEIGHTS:
        path = find_weights(source_str)
        if path is None and download:
            try:
                path = fetch(source_str, progress=progress)
            except ConnectionError as error:
                raise FileNotFoundError(str(error)) from None
        if path is None:
            raise FileNotFoundError(f"{source_str} weights not found (looked in "
                                    f"{', '.join(map(str, candidate_paths(source_str)))}). {manual_steps(source_str)}")
    else:
        path = Path(source_str).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file; pass 'torchvision', 'bvlc' or the path of a .caffemodel, "
                                    f"a torchvision .pth or a checkpoint written by alexnet-book train")
    if path.suffix == ".caffemodel":
        model = load_bvlc(path)
        info = dict(source="bvlc", architecture="two-tower AlexNet (§3.2), Caffe LRN k=1 across all channels",
                    input_size=BVLC_CROP, transform=bvlc_transform(), class_names=imagenet_class_names(),
                    preprocessing=dict(space="RGB", scale=255.0, mean=BVLC_MEAN_RGB, std=(1.0, 1.0, 1.0),
                                       resize=(BVLC_RESIZE, BVLC_RESIZE), crop=BVLC_CROP),
                    reference=_reference("Caffe bvlc_alexnet"))
    else:
        obj = load_torch_file(path)
        if isinstance(obj, dict) and "classifier.6.weight" in obj and "features.0.weight" in obj:
            model = _torchvision_from_state(obj, path)
            info = dict(source="torchvision", architecture="torchvision one-weird-trick single tower (PAPER.md §6)",
                        input_size=TORCHVISION_CROP, transform=torchvision_transform(),
                        class_names=imagenet_class_names(),
                        preprocessing=dict(space="RGB", scale=1.0, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                                           resize=TORCHVISION_RESIZE, crop=TORCHVISION_CROP),
                        reference=_reference("torchvision alexnet IMAGENET1K_V1"))
        else:
            model, _, run = load_run(path, state=obj)  # one of our training checkpoints
            model = model.eval()
            size = getattr(model, "input_size", None)
            info = dict(source="checkpoint", architecture=type(model).__name__ + str(getattr(model, "options", "")),
                        input_size=size, transform=None, class_names=run["class_names"], config=run["config"],
                        preprocessing=dict(space="RGB", scale=255.0, mean="the training set's mean image "
                                           "(load_dataset(...).mean_image)", std=(1.0, 1.0, 1.0), resize=None,
                                           crop=size),
                        reference={})
    info["path"] = str(path)
    return model, info
