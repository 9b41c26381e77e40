"""Published AlexNet weights (PAPER.md §6): torchvision's single tower and BVLC Caffe's two-group ``bvlc_alexnet``.

Training the network takes days (§5); these weights let Fig. 3 (the conv1 kernels) and Fig. 4 (predictions,
nearest neighbours) be looked at now.

* torchvision ``AlexNet_Weights.IMAGENET1K_V1`` -- Krizhevsky's 2014 "one weird trick" single tower, loaded into
  ``TorchvisionAlexNet``; input RGB in 0-1, ImageNet mean/std, resize 256, centre crop 224.
* BVLC ``bvlc_alexnet.caffemodel`` -- the 2012 architecture (groups 2 in conv2/4/5, LRN, 227 crops), read as
  protobuf without Caffe (``caffe_proto``) into ``AlexNet(lrn="caffe", lrn_across_towers=True)``.  Caffe's
  input is BGR, 0-255, minus a mean; conv1 is flipped here to RGB, so our input is RGB 0-255 minus
  ``BVLC_MEAN_RGB``.

Nothing here unpickles an untrusted file: a caffemodel is parsed as protobuf, a ``.pth`` is loaded with
``torch.load(..., weights_only=True)``.  Downloads are checked against the published checksums and resume.
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import caffe_proto, files, paper
from .layers import LocalResponseNorm, scale_lrn_alpha_
from .model import AlexNet, TorchvisionAlexNet, build_model

# §6 of PAPER.md: Caffe's 227 crop from 256×256 images; its mean is ilsvrc_2012_mean.binaryproto averaged over
# pixels (the values Caffe's own classification example uses), in Caffe's BGR order.
BVLC_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)
BVLC_MEAN_RGB = BVLC_MEAN_BGR[::-1]
BVLC_RESIZE, BVLC_CROP = 256, 227
# torchvision's preprocessing for IMAGENET1K_V1 (RGB in 0-1).
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
TORCHVISION_RESIZE, TORCHVISION_CROP = 256, 224

LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")


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


def _state_dict(obj, path) -> dict[str, torch.Tensor]:
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: not a state dict (a dict of tensors); pass torchvision's alexnet-owt-*.pth")
    return obj


def _load_strict(model: nn.Module, state: dict[str, torch.Tensor], path) -> None:
    """load_state_dict(strict) with a one-line error naming the file and what differs."""
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own if k in state
             and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        raise ValueError(f"{path}: does not fit {type(model).__name__} (missing {missing[:3]}, unexpected "
                         f"{unexpected[:3]}, shapes {wrong[:3]}); is it the right file for this network?")
    model.load_state_dict(state)


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
    state = _state_dict(obj, path)
    if "classifier.6.weight" not in state:
        raise ValueError(f"{path}: not torchvision's alexnet state dict (no classifier.6.weight)")
    model = TorchvisionAlexNet(num_classes=state["classifier.6.weight"].shape[0])
    _load_strict(model, state, path)
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


# ------------------------------------------------------------------------------------------------------ BVLC Caffe
@dataclass
class CaffeLayer:
    """One layer of a caffemodel: its name, type (new-style string), blobs and the settings we check."""

    name: str
    type: str
    blobs: list[np.ndarray]
    settings: dict = field(default_factory=dict)


@dataclass
class CaffeModel:
    name: str
    format: str  # "layer" (2015+ LayerParameter) or "layers" (V1LayerParameter, 2014)
    layers: list[CaffeLayer]

    def layer(self, name: str) -> CaffeLayer | None:
        return next((layer for layer in self.layers if layer.name == name), None)

    @property
    def parameters(self) -> int:
        return sum(b.size for layer in self.layers for b in layer.blobs)


def _blob_array(blob, where: str) -> np.ndarray:
    if len(blob.data):
        values = np.asarray(blob.data, dtype=np.float32)
    else:
        values = np.asarray(blob.double_data, dtype=np.float64).astype(np.float32)
    shape = tuple(int(d) for d in blob.shape.dim) if blob.HasField("shape") else \
        (int(blob.num), int(blob.channels), int(blob.height), int(blob.width))
    if math.prod(shape) != values.size:
        raise ValueError(f"{where}: shape {shape} needs {math.prod(shape):,} values but the file holds "
                         f"{values.size:,}: the file is damaged; download it again (alexnet-book weights fetch bvlc)")
    return values.reshape(shape)


def _settings(layer) -> dict:
    """The settings that decide what a layer's weights compute (only those the file states)."""
    out = {}
    if layer.HasField("convolution_param"):
        p = layer.convolution_param
        out["stride"] = p.stride_h if p.HasField("stride_h") else (p.stride[0] if len(p.stride) else 1)
        out["pad"] = p.pad_h if p.HasField("pad_h") else (p.pad[0] if len(p.pad) else 0)
        out["group"] = p.group
    if layer.HasField("inner_product_param"):
        out["transpose"] = layer.inner_product_param.transpose
    if layer.HasField("lrn_param"):
        p = layer.lrn_param
        out.update(local_size=p.local_size, alpha=p.alpha, beta=p.beta, k=p.k,
                   across_channels=p.norm_region == 0)
    if layer.HasField("pooling_param"):
        p = layer.pooling_param
        out.update(pool=("max", "average", "stochastic")[p.pool], kernel=p.kernel_size, stride=p.stride, pad=p.pad)
    return out


