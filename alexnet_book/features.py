"""What a network computes for images: a layer's activity (Fig. 4's features), the activity after every
activation and per-layer statistics (§3.1, §6.1).

Below the figures and the experiments: ``neighbours`` searches the features found here, ``figures`` draws the
feature maps and the statistics.  Pixels are fed the way ``evaluate`` feeds our networks (the centre crop minus
the mean image, times the network's input scale) or through a network's own ``preprocess``.
"""
from __future__ import annotations


def grouped_twin(model):
    """A ``TwoDeviceAlexNet`` as the grouped AlexNet computing the same function (one device: hooks just work)."""
    from .model import AlexNet

    twin = AlexNet(**model.options)
    twin.load_state_dict(model.grouped_state_dict(), strict=False)
    twin.input_scale = getattr(model, "input_scale", 1.0)
    return twin


def layer_output_module(model, layer: str = "fc7"):
    """The module whose output is ``layer``'s activity: for a conv or FC layer, the activation right after it.

    "fc7" in AlexNet is the output of fc7 after its ReLU (dropout is off in eval mode): the 4096-d (512-d in
    the scaled net) "last hidden layer" of Fig. 4.  Names are the network's own ("conv3", "pool5", "fc6");
    torchvision's unnamed classifier is read by position (its Linear layers are fc6, fc7, fc8).
    """
    import re

    from torch import nn

    named = dict(model.named_modules())
    target = next((m for name, m in named.items() if name.rsplit(".", 1)[-1] == layer), None)
    if target is None and re.fullmatch(r"fc\d", layer):
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        first = 6 if len(linears) == 3 else 9 - len(linears)
        if 0 <= int(layer[2]) - first < len(linears):
            target = linears[int(layer[2]) - first]
    if target is None:
        names = [n for n in named if n and not list(named[n].children())]
        raise ValueError(f"{type(model).__name__} has no layer {layer!r}; choose one of {names}")
    if isinstance(target, (nn.Conv2d, nn.Linear)):
        for parent in model.modules():
            children = list(parent.children())
            if any(c is target for c in children):
                i = next(j for j, c in enumerate(children) if c is target)
                if i + 1 < len(children) and isinstance(children[i + 1], (nn.ReLU, nn.Tanh)):
                    return children[i + 1]
    return target


def input_batches(images, mean_image, crop, batch_size: int, device, preprocess=None, scale: float = 1.0):
    """Yield network-ready float batches (N, 3, crop, crop) from uint8 NHWC pixels or float NCHW tensors.

    uint8 pixels go through ``preprocess`` when given (e.g. ``FigureNetwork.preprocess``), else the centre
    crop minus ``mean_image`` (§2) times ``scale`` (a network's ``input_scale``), the way ``evaluate`` feeds
    our networks.  Float tensors are taken to be network inputs already.
    """
    import torch

    images = getattr(images, "images", images)
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        if batch.dtype == torch.uint8:
            if preprocess is not None:
                yield preprocess(batch).to(device=device, dtype=torch.float32)
                continue
            if mean_image is None or crop is None:
                raise ValueError("uint8 images need mean_image and crop (from load_dataset's DataSplits) "
                                 "or a preprocess function")
            from .augment import centre_batch
            x = centre_batch(batch, mean_image, crop, device=device)
            yield x * scale if scale != 1.0 else x
        else:
            yield batch.to(device=device, dtype=torch.float32)


def hidden_features(model, images, layer: str = "fc7", *, mean_image=None, crop=None, preprocess=None,
                    batch_size: int = 256, device=None):
    """The activity of ``layer`` for every image, flattened to (N, D) (§6.1); "pixels" gives the input itself.

    ``images``: uint8 NHWC pixels (an ``ImageArrays`` or its ``.images``; then pass ``mean_image`` and ``crop``)
    or float NCHW network inputs.  The network runs in eval mode (no dropout) without gradients.
    """
    import torch

    return torch.cat(list(feature_batches(model, images, layer, mean_image, crop, batch_size, device, preprocess)))


