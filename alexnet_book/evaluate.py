"""Evaluation (§6): top-1 and top-5 error, on the centre crop or averaged over 10 crops.

The paper reports error rates: "top-5 error rate is the fraction of test images for which the correct label is
not among the five labels considered most probable by the model".  At test time "the network makes a
prediction by extracting five 224×224 patches (the four corner patches and the center patch) as well as their
horizontal reflections ..., and averaging the predictions made by the network's softmax layer on the ten
patches" (§4.1).  Here both are reported, with accuracy (1 − error) alongside for comparison with
torchvision-style numbers.
"""
from __future__ import annotations

import contextlib
import sys

import torch
import torch.nn.functional as F

from .augment import centre_batch, ten_crop_batch


def topk_correct(scores: torch.Tensor, labels: torch.Tensor, ks=(1, 5)) -> dict[int, int]:
    """How many rows have their label among the k highest scores, for each k (k capped at the class count)."""
    top = scores.topk(min(max(ks), scores.shape[1]), dim=1).indices
    hit = top == labels.view(-1, 1)
    return {k: int(hit[:, :k].any(dim=1).sum()) for k in ks}


def topk_errors(logits: torch.Tensor, labels: torch.Tensor, ks=(1, 5)) -> dict:
    """Top-k error and accuracy of one batch of scores (logits or probabilities; only their order matters)."""
    n = len(labels)
    correct = topk_correct(logits, labels, ks)
    out = {}
    for k in ks:
        out[f"top{k}_error"] = 1.0 - correct[k] / n
        out[f"top{k}_accuracy"] = correct[k] / n
    out["n"] = n
    return out


def ten_crop_probabilities(model, crops: torch.Tensor) -> torch.Tensor:
    """§4.1: the softmax averaged over the ten patches of each image; ``crops`` is (N, 10, 3, S, S)."""
    n, views = crops.shape[:2]
    logits = model(crops.flatten(0, 1).contiguous()).float()
    return F.softmax(logits, dim=1).view(n, views, -1).mean(dim=1)


def batch_probabilities(model, images, mean_image, crop, *, ten_crop=False, batch_size=256, device=None,
                        progress=False, input_scale: float | None = None, precision: torch.dtype | None = None):
    """(start, softmax) for each batch of an ``ImageArrays`` split, in order: the centre crop, or the average over
    the ten patches of §4.1 (``ten_crop``); eval mode and no gradients while it runs, the model's mode restored
    after.  ``input_scale`` multiplies the mean-subtracted input (default: ``model.input_scale`` when set by
    ``train``, else 1); ``precision`` an autocast dtype (e.g. torch.bfloat16) or None for fp32."""
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    if input_scale is None:
        input_scale = getattr(model, "input_scale", 1.0)
    autocast = (torch.autocast(device.type, dtype=precision) if precision is not None
                else contextlib.nullcontext())
    starts = range(0, len(images.labels), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="10-crop eval" if ten_crop else "eval", unit="batch", leave=False,
                      file=sys.stdout)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), autocast:
            for start in starts:
                pixels = images.images[start:start + batch_size]
                if ten_crop:
                    crops = ten_crop_batch(pixels, mean_image, crop, device=device) * input_scale
                    yield start, ten_crop_probabilities(model, crops)
                else:
                    x = (centre_batch(pixels, mean_image, crop, device=device) * input_scale).contiguous()
                    yield start, F.softmax(model(x).float(), dim=1)
    finally:
        model.train(was_training)


def evaluate(model, images, mean_image, crop, *, ten_crop=False, batch_size=256, device=None, progress=False,
             input_scale: float | None = None, precision: torch.dtype | None = None) -> dict:
    """Top-1/top-5 error of ``model`` on an ``ImageArrays`` split, centre crop or 10 crops (§6, §4.1).

    Returns {"top1_error", "top5_error", "top1_accuracy", "top5_accuracy", "n", "loss", "top1_correct",
    "top5_correct"}; errors are fractions (0-1).  ``loss`` is the mean cross-entropy of the (averaged)
    prediction.  ``input_scale`` multiplies the mean-subtracted input (default: ``model.input_scale`` when
    set by ``train``, else 1); ``precision`` an autocast dtype (e.g. torch.bfloat16) or None for fp32.
    """
    n = len(images.labels)
    correct = {1: 0, 5: 0}
    loss_sum = 0.0
    for start, probabilities in batch_probabilities(model, images, mean_image, crop, ten_crop=ten_crop,
                                                    batch_size=batch_size, device=device, progress=progress,
                                                    input_scale=input_scale, precision=precision):
        labels = images.labels[start:start + batch_size].to(probabilities.device)
        for k, c in topk_correct(probabilities, labels, (1, 5)).items():
            correct[k] += c
        loss_sum += float(F.nll_loss(probabilities.clamp_min(1e-30).log(), labels, reduction="sum"))
    return {"top1_error": 1.0 - correct[1] / max(n, 1), "top5_error": 1.0 - correct[5] / max(n, 1),
            "top1_accuracy": correct[1] / max(n, 1), "top5_accuracy": correct[5] / max(n, 1), "n": n,
            "loss": loss_sum / max(n, 1), "top1_correct": correct[1], "top5_correct": correct[5]}


def split_probabilities(model, images, mean_image, crop, *, ten_crop: bool = False, batch_size=256,
                        input_scale: float | None = None, precision: torch.dtype | None = None) -> torch.Tensor:
    """The softmax of ``model`` on every image of a split, (N, classes) float32 on the CPU: on the centre crop,
    or averaged over the ten patches of §4.1 (``ten_crop``), as ``evaluate`` scores them."""
    out = [p.cpu() for _, p in batch_probabilities(model, images, mean_image, crop, ten_crop=ten_crop,
                                                   batch_size=batch_size, input_scale=input_scale,
                                                   precision=precision)]
    return torch.cat(out) if out else torch.zeros(0)


def centre_probabilities(model, images, mean_image, crop, *, batch_size=256, input_scale: float | None = None,
                         precision: torch.dtype | None = None) -> torch.Tensor:
    """The softmax of ``model`` on the centre crop of every image of a split, (N, classes) float32 on the CPU.

    What an ensemble averages (§6, Table 2: "averaging the predictions of five similar CNNs").
    """
    return split_probabilities(model, images, mean_image, crop, batch_size=batch_size, input_scale=input_scale,
                               precision=precision)


def run_record(checkpoint, config, state: dict) -> dict:
    """What the run recorded about itself, for the checkpoint at ``checkpoint``: its final metrics, the precision
    and device it ran in, its process count and the step its numbers belong to (any may be missing).

    A ``model-<hash>.pt`` holds the final metrics; the results store beside the run folders
    (``<runs>/results.jsonl``) holds them with the precision and device.  A ``checkpoint.pt`` written before the
    run finished (its step short of the recorded one) has no recorded numbers of its own.
    """
    from pathlib import Path

    from .runs import ResultsStore

    out = {"metrics": state.get("metrics"), "world_size": state.get("world_size")}
    try:
        row = ResultsStore(Path(checkpoint).resolve().parent.parent / "results.jsonl").find(config.hash())
    except ValueError:
        row = None
    if row:
        out["metrics"] = out["metrics"] or row.get("metrics")
        for key in ("precision", "device", "world_size"):
            out[key] = out.get(key) or row.get(key)
    metrics = out["metrics"] or {}
    if "step" in state and metrics.get("steps") is not None and state["step"] != metrics["steps"]:
        out["metrics"] = None  # a checkpoint from before (or after) the recorded final numbers
    return out