def read_caffemodel(path: str | Path) -> CaffeModel:
    """Parse a ``.caffemodel`` (new ``layer`` or V1 ``layers`` format) as protobuf; no Caffe, nothing executed."""
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file. {manual_steps('bvlc')}")
    NetParameter = caffe_proto.messages()["NetParameter"]
    try:
        net = NetParameter.FromString(path.read_bytes())
    except (DecodeError, RuntimeError, ValueError) as error:
        raise ValueError(f"{path}: not a Caffe model (protobuf parse failed: {error}); the file is truncated or "
                         f"another kind of file -- download it again (alexnet-book weights fetch bvlc)") from None
    layers = []
    for layer in net.layer:
        blobs = [_blob_array(b, f"{path} layer {layer.name} blob {i}") for i, b in enumerate(layer.blobs)]
        layers.append(CaffeLayer(layer.name, layer.type, blobs, _settings(layer)))
    for layer in net.layers:
        blobs = [_blob_array(b, f"{path} layer {layer.name} blob {i}") for i, b in enumerate(layer.blobs)]
        kind = caffe_proto.V1_TYPE_NAMES.get(layer.type, f"V1:{layer.type}")
        layers.append(CaffeLayer(layer.name, kind, blobs, _settings(layer)))
    if not any(layer.blobs for layer in layers):
        raise ValueError(f"{path}: holds no layers with weights -- not a trained Caffe model; download "
                         f"bvlc_alexnet.caffemodel again (alexnet-book weights fetch bvlc)")
    return CaffeModel(net.name, "layer" if len(net.layer) else "layers", layers)


def _weight_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The model's conv1…fc8 modules by their Caffe layer names."""
    found: dict[str, nn.Module] = {}
    for name, module in model.named_modules():
        short = name.rsplit(".", 1)[-1]
        if short in LAYERS and isinstance(module, (nn.Conv2d, nn.Linear)):
            if short in found:
                raise ValueError(f"the model has two modules named {short}; load into a grouped AlexNet, then "
                                 f"split it (TwoDeviceAlexNet.load_grouped_state_dict)")
            found[short] = module
    if not found:
        raise ValueError("the model has no conv1…fc8 layers; use AlexNet(lrn='caffe', lrn_across_towers=True)")
    return found


def caffe_blob_shapes(model: nn.Module | None = None) -> dict[str, tuple[tuple[int, ...], ...]]:
    """The (weight, bias) shapes Caffe stores for each layer of ``model`` (default: the BVLC network).

    Caffe keeps a grouped kernel as (out, in/groups, k, k), output channels of group g in rows
    [g·out/G, (g+1)·out/G) reading input channels [g·in/G, (g+1)·in/G) -- PyTorch's own layout for ``groups=G``,
    so the grouped blobs of conv2/4/5 copy over unchanged.
    """
    model = model if model is not None else bvlc_model()
    return {name: tuple(tuple(p.shape) for p in (m.weight, m.bias) if p is not None)
            for name, m in _weight_layers(model).items()}


def bvlc_model(num_classes: int = 1000) -> AlexNet:
    """The network bvlc_alexnet is: the paper's two towers with Caffe's LRN (k=1, across all channels), §3.3."""
    return AlexNet(num_classes, lrn="caffe", lrn_across_towers=True, init="default")


def _squeezed(shape: tuple[int, ...], ndim: int) -> tuple[int, ...]:
    """A V1 4-D blob shape without the leading 1s that pad it (fc weights are (1, 1, out, in), biases (1, 1, 1, n))."""
    shape = tuple(shape)
    while len(shape) > ndim and shape[0] == 1:
        shape = shape[1:]
    return shape