def feature_batches(model, images, layer, mean_image, crop, batch_size, device, preprocess=None):
    import torch

    if hasattr(model, "grouped_state_dict"):
        model = grouped_twin(model)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    module = None if layer == "pixels" else layer_output_module(model, layer)
    captured = []
    hook = module.register_forward_hook(lambda m, i, o: captured.append(o.detach().flatten(1).clone())) \
        if module is not None else None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for x in input_batches(images, mean_image, crop, batch_size, device, preprocess,
                                       getattr(model, "input_scale", 1.0)):
                if module is None:
                    yield x.flatten(1).float()
                    continue
                model(x)
                yield captured.pop().float()
    finally:
        if hook is not None:
            hook.remove()
        model.train(was_training)


def weight_layers(model):
    """(name, module) of every conv and FC layer in order, in the paper's names (torchvision's are numbered)."""
    from torch import nn

    out, convs, fcs = [], 0, 0
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            convs, fcs = convs + isinstance(module, nn.Conv2d), fcs + isinstance(module, nn.Linear)
            own = name.rsplit(".", 1)[-1]
            out.append((own if not own.isdigit() else
                        f"conv{convs}" if isinstance(module, nn.Conv2d) else f"fc{convs + fcs}", module))
    return out


def activation_modules(model):
    """(layer name, activation module) for every conv/FC layer followed by a ReLU or tanh."""
    from torch import nn

    follows = {}
    for parent in model.modules():
        children = list(parent.children())
        for a, b in zip(children, children[1:]):
            if isinstance(b, (nn.ReLU, nn.Tanh)):
                follows[id(a)] = b
    return [(name, follows[id(m)]) for name, m in weight_layers(model) if id(m) in follows]


def layer_statistics(model, images=None, *, mean_image=None, crop=None, preprocess=None, batch_size: int = 128):
    """Per layer: weight statistics, and with ``images`` the activity after each ReLU/tanh (§3.1, §5).

    Columns: layer, parameters, weight_mean, weight_std, bias_mean, and with images act_mean, act_std,
    zero_fraction (ReLU units exactly 0: the sparsity §3.1 relies on) and saturated_fraction (|tanh| > 0.99:
    where a saturating unit's gradient vanishes).  Weight statistics are those of the conv/linear layer the
    activation follows.
    """
    import pandas as pd
    import torch
    from torch import nn

    if hasattr(model, "grouped_state_dict"):
        model = grouped_twin(model)
    rows = []
    for name, layer in weight_layers(model):
        w = layer.weight.detach().float()
        rows.append(dict(layer=name, parameters=sum(p.numel() for p in layer.parameters()),
                         weight_mean=w.mean().item(), weight_std=w.std().item(),
                         bias_mean=layer.bias.detach().float().mean().item() if layer.bias is not None else 0.0))
    acts = activation_modules(model)
    table = pd.DataFrame(rows)
    if images is None:
        return table
    sums = {n: torch.zeros(4, dtype=torch.float64) for n, _ in acts}  # Σx, Σx², #zero, #saturated; counts below
    counts = dict.fromkeys(sums, 0)

    def record(name, is_tanh):
        def hook(mod, inputs, output):
            o = output.detach().double()
            sums[name] += torch.stack([o.sum(), (o * o).sum(), (o == 0).sum().double(),
                                       (o.abs() > 0.99).sum().double() if is_tanh else o.new_tensor(0.0)])
            counts[name] += o.numel()
        return hook

    hooks = [m.register_forward_hook(record(n, isinstance(m, nn.Tanh))) for n, m in acts]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            for x in input_batches(images, mean_image, crop, batch_size, device, preprocess,
                                       getattr(model, "input_scale", 1.0)):
                model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    stats = []
    for n, _ in acts:
        s, count = sums[n], max(counts[n], 1)
        mean = (s[0] / count).item()
        stats.append(dict(layer=n, act_mean=mean, act_std=max((s[1] / count).item() - mean ** 2, 0.0) ** 0.5,
                          zero_fraction=(s[2] / count).item(), saturated_fraction=(s[3] / count).item()))
    return table.merge(pd.DataFrame(stats), on="layer", how="left")
