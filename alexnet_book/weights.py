"""Published AlexNet weights (PAPER.md §6): torchvision's single tower and BVLC Caffe's two-group ``bvlc_alexnet``.

Training the network takes days (§5); these weights let Fig. 3 (the conv1 kernels) and Fig. 4 (predictions,
nearest neighbours) be looked at now.

* torchvision ``AlexNet_Weights.IMAGENET1K_V1`` -- Krizhevsky's 2014 "one weird trick" single tower, loaded into
  ``TorchvisionAlexNet``; input RGB in 0-1, ImageNet mean/std, resize 256, centre crop 224.
* BVLC ``bvlc_alexnet.caffemodel`` -- the 2012 architecture (groups 2 in conv2/4/5, LRN, 227 crops), read as
  protobuf without Caffe (``caffe_proto``) into ``AlexNet(lrn="caffe", lrn_across_towers=True)``: its reader is
  :mod:`alexnet_book.bvlc`.

Here: where the files live, their download, and torchvision's network; ``pretrained.load_pretrained`` opens any
of them (or one of our checkpoints) in one call.

Nothing here unpickles an untrusted file: a caffemodel is parsed as protobuf, a ``.pth`` is loaded with
``torch.load(..., weights_only=True)``.  Downloads are checked against the published checksums and resume.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import files
from .checkpoints import check_state_dict, load_strict
from .model import TorchvisionAlexNet

# torchvision's preprocessing for IMAGENET1K_V1 (RGB in 0-1).
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
TORCHVISION_RESIZE, TORCHVISION_CROP = 256, 224


@dataclass(frozen=True)
class WeightsFile:
    """One published weights file: where it lives and the checksum it must have."""

    name: str
    url: str
    filename: str
    algorithm: str  # hashlib name
    digest: str  # hex digest, or its first characters (torchvision publishes an 8-hex-digit SHA-256 prefix)
    description: str = ""
    page: str = ""


WEIGHTS = {
    "bvlc": WeightsFile(
        "bvlc", "http://dl.caffe.berkeleyvision.org/bvlc_alexnet.caffemodel", "bvlc_alexnet.caffemodel",
        "sha1", "9116a64c0fbe4459d18f4bb6b56d647b63920377",  # models/bvlc_alexnet/readme.md in BVLC/caffe
        "BVLC Caffe bvlc_alexnet: the 2012 two-group network with LRN (about 233 MiB)",
        "https://github.com/BVLC/caffe/tree/master/models/bvlc_alexnet"),
    "torchvision": WeightsFile(
        "torchvision", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "alexnet-owt-7be5be79.pth",
        "sha256", "7be5be79",  # torchvision's file names carry the first 8 hex digits of the SHA-256
        "torchvision AlexNet_Weights.IMAGENET1K_V1: the one-weird-trick single tower (about 233 MiB)",
        "https://pytorch.org/vision/stable/models/generated/torchvision.models.alexnet.html"),
}


# --------------------------------------------------------------------------------------------------- where files live
def weights_dir() -> Path:
    """Where fetched weights go: $ALEXNET_BOOK_WEIGHTS, else <project>/data/weights (git-ignored)."""
    env = os.environ.get("ALEXNET_BOOK_WEIGHTS")
    if env:
        return Path(env).expanduser()
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file():
        return root / "data" / "weights"
    return Path.home() / ".cache" / "alexnet_book" / "weights"


def candidate_paths(source: str) -> list[Path]:
    """Where a published file is looked for: our weights folder, then (torchvision) torch.hub's cache."""
    spec = WEIGHTS[source]
    paths = [weights_dir() / spec.filename]
    if source == "torchvision":
        paths.append(Path(torch.hub.get_dir()) / "checkpoints" / spec.filename)  # torchvision's own download
    return paths


def find_weights(source: str) -> Path | None:
    """The first existing file among ``candidate_paths(source)``, or None."""
    return next((p for p in candidate_paths(source) if p.is_file()), None)


def manual_steps(source: str | WeightsFile, dest: str | Path | None = None) -> str:
    """How to get a weights file by hand (for machines without internet)."""
    spec = WEIGHTS[source] if isinstance(source, str) else source
    folder = Path(dest) if dest else weights_dir()
    return (f"To get {spec.filename} by hand: (1) on a machine with internet run "
            f"`curl -L -C - -o {spec.filename} {spec.url}` (or `alexnet-book weights fetch {spec.name}`); "
            f"(2) check it: `{spec.algorithm}sum {spec.filename}` must start with {spec.digest}; "
            f"(3) copy it to {folder / spec.filename} (or set ALEXNET_BOOK_WEIGHTS to its folder); "
            f"(4) `alexnet-book weights info {folder / spec.filename}` shows what it holds.")


# ------------------------------------------------------------------------------------------------------- download
def verify(path: str | Path, source: str | WeightsFile) -> bool:
    """Whether a file has the published checksum."""
    spec = WEIGHTS[source] if isinstance(source, str) else source
    return files.digest(path, spec.algorithm).startswith(spec.digest.lower())