def _fit(array: np.ndarray, shape: torch.Size, where: str, hint: str = "") -> np.ndarray:
    """The blob reshaped to the model's parameter shape, or a ValueError naming both shapes."""
    array = array.reshape(_squeezed(array.shape, len(shape)))
    if tuple(array.shape) != tuple(shape):
        raise ValueError(f"{where}: the file's blob is {tuple(array.shape)} but the model's is {tuple(shape)}"
                         f"{hint}; build the model to match the file (bvlc_alexnet: bvlc_model())")
    return array


def _sequence(kinds) -> list[str]:
    return [k for k in kinds if k in ("conv", "lrn", "pool", "fc")]


def _check_architecture(net: CaffeModel, model: nn.Module, targets: dict[str, nn.Module], path) -> None:
    """The file's own layer settings must describe the model's computation (stride, pad, groups, LRN, order)."""
    kinds = {"Convolution": "conv", "LRN": "lrn", "Pooling": "pool", "InnerProduct": "fc"}
    file_order = _sequence(kinds.get(layer.type) for layer in net.layers)
    model_order = _sequence("conv" if isinstance(m, nn.Conv2d) else "lrn" if isinstance(m, LocalResponseNorm)
                            else "pool" if isinstance(m, nn.MaxPool2d) else "fc" if isinstance(m, nn.Linear)
                            else None for m in model.modules())
    if "lrn" in file_order or "pool" in file_order:
        if file_order != model_order:
            raise ValueError(f"{path}: the file's layers run {'→'.join(file_order)} but the model's "
                             f"{'→'.join(model_order)} (CaffeNet, for one, pools before LRN); use the model the "
                             f"file was trained as")
    for name, module in targets.items():
        s = net.layer(name).settings
        if isinstance(module, nn.Conv2d) and "stride" in s:
            mine = dict(stride=module.stride[0], pad=module.padding[0], group=module.groups)
            theirs = dict(stride=s["stride"], pad=s["pad"], group=s["group"])
            if mine != theirs:
                raise ValueError(f"{path}: {name} is {theirs} in the file but {mine} in the model")
    file_lrns = [layer for layer in net.layers if layer.type == "LRN" and layer.settings]
    model_lrns = [m for m in model.modules() if isinstance(m, LocalResponseNorm)]
    if file_lrns and len(file_lrns) == len(model_lrns):
        for layer, m in zip(file_lrns, model_lrns):
            s = layer.settings
            # Caffe and torch both compute a / (k + alpha/n · Σ a²)^beta; Caffe's window spans all channels.
            same = (s["local_size"] == m.size and math.isclose(s["alpha"], m.alpha, rel_tol=1e-5)
                    and math.isclose(s["beta"], m.beta, rel_tol=1e-5) and math.isclose(s["k"], m.k, rel_tol=1e-5)
                    and s["across_channels"] and m.towers == 1)
            if not same:
                raise ValueError(f"{path}: {layer.name} is LRN(n={s['local_size']}, alpha={s['alpha']:g}, "
                                 f"beta={s['beta']:g}, k={s['k']:g}, across all channels) but the model's is "
                                 f"{m.extra_repr()}; build it with AlexNet(lrn='caffe', lrn_across_towers=True)")


