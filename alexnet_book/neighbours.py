"""Fig. 4 (§6.1): the training images nearest to a test image in the network's last hidden layer, and in pixels.

``nearest_neighbours`` searches the features of ``features.hidden_features`` block by block; ``fig4_evidence``
runs it on the study's trained network and writes ``results/fig4_study/`` (``evidence.draw_evidence`` draws the
committed Fig. 4 from there, with ``figures.plot_neighbours``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from . import paper
from .features import feature_batches, input_batches
from .runs import results_dir

FIG4_FOLDER = "fig4_study"
FIG4_QUERIES = 500  # validation images whose neighbours are measured (5 of them drawn)


def _merge_topk(best_d, best_i, d, offset: int, k: int):
    """Keep the k smallest distances per row among the old best and a new block of columns."""
    import torch

    idx = torch.arange(offset, offset + d.shape[1], device=d.device).expand(d.shape[0], -1)
    all_d, all_i = torch.cat([best_d, d], 1), torch.cat([best_i, idx], 1)
    top = all_d.topk(min(k, all_d.shape[1]), dim=1, largest=False, sorted=True)
    return top.values, all_i.gather(1, top.indices)


@dataclass
class Neighbours:
    """The k nearest training images of each query, in a hidden layer and in pixel space (Fig. 4, §6.1)."""

    layer: str
    feature_indices: "torch.Tensor"   # (Q, k) training-set indices, nearest first
    feature_distances: "torch.Tensor"  # (Q, k) Euclidean distances in the layer's activity
    pixel_indices: "torch.Tensor"
    pixel_distances: "torch.Tensor"
    overlap: "torch.Tensor"            # (Q,) share of the k feature neighbours that are also pixel neighbours
    feature_label_agreement: "torch.Tensor | None" = None  # (Q,) share of feature neighbours with the query's label
    pixel_label_agreement: "torch.Tensor | None" = None

    def summary(self) -> dict:
        """Means over the queries: how much the two neighbour sets overlap and how often they share the label."""
        out = {"queries": int(self.overlap.numel()), "k": int(self.feature_indices.shape[1]),
               "overlap": float(self.overlap.mean())}
        if self.feature_label_agreement is not None:
            out[f"{self.layer}_label_agreement"] = float(self.feature_label_agreement.mean())
            out["pixel_label_agreement"] = float(self.pixel_label_agreement.mean())
        return out


def nearest_neighbours(model, query_images, train_images, k: int = paper.FIG4_NEIGHBOURS, layer: str = "fc7", *,
                       mean_image=None, crop=None, preprocess=None, query_labels=None, train_labels=None,
                       batch_size: int = 256, device=None, progress: bool = False) -> Neighbours:
    """Fig. 4: the ``k`` training images nearest to each query, Euclidean, in ``layer`` and in pixel space (§6.1).

    The paper: "the six training images that produce feature vectors in the last hidden layer with the
    smallest Euclidean distance from the feature vector for the test image".  ``layer="fc7"`` is fc7's output
    after its ReLU, in eval mode (no dropout).  Pixel space is the network's input (the centre crop minus the
    mean image; subtracting the same mean leaves distances between images unchanged).

    Distances are computed block by block with ``torch.cdist`` (‖a‖² + ‖b‖² − 2ab as one matrix product per
    block), the training set streamed in batches with a running top-k, so memory stays at one block and no
    Python loop runs over pairs.  Images: uint8 NHWC (``ImageArrays`` or tensors; give ``mean_image`` and
    ``crop``, or ``preprocess``) or float NCHW network inputs.  Labels (taken from ``ImageArrays`` when given) add the share of
    neighbours that share the query's class in each space.
    """
    import torch
    from tqdm.auto import tqdm

    if query_labels is None and hasattr(query_images, "labels"):
        query_labels = query_images.labels
    if train_labels is None and hasattr(train_images, "labels"):
        train_labels = train_images.labels
    queries = list(feature_batches(model, query_images, layer, mean_image, crop, batch_size, device, preprocess))
    q_feat = torch.cat(queries)
    q_pix = torch.cat(list(input_batches(query_images, mean_image, crop, batch_size, q_feat.device,
                                             preprocess))).flatten(1)
    # Distances do not change when both sides move by the same vector; centring on the queries' mean keeps
    # ‖a‖² + ‖b‖² − 2ab from cancelling catastrophically when activities share a large common part (fc biases).
    f_centre, p_centre = q_feat.mean(0), q_pix.mean(0)
    q_feat, q_pix = q_feat - f_centre, q_pix - p_centre
    q = len(q_feat)
    empty = lambda: (torch.empty(q, 0, device=q_feat.device), torch.empty(q, 0, dtype=torch.long, device=q_feat.device))
    (fd, fi), (pd_, pi) = empty(), empty()
    offset = 0
    n_train = len(getattr(train_images, "images", train_images))
    pixels = input_batches(train_images, mean_image, crop, batch_size, q_feat.device, preprocess)
    feats = feature_batches(model, train_images, layer, mean_image, crop, batch_size, device, preprocess)
    bar = tqdm(total=n_train, desc=f"neighbours ({layer} and pixels)", disable=not progress, unit="img")
    for x, f in zip(pixels, feats):
        fd, fi = _merge_topk(fd, fi, torch.cdist(q_feat, f.to(q_feat.device) - f_centre), offset, k)
        pd_, pi = _merge_topk(pd_, pi, torch.cdist(q_pix, x.flatten(1) - p_centre), offset, k)
        offset += len(x)
        bar.update(len(x))
    bar.close()
    if offset < k:
        raise ValueError(f"only {offset} training images: cannot find {k} neighbours")
    fi, pi, fd, pd_ = fi.cpu(), pi.cpu(), fd.cpu(), pd_.cpu()
    overlap = (fi[:, :, None] == pi[:, None, :]).any(2).float().mean(1)
    result = Neighbours(layer, fi, fd, pi, pd_, overlap)
    if query_labels is not None and train_labels is not None:
        ql, tl = torch.as_tensor(query_labels).cpu(), torch.as_tensor(train_labels).cpu()
        result.feature_label_agreement = (tl[fi] == ql[:, None]).float().mean(1)
        result.pixel_label_agreement = (tl[pi] == ql[:, None]).float().mean(1)
    return result


def pick_queries(images, n: int = 5, seed: int = 0):
    """``n`` test images of different classes (as Fig. 4's five), drawn reproducibly; returns their indices."""
    import torch

    labels = torch.as_tensor(images.labels)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    chosen, seen = [], set()
    for i in order.tolist():
        if int(labels[i]) not in seen or len(seen) >= int(labels.max()) + 1:
            chosen.append(i)
            seen.add(int(labels[i]))
        if len(chosen) == n:
            break
    return torch.tensor(chosen)


def subset(images, index):
    """An ``ImageArrays`` holding only the images at ``index`` (e.g. the Fig. 4 queries)."""
    return type(images)(images.images[index], images.labels[index])


# ---------------------------------------------------------------------------------------------------------------
# Fig. 4 as evidence


def fig4_evidence(results=None, *, seed: int = 0, kernels_per_tower: int = 16, queries: int = FIG4_QUERIES,
                  progress: bool = True) -> dict:
    """Fig. 4 with the study's trained network (``towers_study.study_config(seed)``, reused from the results store or
    trained): the six nearest training images of ``queries`` validation images (chosen evenly over the classes)
    in fc7 and in pixel space.  Writes ``results/fig4_study/neighbours.csv`` (query, val_index, space, rank,
    train_index, distance) and ``summary.json`` (label agreement per space, overlap, config hash, command)."""
    import platform

    import pandas as pd

    from .files import atomic_write_text, machine
    from .towers_study import study_config
    from .train import train

    config = study_config(seed, kernels_per_tower)
    run = train(config, progress=progress)
    from .data import load_dataset

    splits = load_dataset(config.data, config.root, scale=config.scale, limit=config.limit, progress=False)
    index = _even_queries(splits.val.labels, queries)
    preprocess = _preprocess(run.model, splits)
    result = nearest_neighbours(run.model, subset(splits.val, index), splits.train, preprocess=preprocess,
                                progress=progress)
    rows = []
    for q, val_index in enumerate(index.tolist()):
        for space, (ind, dist) in (("fc7", (result.feature_indices, result.feature_distances)),
                                   ("pixels", (result.pixel_indices, result.pixel_distances))):
            for rank in range(ind.shape[1]):
                rows.append(dict(query=q, val_index=val_index, space=space, rank=rank + 1,
                                 train_index=int(ind[q, rank]), distance=float(dist[q, rank])))
    folder = results_dir(results) / FIG4_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "neighbours.csv", pd.DataFrame(rows).to_csv(index=False))
    summary = {**result.summary(), "seed": seed, "kernels_per_tower": kernels_per_tower,
               "config_hash": config.hash(), "data": f"{config.data} (limit {config.limit})",
               "val_top1_error": run.metrics.get("val_top1_error"), "recipe": "study (docs/ablations.md)",
               "command": "alexnet-book figures --fig4-evidence", "machine": machine(),
               "python": platform.python_version()}
    atomic_write_text(folder / "summary.json", json.dumps(summary, indent=1, default=str) + "\n")
    return summary


def _even_queries(labels, n: int):
    """``n`` validation indices spread evenly over the classes (the first of each class in turn)."""
    import torch

    labels = torch.as_tensor(labels)
    per_class = [torch.nonzero(labels == c).flatten() for c in labels.unique().tolist()]
    picked, i = [], 0
    while len(picked) < min(n, len(labels)):
        for members in per_class:
            if i < len(members) and len(picked) < n:
                picked.append(int(members[i]))
        i += 1
    return torch.tensor(sorted(picked))


def _preprocess(model, splits):
    """The centre crop minus the mean image, × the network's input scale (as it was trained)."""
    from .augment import centre_batch

    scale = float(getattr(model, "input_scale", 1.0))
    return lambda images: centre_batch(images, splits.mean_image, splits.crop) * scale
