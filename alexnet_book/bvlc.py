"""BVLC Caffe's ``bvlc_alexnet`` (PAPER.md §6): the 2012 architecture read without Caffe into our two-tower AlexNet.

``bvlc_alexnet.caffemodel`` has groups 2 in conv2/4/5, LRN and 227 crops; it is parsed as protobuf
(``caffe_proto``: nothing executed) into ``AlexNet(lrn="caffe", lrn_across_towers=True)``.  Caffe's input is BGR,
0-255, minus a mean; conv1 is flipped here to RGB, so our input is RGB 0-255 minus ``BVLC_MEAN_RGB``.  Where the
file lives and how it is fetched: :mod:`alexnet_book.weights`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import caffe_proto
from .layers import LocalResponseNorm
from .model import AlexNet
from .weights import WEIGHTS, manual_steps, weights_dir

# §6 of PAPER.md: Caffe's 227 crop from 256×256 images; its mean is ilsvrc_2012_mean.binaryproto averaged over
# pixels (the values Caffe's own classification example uses), in Caffe's BGR order.
BVLC_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)
BVLC_MEAN_RGB = BVLC_MEAN_BGR[::-1]
BVLC_RESIZE, BVLC_CROP = 256, 227

LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")


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