def load_bvlc(path: str | Path | None = None, model: nn.Module | None = None, *, bgr_to_rgb: bool = True,
              check_architecture: bool = True) -> nn.Module:
    """BVLC's ``bvlc_alexnet.caffemodel`` in our two-tower AlexNet (eval mode): §3.2's groups, Caffe's LRN.

    ``model`` (default ``bvlc_model()``) is filled in place: blob 0 of each Caffe layer conv1…fc8 is the weight,
    blob 1 the bias; conv1's input channels are flipped from Caffe's BGR to RGB, so the model takes RGB
    0-255 minus ``BVLC_MEAN_RGB`` (``bvlc_transform()``).  Blob shapes, the file size and -- where the file
    states them -- strides, pads, groups, LRN constants and layer order are checked against the model.
    """
    path = Path(path) if path is not None else weights_dir() / WEIGHTS["bvlc"].filename
    if not path.is_file():
        raise FileNotFoundError(f"{path}: BVLC AlexNet weights not found. {manual_steps('bvlc')}")
    model = model if model is not None else bvlc_model()
    targets = _weight_layers(model)
    needed = sum(p.numel() for m in targets.values() for p in m.parameters(recurse=False))
    size = path.stat().st_size
    if size < 4 * needed:  # float32 blobs alone take 4 bytes per weight
        raise ValueError(f"{path}: {size:,} bytes, but the model's {needed:,} weights need at least {4 * needed:,}: "
                         f"the file is truncated or is not this network's; download it again "
                         f"(alexnet-book weights fetch bvlc)")
    net = read_caffemodel(path)
    in_file = [layer.name for layer in net.layers if layer.blobs]
    missing = [name for name in targets if net.layer(name) is None or not net.layer(name).blobs]
    extra = [name for name in in_file if name not in targets]
    if missing or extra:
        raise ValueError(f"{path}: the file's weight layers {in_file} do not match the model's {list(targets)} "
                         f"(missing {missing}, extra {extra}); is it an AlexNet caffemodel?")
    if check_architecture:
        _check_architecture(net, model, targets, path)
    with torch.no_grad():
        for name, module in targets.items():
            layer = net.layer(name)
            where = f"{path} {name}"
            weight = layer.blobs[0]
            if isinstance(module, nn.Linear) and layer.settings.get("transpose"):
                weight = _fit(weight, module.weight.shape[::-1], where).T
            hint = (" (Caffe keeps grouped kernels as (out, in/groups, k, k): is the model grouped like the file?)"
                    if isinstance(module, nn.Conv2d) else "")
            weight = _fit(weight, module.weight.shape, where, hint)
            if name == "conv1" and bgr_to_rgb:
                weight = weight[:, ::-1]  # Caffe's channel 0 is blue; ours is red (§2: raw RGB)
            module.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
            if module.bias is not None:
                if len(layer.blobs) > 1:
                    module.bias.copy_(torch.from_numpy(_fit(layer.blobs[1], module.bias.shape, where + " bias").copy()))
                else:
                    module.bias.zero_()
    return model.eval()


class _SubtractMean(nn.Module):
    """x − mean per channel (a picklable transform step)."""

    def __init__(self, mean):
        super().__init__()
        self.mean = tuple(float(m) for m in mean)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() - torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)

    def extra_repr(self) -> str:
        return f"mean={self.mean}"


def bvlc_transform(crop: int = BVLC_CROP, resize: int = BVLC_RESIZE):
    """Caffe's test-time preprocessing for bvlc_alexnet, in RGB: warp to 256×256, centre crop 227, 0-255, − mean."""
    from torchvision.transforms import v2

    return v2.Compose([v2.ToImage(), v2.Resize((resize, resize), antialias=True), v2.CenterCrop(crop),
                       v2.ToDtype(torch.float32, scale=False), _SubtractMean(BVLC_MEAN_RGB)])


# -------------------------------------------------------------------------------------------- one call for notebooks
def _reference(name: str) -> dict:
    row = next((r for r in paper.REPRODUCTIONS if r[0] == name), None)
    return {} if row is None else {"top1_accuracy": round(100 - row[1], 3), "top5_accuracy": round(100 - row[2], 3),
                                   "note": row[3]}


def _from_checkpoint(checkpoint, path: Path) -> tuple[nn.Module, dict]:
    """One of our training checkpoints (runs.save_checkpoint), the network rebuilt from its config."""
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise ValueError(f"{path}: neither torchvision's alexnet state dict nor an alexnet-book checkpoint (no "
                         f"'model' entry); pass a checkpoint.pt written by alexnet-book train")
    state = _state_dict(checkpoint["model"], path)
    config = checkpoint.get("config") if isinstance(checkpoint.get("config"), dict) else {}
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
    _load_strict(model, state, path)
    if config.get("lrn_follows_input_scale") and config.get("input_scale", 1.0) != 1.0:
        scale_lrn_alpha_(model, config["input_scale"])  # as train.build_network did
    classes = checkpoint.get("class_names") or config.get("class_names") or checkpoint.get("classes")
    return model.eval(), {"config": config, "class_names": list(classes) if classes else None}


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
            model, extra = _from_checkpoint(obj, path)
            size = getattr(model, "input_size", None)
            info = dict(source="checkpoint", architecture=type(model).__name__ + str(getattr(model, "options", "")),
                        input_size=size, transform=None, class_names=extra["class_names"], config=extra["config"],
                        preprocessing=dict(space="RGB", scale=255.0, mean="the training set's mean image "
                                           "(load_dataset(...).mean_image)", std=(1.0, 1.0, 1.0), resize=None,
                                           crop=size),
                        reference={})
    info["path"] = str(path)
    return model, info


