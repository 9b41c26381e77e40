"""The network (§3.2, §3.5, Fig. 2) and its variants; ``report`` tabulates and draws them (per-layer summary).

``AlexNet()`` is the paper's two-GPU network held in one tensor per layer: ``groups=2`` in conv2, conv4
and conv5 (the layers whose kernels see only their own GPU's maps), conv3 and the FC layers crossing
towers, ReLU → per-tower LRN → overlapping max-pool after conv1 and conv2, a pool after conv5, dropout 0.5
on the outputs of fc6 and fc7, and the paper's initialisation.

Input size.  The paper prints 224×224×3, but (224−11)/4+1 is not an integer.  This network follows
cuda-convnet's rule: the image is padded on the right and bottom with just enough zeros for the stride to
fit (``CeilPad``), so a 224 input reads 3 implicit zero columns and rows, and a 227 input (Caffe's crop) is
used as it is.  Either way conv1's maps are 55×55 and pool5's are 6×6.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import paper
from .layers import LRN_CONVENTIONS, LocalResponseNorm


@dataclass(frozen=True)
class ConvSpec:
    name: str
    out: int
    kernel: int
    stride: int
    pad: int
    groups: int  # 2 = each tower sees only its own maps; 1 = crosses towers
    lrn: bool  # followed by LRN
    pool: bool  # followed by a max-pool


# §3.5: the five conv layers of the 224 network.
FULL_CONVS = (
    ConvSpec("conv1", 96, 11, 4, 0, 1, True, True),
    ConvSpec("conv2", 256, 5, 1, 2, 2, True, True),
    ConvSpec("conv3", 384, 3, 1, 1, 1, False, False),
    ConvSpec("conv4", 384, 3, 1, 1, 2, False, False),
    ConvSpec("conv5", 256, 3, 1, 1, 2, False, True),
)
FULL_FC = 4096

# The scaled network for 32×32 CIFAR-10 images (the CPU track).  Same topology as the paper's -- five conv
# layers with the same tower pattern, LRN after conv1 and conv2, overlapping 3/2 pools after conv1, conv2
# and conv5, three FC layers with dropout on fc6 and fc7 -- with sizes scaled to 32 px: conv1 is 5×5 stride 1
# (an 11×11/4 kernel on 32 px would leave 6×6 maps), widths are a third of the paper's, and the FC layers
# have 512 units.  Maps: 32 → pool 15 → conv2 15 → pool 7 → conv3-5 7 → pool 3, so fc6 sees 3·3·channels.
SCALED_CONVS = (
    ConvSpec("conv1", 32, 5, 1, 2, 1, True, True),
    ConvSpec("conv2", 64, 5, 1, 2, 2, True, True),
    ConvSpec("conv3", 128, 3, 1, 1, 1, False, False),
    ConvSpec("conv4", 128, 3, 1, 1, 2, False, False),
    ConvSpec("conv5", 96, 3, 1, 1, 2, False, True),
)
SCALED_FC = 512
SCALES = {"full": (FULL_CONVS, FULL_FC, 224), "scaled": (SCALED_CONVS, SCALED_FC, 32)}

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}
POOLS = {"overlapping": (paper.POOL["kernel"], paper.POOL["stride"]),
         "non-overlapping": (paper.NON_OVERLAPPING_POOL["kernel"], paper.NON_OVERLAPPING_POOL["stride"])}


class CeilPad(nn.Module):
    """Zero-pad right and bottom so that a ``kernel``/``stride`` convolution covers the image (cuda-convnet's rule)."""

    def __init__(self, kernel: int, stride: int):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def extra_pixels(self, size: int) -> int:
        return (-(size - self.kernel)) % self.stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ph, pw = self.extra_pixels(x.shape[-2]), self.extra_pixels(x.shape[-1])
        return F.pad(x, (0, pw, 0, ph)) if ph or pw else x


def layer_specs(scale: str = "full", towers: int = 2, remove: str | None = None,
                conv1_out: int | None = None) -> tuple[ConvSpec, ...]:
    """The conv layers of one variant.

    ``towers=1`` is the §3.2 footnote's one-GPU net: half the kernels in conv1–conv4, conv5 at full size,
    no groups.  ``remove`` drops one middle conv layer ("conv3" or "conv4", §7); the next layer takes its input.
    ``conv1_out``: conv1's kernel count in the two-tower net (e.g. 96, the paper's 48 per GPU, on the scaled
    net whose conv1 has 32), halved with the rest for ``towers=1``.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose 'full' or 'scaled'")
    if towers not in (1, 2):
        raise ValueError(f"towers must be 1 or 2, not {towers!r}")
    if remove not in (None, "conv3", "conv4"):
        raise ValueError(f"remove must be None, 'conv3' or 'conv4', not {remove!r}")
    if conv1_out is not None and not (isinstance(conv1_out, int) and conv1_out > 0 and conv1_out % 2 == 0):
        raise ValueError(f"conv1_out must be an even positive number of kernels (two towers), not {conv1_out!r}")
    specs = []
    for s in SCALES[scale][0]:
        if s.name == remove:
            continue
        if s.name == "conv1" and conv1_out is not None:
            s = ConvSpec(s.name, conv1_out, s.kernel, s.stride, s.pad, s.groups, s.lrn, s.pool)
        if towers == 1:
            s = ConvSpec(s.name, s.out if s.name == "conv5" else s.out // 2, s.kernel, s.stride, s.pad, 1, s.lrn, s.pool)
        specs.append(s)
    return tuple(specs)


def paper_init_(model: nn.Module, std: float = paper.RECIPE["init_std"],
                bias_one: tuple[str, ...] = paper.RECIPE["bias_one_layers"], bias_value: float = 1.0) -> None:
    """§5: weights from N(0, 0.01); biases 1 in conv2, conv4, conv5, fc6, fc7 and 0 elsewhere."""
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(module.weight, 0.0, std)
            layer = name.rsplit(".", 1)[-1]
            nn.init.constant_(module.bias, bias_value if layer.split("_")[0] in bias_one else 0.0)


class AlexNet(nn.Module):
    """The paper's network (§3.2, §3.5, Fig. 2) and its ablation variants.

    Options (all combinable):
      scale       "full" (224/227 px, the paper's sizes) or "scaled" (32 px, the CPU track; see SCALED_CONVS)
      towers      2 (the two-GPU net, grouped) or 1 (the §3.2 footnote's one-GPU net)
      activation  "relu" (§3.1) or "tanh"
      lrn         "authors" | "printed" | "caffe" (the three conventions of §3.3) or None for no LRN
      lrn_beta    0.75 (paper) or 1.5 (the seed text's erratum)
      lrn_across_towers  False (cuda-convnet: each tower normalised on its own) or True (Caffe: all channels)
      pool        "overlapping" (z=3, s=2, §3.4) or "non-overlapping" (z=2, s=2)
      pool_rounding  "floor" (PyTorch's default) or "ceil": the overlapping pool rounds up as cuda-convnet's does
                  (the last window may hang over the edge) and the non-overlapping variant rounds down, which
                  gives both the same map sizes at every input size (32 → 16 → 8 → 4 in the scaled net, 55 → 27
                  → 13 → 6 in the full one), so §3.4's comparison is like for like ("output of equivalent
                  dimensions").  With "floor" sizes match only for odd inputs: the scaled net's first map is then
                  15 (overlapping) vs 16 (non-overlapping), and fc6 sees 1,536 inputs instead of 864
      dropout     probability on the outputs of fc6 and fc7 (§4.2); 0 for none
      remove      None, "conv3" or "conv4" (§7: removing a middle conv layer)
      init        "paper" (§5) or "default" (PyTorch's)
      devices     None, or two torch devices: the towers are then placed on them as in 2012 (TwoDeviceAlexNet)
    """

    def __new__(cls, *args, devices=None, **kwargs):
        if devices is not None and cls is AlexNet:
            return TwoDeviceAlexNet(*args, devices=devices, **kwargs)
        return super().__new__(cls)

    def __init__(self, num_classes: int = 1000, *, scale: str = "full", towers: int = 2, activation: str = "relu",
                 lrn: str | None = "authors", lrn_beta: float = paper.LRN["beta"], lrn_across_towers: bool = False,
                 pool: str = "overlapping", dropout: float = paper.DROPOUT, remove: str | None = None,
                 init: str = "paper", pool_rounding: str = "floor", conv1_out: int | None = None, devices=None):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        if pool not in POOLS:
            raise ValueError(f"unknown pool {pool!r}; choose one of {sorted(POOLS)}")
        if init not in ("paper", "default"):
            raise ValueError(f"unknown init {init!r}; choose 'paper' or 'default'")
        if pool_rounding not in ("floor", "ceil"):
            raise ValueError(f"unknown pool_rounding {pool_rounding!r}; choose 'floor' (PyTorch) or 'ceil' (cuda-convnet)")
        if lrn is not None and lrn not in LRN_CONVENTIONS:
            raise ValueError(f"unknown lrn {lrn!r}; choose one of {LRN_CONVENTIONS} or None for no LRN")
        if not lrn_beta > 0:
            raise ValueError(f"lrn_beta must be positive (paper 0.75, seed text 1.5), not {lrn_beta!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout is a probability in [0, 1) (paper 0.5, 0 for none), not {dropout!r}")
        if not (isinstance(num_classes, int) and num_classes > 0):
            raise ValueError(f"num_classes must be a positive integer, not {num_classes!r}")
        self.options = dict(num_classes=num_classes, scale=scale, towers=towers, activation=activation, lrn=lrn,
                            lrn_beta=lrn_beta, lrn_across_towers=lrn_across_towers, pool=pool, dropout=dropout,
                            remove=remove, init=init)
        if pool_rounding != "floor":  # recorded only when set, so the options of existing runs read as before
            self.options["pool_rounding"] = pool_rounding
        if conv1_out is not None:
            self.options["conv1_out"] = conv1_out
        specs = layer_specs(scale, towers, remove, conv1_out)
        self.specs = specs
        self.towers = towers
        self.input_size = SCALES[scale][2]
        kernel, stride = POOLS[pool]
        fc = SCALES[scale][1]
        # z=3, s=2 rounded up gives floor(n/2) maps from n -- exactly what z=2, s=2 rounded down gives -- so with
        # "ceil" the overlapping pool rounds up and the non-overlapping one down: the same sizes at every n
        ceil_mode = pool_rounding == "ceil" and pool == "overlapping"

        layers: list[tuple[str, nn.Module]] = [("pad", CeilPad(specs[0].kernel, specs[0].stride))]
        channels = 3
        for i, s in enumerate(specs, start=1):
            n = s.name[-1]
            layers.append((s.name, nn.Conv2d(channels, s.out, s.kernel, s.stride, s.pad, groups=s.groups)))
            layers.append((f"{activation}{n}", ACTIVATIONS[activation]()))
            if s.lrn and lrn is not None:
                layers.append((f"lrn{n}", LocalResponseNorm(beta=lrn_beta, convention=lrn,
                                                            towers=1 if lrn_across_towers else towers)))
            if s.pool:
                layers.append((f"pool{n}", nn.MaxPool2d(kernel, stride, ceil_mode=ceil_mode)))
            channels = s.out
        self.features = nn.Sequential(OrderedDict(layers))

        side = self.feature_size(self.input_size)
        self.classifier = nn.Sequential(OrderedDict([
            ("fc6", nn.Linear(channels * side * side, fc)),
            (f"{activation}6", ACTIVATIONS[activation]()),
            ("dropout6", nn.Dropout(dropout)),
            ("fc7", nn.Linear(fc, fc)),
            (f"{activation}7", ACTIVATIONS[activation]()),
            ("dropout7", nn.Dropout(dropout)),
            ("fc8", nn.Linear(fc, num_classes)),
        ]))
        if init == "paper":
            paper_init_(self)

    def feature_size(self, size: int) -> int:
        """Side of the last pool's maps for a ``size``×``size`` input."""
        with torch.no_grad():
            return self.features(torch.zeros(1, 3, size, size)).shape[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.classifier(torch.flatten(x, 1))


class TwoDeviceAlexNet(nn.Module):
    """The two-tower network with each tower's kernels on its own device, as trained in 2012 (§3.2).

    Activations move between devices only where the paper's network communicates: the image goes to both,
    conv3 and each FC layer read both towers' outputs.  fc6 and fc7 are split by output neurons between
    the devices (2048 + 2048); fc8 lives on the first device, where the logits land.  The weights are the
    grouped network's, sliced by output channel: ``load_grouped_state_dict`` and ``grouped_state_dict``
    convert, so a grouped ``AlexNet`` and this one compute the same function.
    """

    def __init__(self, num_classes: int = 1000, *, devices, **options):
        super().__init__()
        if len(devices) != 2:
            raise ValueError(f"devices must name two torch devices, got {devices!r}")
        if options.get("towers", 2) != 2:
            raise ValueError("devices=... places two towers; it cannot be combined with towers=1")
        self.devices = tuple(torch.device(d) for d in devices)
        # Build the grouped reference to read sizes and hyper-parameters from, then split it.
        grouped = AlexNet(num_classes, **options)
        self.options, self.specs, self.input_size = grouped.options, grouped.specs, grouped.input_size
        self.pad = grouped.features.pad
        self.act = grouped.features[2]
        self.lrn = next((m for m in grouped.features if isinstance(m, LocalResponseNorm)), None)
        if self.lrn is not None:
            self.lrn = LocalResponseNorm(beta=self.lrn.beta, convention=self.lrn.convention, towers=1)
        self.lrn_across_towers = grouped.options["lrn_across_towers"]
        if self.lrn_across_towers:
            raise ValueError("LRN across towers needs both towers' maps; place towers on one device instead")
        self.pool = next(m for m in grouped.features if isinstance(m, nn.MaxPool2d))
        self.dropout = grouped.options["dropout"]
        self.tower = nn.ModuleList()
        for t, device in enumerate(self.devices):
            layers = nn.ModuleDict()
            for s in self.specs:
                conv = getattr(grouped.features, s.name)
                in_ch = conv.in_channels if s.groups == 1 else conv.in_channels // 2
                layers[s.name] = nn.Conv2d(in_ch, s.out // 2, s.kernel, s.stride, s.pad)
            for name in ("fc6", "fc7"):
                lin = getattr(grouped.classifier, name)
                layers[name] = nn.Linear(lin.in_features, lin.out_features // 2)
            self.tower.append(layers.to(device))
        self.fc8 = nn.Linear(grouped.classifier.fc8.in_features, num_classes).to(self.devices[0])
        self.load_grouped_state_dict(grouped.state_dict())

    def load_grouped_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Copy a grouped AlexNet's weights in, tower t taking output channels [t·C/2, (t+1)·C/2)."""
        with torch.no_grad():
            for t, layers in enumerate(self.tower):
                for name, module in layers.items():
                    prefix = "features" if name.startswith("conv") else "classifier"
                    for p in ("weight", "bias"):
                        full = state[f"{prefix}.{name}.{p}"]
                        half = full.shape[0] // 2
                        getattr(module, p).copy_(full[t * half:(t + 1) * half])
            self.fc8.weight.copy_(state["classifier.fc8.weight"])
            self.fc8.bias.copy_(state["classifier.fc8.bias"])

    def grouped_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights as a grouped AlexNet's state dict (on the CPU)."""
        state = {}
        for name in self.tower[0]:
            prefix = "features" if name.startswith("conv") else "classifier"
            for p in ("weight", "bias"):
                state[f"{prefix}.{name}.{p}"] = torch.cat([getattr(layers[name], p).detach().cpu()
                                                           for layers in self.tower])
        state["classifier.fc8.weight"] = self.fc8.weight.detach().cpu()
        state["classifier.fc8.bias"] = self.fc8.bias.detach().cpu()
        return state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pad(x)
        h = [x.to(d) for d in self.devices]  # the image goes to both GPUs
        for s in self.specs:
            if s.groups == 1 and s.name != self.specs[0].name:  # a cross-tower layer reads both towers
                h = [torch.cat([h[0].to(d), h[1].to(d)], 1) for d in self.devices]
            h = [self.act(layers[s.name](ht)) for layers, ht in zip(self.tower, h)]
            if s.lrn and self.lrn is not None:
                h = [self.lrn(ht) for ht in h]
            if s.pool:
                h = [self.pool(ht) for ht in h]
        # pool5 flattened channel-major, tower 1's channels first: the grouped net's order.
        h = [torch.cat([h[0].to(d), h[1].to(d)], 1).flatten(1) for d in self.devices]
        for name in ("fc6", "fc7"):
            h = [F.dropout(self.act(layers[name](ht)), self.dropout, self.training) for layers, ht in zip(self.tower, h)]
            if name == "fc6":
                h = [torch.cat([h[0].to(d), h[1].to(d)], 1) for d in self.devices]
        return self.fc8(torch.cat([h[0].to(self.devices[0]), h[1].to(self.devices[0])], 1))


class TorchvisionAlexNet(nn.Module):
    """torchvision's ``alexnet``: Krizhevsky's 2014 "one weird trick" single tower (PAPER.md §6).

    64-192-384-256-256 channels, pad 2 in conv1, no LRN, no groups, an adaptive 6×6 average pool and dropout
    *before* fc6 and fc7.  Laid out index for index like ``torchvision.models.alexnet`` so its state dict loads.
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.input_size = 224
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


# cuda-convnet's CIFAR-10 example nets, the code the paper points to (example-layers/layers-18pct.cfg and
# layers-80sec.cfg with their layer-params files): per layer the pooling after it and the std of its Gaussian
# initial weights (initW; biases start at 0, cuda-convnet's default initB).  "18pct" is four weight layers
# (three conv, one fc) as Fig. 1's caption says; "80sec" has a fifth (fc64 with the activation).  Learning rates
# there: epsW 0.001 for every layer, epsB 2× (``TrainConfig.bias_like_authors``).  The response normalisation of
# layers-18pct (after pool1 and pool2) is left out: Fig. 1 used "no regularization of any kind".
FOURLAYER_LAYOUTS = {
    "book": {"pools": ("max", "max", "max"), "init_std": None, "hidden": None},
    "18pct": {"pools": ("max", "avg", "avg"), "init_std": (1e-4, 0.01, 0.01, 0.01), "hidden": None},
    "80sec": {"pools": ("max", "avg", "avg"), "init_std": (1e-4, 0.01, 0.01, 0.1, 0.1), "hidden": 64},
}


class FourLayerNet(nn.Module):
    """The four-layer CIFAR-10 network of Fig. 1 (§3.1) and of the LRN claim (§3.3: 13% → 11% test error).

    Three 5×5 conv layers (32, 32, 64 maps, each followed by the activation and a 3/2 pool) and one
    fully-connected layer, after cuda-convnet's CIFAR-10 examples.  ``activation`` "relu" or "tanh";
    ``lrn`` adds response normalisation after the first two pools (cuda-convnet's 18% net).
    ``layout`` (``FOURLAYER_LAYOUTS``): "book" pools by max after every conv layer; "18pct" and "80sec" are
    the authors' example nets -- max pooling after conv1, average pooling after conv2 and conv3 (cuda-convnet's
    average counts only the window's pixels inside the map, as PyTorch's does), and "80sec" adds a 64-unit
    hidden layer.  ``init`` "paper": "book" draws every weight from N(0, ``std``) with zero biases; the authors'
    layouts use their files' per-layer stds (conv1 1e-4, then 0.01, ...) and zero biases; "default" keeps
    PyTorch's.  Pools round up (cuda-convnet's outputsX=0): 32 → 16 → 8 → 4.
    """

    def __init__(self, num_classes: int = 10, *, activation: str = "relu", lrn: str | None = None,
                 init: str = "paper", std: float = paper.RECIPE["init_std"], layout: str = "book"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        if layout not in FOURLAYER_LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; choose one of {sorted(FOURLAYER_LAYOUTS)}")
        if init not in ("paper", "default"):
            raise ValueError(f"unknown init {init!r}; choose 'paper' or 'default'")
        spec = FOURLAYER_LAYOUTS[layout]
        self.input_size, self.layout = 32, layout
        layers: list[tuple[str, nn.Module]] = []
        channels = 3
        for i, (out, pool) in enumerate(zip((32, 32, 64), spec["pools"]), start=1):
            # the activation before the pool: for max pooling the order is immaterial (both are monotone), for
            # average pooling it is cuda-convnet's (the conv layer's neuron, then the pool)
            layers += [(f"conv{i}", nn.Conv2d(channels, out, 5, padding=2)),
                       (f"{activation}{i}", ACTIVATIONS[activation]()),
                       (f"pool{i}", nn.MaxPool2d(3, 2, ceil_mode=True) if pool == "max"
                        else nn.AvgPool2d(3, 2, ceil_mode=True))]
            if lrn is not None and i < 3:
                layers.append((f"lrn{i}", LocalResponseNorm(3, convention=lrn)))
            channels = out
        self.features = nn.Sequential(OrderedDict(layers))
        head: list[tuple[str, nn.Module]] = []
        if spec["hidden"]:
            head += [("fc4", nn.Linear(64 * 4 * 4, spec["hidden"])), (f"{activation}4", ACTIVATIONS[activation]()),
                     ("fc5", nn.Linear(spec["hidden"], num_classes))]
        else:
            head.append(("fc4", nn.Linear(64 * 4 * 4, num_classes)))
        self.classifier = nn.Sequential(OrderedDict(head))
        if init == "paper":
            weighted = [m for m in self.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
            stds = spec["init_std"] or (std,) * len(weighted)
            for m, s in zip(weighted, stds, strict=True):
                nn.init.normal_(m.weight, 0.0, s)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


MODELS = ("alexnet", "torchvision", "fourlayer")
# The reader's own networks, by name (``register_model``): trained, stored and ablated like the book's.
REGISTERED: dict[str, "callable"] = {}


def register_model(name: str, builder) -> None:
    """Make ``builder`` a network ``TrainConfig(model=name)`` can train, like the book's own.

    ``builder(num_classes=..., **model_options)`` returns an ``nn.Module`` with the book's input contract: a batch
    (N, 3, S, S) of mean-subtracted pixels (×``input_scale``), S = 32 on the scaled track and 224 on the full one,
    and (N, num_classes) logits out; it is also given ``scale`` when its signature has that parameter.  The name
    is part of a run's hash, so give a changed builder a new name.
    """
    if name in MODELS:
        raise ValueError(f"{name!r} is one of the book's networks; register yours under another name")
    if not callable(builder):
        raise TypeError(f"register_model({name!r}, ...): the builder must be callable, not {type(builder).__name__}")
    REGISTERED[name] = builder


def build_model(name: str = "alexnet", **options) -> nn.Module:
    """A network by name: "alexnet" (the paper's, any options), "torchvision" (one weird trick), "fourlayer"
    (Fig. 1), or one registered with ``register_model``."""
    if name in REGISTERED:
        import inspect

        builder = REGISTERED[name]
        accepts = inspect.signature(builder).parameters
        if "scale" not in accepts and not any(p.kind is p.VAR_KEYWORD for p in accepts.values()):
            options = {k: v for k, v in options.items() if k != "scale"}
        model = builder(**options)
        if not isinstance(model, nn.Module):
            raise TypeError(f"the builder registered as {name!r} returned {type(model).__name__}, not an nn.Module")
        return model
    if name == "alexnet":
        return AlexNet(**options)
    if name == "torchvision":
        return TorchvisionAlexNet(**{k: v for k, v in options.items() if k in ("num_classes", "dropout")})
    if name == "fourlayer":
        return FourLayerNet(**{k: v for k, v in options.items() if k in ("num_classes", "activation", "lrn", "init",
                                                                    "layout")})
    raise ValueError(f"unknown model {name!r}; choose one of {MODELS + tuple(REGISTERED)} "
                     f"(or register your own with alexnet_book.model.register_model)")