def fetch(source: str | WeightsFile, dest: str | Path | None = None, *, timeout: float = 10.0,
          progress: bool = True) -> Path:
    """Download a published weights file into ``dest`` (default ``weights_dir()``), resumable and checksummed.

    An interrupted download stays as ``<file>.part`` and the next call asks the server for the rest (HTTP Range).
    The finished file is checked against the published checksum before it is renamed into place.  Without a
    network the first connection fails within ``timeout`` seconds with a ConnectionError giving the manual steps;
    a checksum mismatch deletes the download and raises ValueError.
    """
    spec = WEIGHTS[source] if isinstance(source, str) else source
    if len(spec.digest) < 8:
        raise ValueError(f"{spec.name}: a checksum of at least 8 hex digits is needed, not {spec.digest!r}")
    folder = Path(dest).expanduser() if dest else weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return files.download(spec.url, folder / spec.filename, **{spec.algorithm: spec.digest}, timeout=timeout,
                          progress=progress, partial_suffix=".part", by_hand=manual_steps(spec, folder),
                          again=f"Run `alexnet-book weights fetch {spec.name}` again. {manual_steps(spec, folder)}")


# ----------------------------------------------------------------------------------------------------- torchvision
def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet class names in label order (torchvision's IMAGENET1K_V1 metadata; Caffe uses the same)."""
    from torchvision.models import AlexNet_Weights

    return list(AlexNet_Weights.IMAGENET1K_V1.meta["categories"])


def torchvision_transform():
    """torchvision's own IMAGENET1K_V1 preprocessing: resize 256, centre crop 224, 0-1, ImageNet mean/std."""
    from torchvision.models import AlexNet_Weights

    return AlexNet_Weights.IMAGENET1K_V1.transforms()


def load_torch_file(path: str | Path):
    """``torch.load(path, weights_only=True)`` on the CPU, with one clear error for a bad file."""
    import pickle

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ValueError(f"{path}: refused: not a plain state dict of tensors (weights_only=True would have to "
                         f"run code from the file to read it: {first[:160]}). Use the published file "
                         f"(alexnet-book weights fetch torchvision) and never load this one with "
                         f"weights_only=False unless you trust where it came from") from None
    except Exception as error:  # truncated zip, random bytes, ...
        raise ValueError(f"{path}: not a readable PyTorch file ({type(error).__name__}: "
                         f"{str(error).strip().splitlines()[0][:160] if str(error).strip() else ''}); it may be "
                         f"truncated -- download it again (alexnet-book weights fetch torchvision)") from None


def load_torchvision(path: str | Path | None = None, *, download: bool = False, progress: bool = True) -> TorchvisionAlexNet:
    """torchvision's IMAGENET1K_V1 weights in ``TorchvisionAlexNet`` (eval mode), PAPER.md §6.

    ``path`` None looks in ``weights_dir()`` and torch.hub's cache (where ``torchvision.models.alexnet(weights=
    "IMAGENET1K_V1")`` keeps it); if absent, ``download=True`` fetches it (checksummed), else FileNotFoundError.
    """
    if path is None:
        path = find_weights("torchvision")
        if path is None:
            if not download:
                raise FileNotFoundError(f"torchvision AlexNet weights not found (looked in "
                                        f"{', '.join(map(str, candidate_paths('torchvision')))}). "
                                        f"{manual_steps('torchvision')}")
            path = fetch("torchvision", progress=progress)
    return _torchvision_from_state(load_torch_file(path), path)


def _torchvision_from_state(obj, path) -> TorchvisionAlexNet:
    state = check_state_dict(obj, path)
    if "classifier.6.weight" not in state:
        raise ValueError(f"{path}: not torchvision's alexnet state dict (no classifier.6.weight)")
    model = TorchvisionAlexNet(num_classes=state["classifier.6.weight"].shape[0])
    load_strict(model, state, path)
    return model.eval()


def _open_image(image_or_path):
    from PIL import Image

    if isinstance(image_or_path, (str, Path)):
        if Path(image_or_path).is_file() and Path(image_or_path).stat().st_size == 0:
            raise ValueError(f"{image_or_path}: an empty file (0 bytes), not an image")
        try:
            with Image.open(image_or_path) as image:
                return image.convert("RGB")
        except (OSError, ValueError) as error:
            raise ValueError(f"{image_or_path}: not a readable image ({error})") from None
    if isinstance(image_or_path, Image.Image):
        return image_or_path.convert("RGB")
    return image_or_path


def predict_top5(model: nn.Module, image_or_path, transform, class_names: list[str] | None,
                 k: int = 5) -> list[tuple[str, float]]:
    """The k most probable classes of one image as (class name, softmax probability), best first (Fig. 4).

    ``image_or_path``: a file path, a PIL image, a uint8 tensor (C, H, W) -- all go through ``transform`` --
    or a float tensor (C, H, W) that is already preprocessed.
    """
    image = _open_image(image_or_path)
    x = image if isinstance(image, torch.Tensor) and image.is_floating_point() else transform(image)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            probs = torch.softmax(model(x.unsqueeze(0).to(device)).float(), dim=1)[0].cpu()
    finally:
        model.train(was_training)
    top = torch.topk(probs, min(k, probs.numel()))
    names = class_names or [str(i) for i in range(probs.numel())]
    return [(names[i], float(p)) for p, i in zip(top.values.tolist(), top.indices.tolist())]