# ------------------------------------------------------------------------------------------------------------ CLI
def describe(path: str | Path) -> str:
    """What a weights file holds, in words: format, layers and shapes, parameters, checksum."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    lines = [f"{path}  ({path.stat().st_size:,} bytes)"]
    if path.suffix == ".caffemodel" or path.suffix not in (".pth", ".pt"):
        try:
            net = read_caffemodel(path)
        except ValueError:
            if path.suffix == ".caffemodel":
                raise
            net = None
        if net is not None:
            lines.append(f"Caffe model {net.name!r}, {'V1 `layers`' if net.format == 'layers' else '`layer`'} format")
            for layer in net.layers:
                shapes = ", ".join("×".join(map(str, b.shape)) for b in layer.blobs)
                settings = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                    for k, v in layer.settings.items())
                lines.append(f"  {layer.name:<10} {layer.type:<14} {shapes:<28} {settings}")
            lines.append(f"  {net.parameters:,} parameters")
            expected = caffe_blob_shapes()
            found = {layer.name: tuple(_squeezed(b.shape, len(e)) for b, e in zip(layer.blobs, expected.get(layer.name, ())))
                     for layer in net.layers if layer.blobs}
            lines.append("  fits bvlc_model() (AlexNet(lrn='caffe', lrn_across_towers=True)): "
                         + ("yes" if found == expected else "no"))
            spec = WEIGHTS["bvlc"]
            digest = files.digest(path, spec.algorithm)
            lines.append(f"  {spec.algorithm} {digest} ({'the published file' if digest.startswith(spec.digest) else 'not the published ' + spec.filename})")
            return "\n".join(lines)
    obj = load_torch_file(path)
    state = obj.get("model") if isinstance(obj, dict) and isinstance(obj.get("model"), dict) else obj
    if not isinstance(state, dict):
        return "\n".join(lines + [f"  a {type(obj).__name__}, not a state dict"])
    kind = ("torchvision alexnet state dict" if "features.0.weight" in state else
            "alexnet-book checkpoint" if state is not obj else "state dict")
    lines.append(f"PyTorch {kind}")
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            lines.append(f"  {key:<28} {'×'.join(map(str, value.shape))}")
    lines.append(f"  {sum(v.numel() for v in state.values() if isinstance(v, torch.Tensor)):,} parameters")
    spec = WEIGHTS["torchvision"]
    digest = files.digest(path, spec.algorithm)
    lines.append(f"  {spec.algorithm} {digest[:16]}… "
                 f"({'the published file' if digest.startswith(spec.digest) else 'not the published ' + spec.filename})")
    return "\n".join(lines)


def cli_main(argv: list[str]) -> int:
    """``alexnet-book weights``: fetch, inspect and try published AlexNet weights (PAPER.md §6)."""
    import argparse

    parser = argparse.ArgumentParser(prog="alexnet-book weights",
                                     description="Published AlexNet weights: torchvision's and BVLC Caffe's.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("fetch", help="download a weights file (checksummed, resumable)")
    p.add_argument("source", choices=sorted(WEIGHTS), help="bvlc: bvlc_alexnet.caffemodel; torchvision: IMAGENET1K_V1")
    p.add_argument("--dest", default=None, help="folder to save into (default: $ALEXNET_BOOK_WEIGHTS or data/weights)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the server (default 10)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p = sub.add_parser("info", help="what a weights file holds; without PATH, where the published files are")
    p.add_argument("path", nargs="?", default=None, help="a .caffemodel, a torchvision .pth or an alexnet-book checkpoint")
    p = sub.add_parser("predict", help="top-5 ImageNet classes of an image")
    p.add_argument("image", help="an image file")
    p.add_argument("--source", default="torchvision", help="torchvision, bvlc, or a weights file (default torchvision)")
    p.add_argument("--top", type=int, default=5, help="how many classes to list (default 5)")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            path = fetch(args.source, args.dest, timeout=args.timeout, progress=not args.no_progress)
            print(f"{path}: {WEIGHTS[args.source].algorithm} checksum OK")
        elif args.command == "info":
            if args.path is None:
                print(f"weights folder: {weights_dir()}")
                for name in WEIGHTS:
                    found = find_weights(name)
                    print(f"  {name:<12} {found if found else 'not found; `alexnet-book weights fetch ' + name + '`'}")
            else:
                print(describe(args.path))
        elif args.command == "predict":
            image = _open_image(args.image)  # a bad image is named before any weights are looked for
            model, info = load_pretrained(args.source)
            if info["transform"] is None:
                raise ValueError(f"{args.source}: a checkpoint of ours has no ImageNet preprocessing; use "
                                 f"--source torchvision or bvlc")
            for name, prob in predict_top5(model, image, info["transform"], info["class_names"], args.top):
                print(f"{prob:7.2%}  {name}")
    except (FileNotFoundError, ValueError, ConnectionError) as error:
        print(f"alexnet-book weights: {error}", file=sys.stderr)
        return 1
    return 0
