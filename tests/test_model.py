"""The assembled network is the paper's (§3.2, §3.5, Fig. 2, §5): sizes, counts, towers, init, variants."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from alexnet_book import cli, paper
from alexnet_book.layers import LocalResponseNorm
from alexnet_book.model import AlexNet, CeilPad, TorchvisionAlexNet, TwoDeviceAlexNet, build_model, layer_specs
from alexnet_book.report import (count_parameters, describe, input_size_rules, paper_comparison, summary,
                                 weighted_layers)

torch.set_num_threads(1)
SCALED = dict(scale="scaled", num_classes=10)


@pytest.fixture(scope="module")
def net() -> AlexNet:
    torch.manual_seed(0)
    return AlexNet().eval()


@pytest.fixture(scope="module")
def table(net):
    return summary(net)


def layer(model: AlexNet, name: str) -> nn.Module:
    return getattr(model.features if name.startswith("conv") else model.classifier, name)


# ---------------------------------------------------------------- counts (§3.5)

def test_parameters_match_the_paper_layer_by_layer(net):
    assert count_parameters(net) == paper.TOTAL_PARAMETERS == 60_965_224
    for name, expected in paper.PARAMETERS.items():
        assert sum(p.numel() for p in layer(net, name).parameters()) == expected, name


def test_one_gpu_net_is_the_footnote_net():
    one = AlexNet(towers=1)
    assert count_parameters(one) == paper.ONE_TOWER_PARAMETERS == 59_798_312
    convs = [m for m in one.features if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == [48, 128, 192, 192, 256]  # half the kernels, conv5 full (§3.2)
    assert all(m.groups == 1 for m in convs)
    assert [m.out_features for m in one.classifier if isinstance(m, nn.Linear)] == [4096, 4096, 1000]


def test_macs_match_the_paper(table):
    rows = weighted_layers(table).set_index("paper_layer")
    for name, mmac in paper.MMAC.items():
        assert round(rows.loc[name, "macs"] / 1e6, 1) == mmac, name
    assert abs(table["macs"].sum() / 1e9 - paper.TOTAL_GMAC) < 5e-4


def test_paper_comparison_and_the_fig2_erratum(net):
    df = paper_comparison(net).set_index("layer")
    assert df["parameters_match"].all() and df["mmac_match"].all()
    assert df.loc["conv1", "neurons"] == 55 * 55 * 96 == 290_400
    assert df.loc["conv1", "neurons_fig2"] == 253_440 and not df.loc["conv1", "neurons_match"]
    assert df["neurons_match"].drop("conv1").all()  # every other Fig. 2 count is right
    assert math.isqrt(253_440 // 96) ** 2 != 253_440 / 96  # 253,440 is not s·s·96 for any map side s


# ---------------------------------------------------------------- shapes, order, groups

@pytest.mark.parametrize("size", [224, 227])
def test_224_and_227_both_give_55_and_6(net, size):
    rows = summary(net, size).set_index("layer")
    assert rows.loc["pad", "output"] == (3, 227, 227)  # the ceil rule pads 224 to 227 and leaves 227 alone
    assert rows.loc["conv1", "output"] == (96, 55, 55)
    assert rows.loc["pool5", "output"] == (256, 6, 6)
    with torch.no_grad():
        assert net(torch.randn(2, 3, size, size)).shape == (2, 1000)


def test_ceil_rule_adds_zeros_right_and_bottom_only():
    pad = CeilPad(11, 4)
    assert [pad.extra_pixels(s) for s in (224, 227, 225)] == [3, 0, 2]
    x = torch.ones(1, 3, 224, 224)
    y = pad(x)
    assert y.shape[-2:] == (227, 227)
    assert torch.equal(y[..., :224, :224], x) and y[..., 224:, :].abs().sum() == 0 and y[..., :, 224:].abs().sum() == 0


def test_input_size_rules_arithmetic():
    rules = input_size_rules()
    assert list(rules["conv1_side"]) == [54, 55, 55, 55]
    assert list(rules["exact"]) == [54.25, 55.0, 55.0, 55.25]  # 224 with no padding is not an integer


def test_module_order_groups_and_dropout(net):
    assert list(net.features._modules) == [
        "pad", "conv1", "relu1", "lrn1", "pool1", "conv2", "relu2", "lrn2", "pool2",
        "conv3", "relu3", "conv4", "relu4", "conv5", "relu5", "pool5"]  # conv → ReLU → LRN → pool (§3.3)
    assert list(net.classifier._modules) == ["fc6", "relu6", "dropout6", "fc7", "relu7", "dropout7", "fc8"]
    assert {n: layer(net, n).groups for n in ("conv1", "conv2", "conv3", "conv4", "conv5")} == \
        {"conv1": 1, "conv2": 2, "conv3": 1, "conv4": 2, "conv5": 2}
    assert net.classifier.dropout6.p == net.classifier.dropout7.p == 0.5
    pools = [m for m in net.features if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride) for p in pools] == [(3, 2)] * 3  # overlapping (§3.4)
    assert net.features.lrn1.towers == net.features.lrn2.towers == 2


def test_paper_init(net):
    for name in paper.PARAMETERS:
        mod = layer(net, name)
        w = mod.weight.detach()
        assert abs(w.std().item() - 0.01) < 0.0005, name
        assert abs(w.mean().item()) < 4 * 0.01 / math.sqrt(w.numel()) + 1e-6, name
        expected = 1.0 if name in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0
        assert torch.equal(mod.bias.detach(), torch.full_like(mod.bias, expected)), name


# ---------------------------------------------------------------- towers (§3.2)

@pytest.mark.parametrize("name, channels", [("lrn1", 96), ("lrn2", 256)])
def test_lrn_window_never_crosses_towers(net, name, channels):
    lrn = getattr(net.features, name)
    half = channels // 2
    torch.manual_seed(1)
    base = torch.rand(1, channels, 3, 3) + 0.5
    changed = base.repeat(half, 1, 1, 1)
    changed[torch.arange(half), torch.arange(half)] += 50.0  # sample i changes tower-1 channel i only
    out, ref = lrn(changed), lrn(base)
    assert torch.equal(out[:, half:], ref.expand(half, -1, -1, -1)[:, half:])  # tower 2 never moves
    assert not torch.equal(out[half - 2, half - 1], ref[0, half - 1])  # the window is live inside tower 1
    # Control: the same change through an LRN over all channels does reach tower 2 (the test can fail).
    single = LocalResponseNorm(beta=lrn.beta, convention=lrn.convention, towers=1)
    assert not torch.equal(single(changed)[half - 1, half], single(base)[0, half])


def test_tower1_change_before_lrn_stops_at_the_tower_boundary(net):
    """Perturb tower 1's ReLU1 maps inside the network: tower 2 is untouched through lrn1…pool2, conv3 mixes."""
    seen = {}
    hooks = [getattr(net.features, n).register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o.clone()))
             for n in ("lrn1", "lrn2", "pool2", "conv3")]
    x = torch.randn(1, 3, 227, 227)
    try:
        with torch.no_grad():
            net(x)
            ref = dict(seen)
            bump = net.features.relu1.register_forward_hook(
                lambda m, i, o: torch.cat([o[:, :48] + torch.rand_like(o[:, :48]) * 5, o[:, 48:]], 1))
            net(x)
            bump.remove()
    finally:
        for h in hooks:
            h.remove()
    assert not torch.equal(seen["lrn1"][:, :48], ref["lrn1"][:, :48])
    assert torch.equal(seen["lrn1"][:, 48:], ref["lrn1"][:, 48:])
    assert torch.equal(seen["lrn2"][:, 128:], ref["lrn2"][:, 128:])  # conv2 is grouped: still tower-local
    assert torch.equal(seen["pool2"][:, 128:], ref["pool2"][:, 128:])
    assert not torch.equal(seen["conv3"][:, 192:], ref["conv3"][:, 192:])  # conv3 crosses towers


@pytest.mark.parametrize("name, crosses", [("conv2", False), ("conv3", True), ("conv4", False), ("conv5", False)])
def test_which_convs_read_the_other_tower(net, name, crosses):
    conv = getattr(net.features, name)
    x = torch.randn(1, conv.in_channels, 5, 5, requires_grad=True)
    out = conv(x)
    half_in, half_out = conv.in_channels // 2, conv.out_channels // 2
    # d(tower-2 outputs)/d(tower-1 inputs), and the reverse
    g21, = torch.autograd.grad(out[:, half_out:].sum(), x, retain_graph=True)
    g12, = torch.autograd.grad(out[:, :half_out].sum(), x)
    assert bool(g21[:, :half_in].abs().sum() > 0) == crosses
    assert bool(g12[:, half_in:].abs().sum() > 0) == crosses


def _assert_two_devices_equal_grouped(options, x, devices=("cpu", "cpu"), atol=1e-5):
    torch.manual_seed(2)
    grouped = AlexNet(**options).eval()
    split = AlexNet(devices=devices, **options).eval()
    assert isinstance(split, TwoDeviceAlexNet)
    split.load_grouped_state_dict(grouped.state_dict())
    upstream = torch.randn(x.shape[0], options.get("num_classes", 1000))
    y_g = grouped(x)
    y_s = split(x)
    assert y_s.device == torch.device(devices[0])
    torch.testing.assert_close(y_s.cpu(), y_g, atol=atol, rtol=1e-4)
    (y_g * upstream).sum().backward()
    (y_s * upstream.to(y_s.device)).sum().backward()
    # The slicing rule: tower t holds output channels/neurons [t·C/2, (t+1)·C/2) of each grouped conv, fc6, fc7.
    for t, tower in enumerate(split.tower):
        assert all(p.device == torch.device(devices[t]) for p in tower.parameters())
        for name, mod in tower.items():
            full = layer(grouped, name)
            half = full.weight.shape[0] // 2
            for p in ("weight", "bias"):
                torch.testing.assert_close(getattr(mod, p).grad.cpu(), getattr(full, p).grad[t * half:(t + 1) * half],
                                           atol=atol, rtol=1e-4)
    torch.testing.assert_close(split.fc8.weight.grad.cpu(), grouped.classifier.fc8.weight.grad, atol=atol, rtol=1e-4)
    # and the weights round-trip
    for k, v in split.grouped_state_dict().items():
        assert torch.equal(v, grouped.state_dict()[k]), k


@pytest.mark.parametrize("options", [{}, {"remove": "conv3"}, {"remove": "conv4", "lrn": None, "activation": "tanh"},
                                     {"lrn": "printed", "lrn_beta": 1.5, "pool": "non-overlapping"}])
def test_towers_on_two_devices_equal_the_grouped_network(options):
    _assert_two_devices_equal_grouped({**SCALED, **options}, torch.randn(4, 3, 32, 32))


def test_towers_on_two_devices_full_size(net):
    split = AlexNet(devices=("cpu", "cpu")).eval()
    split.load_grouped_state_dict(net.state_dict())
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(split(x), net(x), atol=1e-5, rtol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device to place one tower on")
def test_towers_on_a_gpu_and_the_cpu():
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        _assert_two_devices_equal_grouped(SCALED, torch.randn(4, 3, 32, 32), devices=("cuda:0", "cpu"), atol=1e-4)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32


def test_two_devices_rejects_what_it_cannot_place():
    with pytest.raises(ValueError, match="two torch devices"):
        AlexNet(devices=("cpu",), **SCALED)
    with pytest.raises(ValueError, match="towers=1"):
        AlexNet(devices=("cpu", "cpu"), towers=1, **SCALED)
    with pytest.raises(ValueError, match="LRN across towers"):
        AlexNet(devices=("cpu", "cpu"), lrn_across_towers=True, **SCALED)


# ---------------------------------------------------------------- torchvision (PAPER.md §6)

def test_torchvision_state_dict_gives_identical_logits():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(3)
    theirs = torchvision.models.alexnet(weights=None).eval()
    ours = TorchvisionAlexNet().eval()
    ours.load_state_dict(theirs.state_dict())  # strict: same keys, same shapes
    assert count_parameters(ours) == paper.TORCHVISION_PARAMETERS == 61_100_840
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))
    assert abs(summary(ours)["macs"].sum() / 1e9 - paper.TORCHVISION_GMAC) < 5e-4
    facts = describe(ours)
    assert facts["conv_widths"] == "64-192-384-256-256" and facts["lrn"] == "none"
    assert facts["dropout"] == "0.5 into fc6, fc7"  # torchvision's dropout feeds fc6, fc7; the paper's fc7, fc8
    assert describe(AlexNet(**SCALED))["dropout"] == "0.5 into fc7, fc8"


# ---------------------------------------------------------------- variants

def _run(model, size=32, classes=10):
    with torch.no_grad():
        y = model.eval()(torch.randn(2, 3, size, size))
    assert y.shape == (2, classes) and torch.isfinite(y).all()
    return model


def _modules(model, kind):
    return [m for m in model.modules() if isinstance(m, kind)]


@pytest.mark.parametrize("convention, k, alpha", [("authors", 2.0, 1e-4), ("printed", 2.0, 5e-4), ("caffe", 1.0, 1e-4)])
def test_lrn_conventions(convention, k, alpha):
    lrns = _modules(_run(AlexNet(lrn=convention, **SCALED)), LocalResponseNorm)
    assert len(lrns) == 2 and all((m.k, m.alpha, m.convention) == (k, pytest.approx(alpha), convention) for m in lrns)


def test_variants_build_and_run():
    assert not _modules(_run(AlexNet(lrn=None, **SCALED)), LocalResponseNorm)
    assert all(m.beta == 1.5 for m in _modules(_run(AlexNet(lrn_beta=1.5, **SCALED)), LocalResponseNorm))
    assert all(m.towers == 1 for m in _modules(_run(AlexNet(lrn_across_towers=True, **SCALED)), LocalResponseNorm))
    tanh = _run(AlexNet(activation="tanh", **SCALED))
    assert len(_modules(tanh, nn.Tanh)) == 7 and not _modules(tanh, nn.ReLU)
    assert all(m.p == 0.3 for m in _modules(_run(AlexNet(dropout=0.3, **SCALED)), nn.Dropout))
    assert all(m.p == 0.0 for m in _modules(_run(AlexNet(dropout=0.0, **SCALED)), nn.Dropout))
    non = _run(AlexNet(pool="non-overlapping", **SCALED))
    assert [(m.kernel_size, m.stride) for m in _modules(non, nn.MaxPool2d)] == [(2, 2)] * 3
    default = _run(AlexNet(init="default", **SCALED))
    assert not torch.equal(default.features.conv2.bias, torch.ones_like(default.features.conv2.bias))
    one = _run(AlexNet(towers=1, **SCALED))
    assert all(m.groups == 1 for m in _modules(one, nn.Conv2d)) and one.features.lrn1.towers == 1
    combined = _run(AlexNet(towers=1, activation="tanh", lrn="caffe", pool="non-overlapping", dropout=0.0,
                            remove="conv4", **SCALED))
    assert "conv4" not in combined.features._modules


@pytest.mark.parametrize("removed, next_layer, in_channels", [("conv3", "conv4", 64), ("conv4", "conv5", 128)])
def test_removing_a_middle_conv_layer(removed, next_layer, in_channels):
    model = _run(AlexNet(remove=removed, **SCALED))
    assert removed not in model.features._modules
    assert len(_modules(model, nn.Conv2d)) == 4
    assert getattr(model.features, next_layer).in_channels == in_channels  # takes the removed layer's input
    # full size, counted from the specs: conv4 then reads conv2's 256 maps in two groups
    specs = {s.name: s for s in layer_specs("full", remove="conv3")}
    assert "conv3" not in specs and specs["conv4"].groups == 2


def test_non_overlapping_pool_keeps_the_full_size_maps():
    """§3.4: z=2, s=2 gives the same output size as z=3, s=2 (55 → 27 → 13 → 6)."""
    model = AlexNet(pool="non-overlapping", num_classes=10)
    rows = summary(model).set_index("layer")
    assert [rows.loc[p, "output"][1] for p in ("pool1", "pool2", "pool5")] == [27, 13, 6]
    assert model.classifier.fc6.in_features == 9216


@pytest.mark.parametrize("options, message", [
    (dict(scale="huge"), "unknown scale"),
    (dict(towers=3), "towers must be 1 or 2"),
    (dict(activation="sigmoid"), "unknown activation"),
    (dict(lrn="kaiming"), "unknown lrn"),
    (dict(lrn_beta=0.0), "lrn_beta must be positive"),
    (dict(pool="average"), "unknown pool"),
    (dict(dropout=1.5), "dropout is a probability"),
    (dict(remove="conv5"), "remove must be"),
    (dict(init="xavier"), "unknown init"),
    (dict(num_classes=0), "num_classes must be"),
])
def test_invalid_options_raise_clear_errors(options, message):
    with pytest.raises(ValueError, match=message):
        AlexNet(**{**SCALED, **options})


def test_build_model_by_name():
    assert isinstance(build_model("alexnet", **SCALED), AlexNet)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("vgg")


# ---------------------------------------------------------------- the scaled network (CPU track)

def test_scaled_network_keeps_the_paper_topology():
    model = _run(AlexNet(**SCALED))
    names = list(model.features._modules)
    convs = _modules(model, nn.Conv2d)
    assert len(convs) == 5 and [m.groups for m in convs] == [1, 2, 1, 2, 2]
    assert names.index("lrn1") == names.index("relu1") + 1 and names.index("pool1") == names.index("lrn1") + 1
    assert names.index("lrn2") == names.index("relu2") + 1 and names.index("pool2") == names.index("lrn2") + 1
    assert len(_modules(model, LocalResponseNorm)) == 2 and all(m.towers == 2 for m in _modules(model, LocalResponseNorm))
    pools = _modules(model, nn.MaxPool2d)
    assert [n for n in names if n.startswith("pool")] == ["pool1", "pool2", "pool5"]
    assert all((p.kernel_size, p.stride) == (3, 2) for p in pools)
    assert len(_modules(model, nn.Linear)) == 3
    assert list(model.classifier._modules) == ["fc6", "relu6", "dropout6", "fc7", "relu7", "dropout7", "fc8"]
    assert model.classifier.dropout6.p == 0.5
    rows = summary(model).set_index("layer")
    assert rows.loc["conv1", "output"][1:] == (32, 32) and rows.loc["pool5", "output"][1:] == (3, 3)
    assert count_parameters(model) < count_parameters(AlexNet(towers=1, **SCALED)) * 2  # small: a CPU net


# ---------------------------------------------------------------- summary and CLI

def test_summary_columns_and_connectivity(table):
    assert list(table.columns) == ["layer", "type", "output", "neurons", "parameters", "macs", "connects"]
    rows = table.set_index("layer")
    assert rows.loc["conv1", "connects"] == "image"
    assert [rows.loc[n, "connects"] for n in ("conv2", "conv4", "conv5")] == ["tower"] * 3
    assert [rows.loc[n, "connects"] for n in ("conv3", "fc6", "fc7", "fc8")] == ["cross-tower"] * 4
    assert rows.loc["lrn1", "connects"] == "within 2 tower(s)"
    assert table["parameters"].sum() == paper.TOTAL_PARAMETERS


def test_summary_rejects_an_image_too_small():
    with pytest.raises(ValueError, match="does not fit"):
        summary(AlexNet(**SCALED), 4)


def test_cli_prints_the_totals(capsys):
    assert cli.main(["summary"]) == 0
    out = capsys.readouterr().out
    assert "total: 60,965,224 parameters, 0.724 GMAC per image" in out and "conv3" in out
    fc6 = next(line for line in out.splitlines() if line.split()[:1] == ["fc6"])
    assert "37,752,832" in fc6 and "37,748,736" in fc6  # per-layer parameters and MACs with separators too
    assert cli.main(["summary", "--model", "torchvision"]) == 0
    assert "total: 61,100,840 parameters, 0.714 GMAC" in capsys.readouterr().out
    assert cli.main(["summary", "--scale", "scaled", "--input-size", "4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("alexnet-book summary:") and "does not fit" in err and "Traceback" not in err


def _map_sizes(model, size):
    """{module name: (H, W)} of every feature layer's output for one size×size input."""
    sizes = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, name=name: sizes.__setitem__(name, tuple(o.shape[-2:])))
             for name, m in model.features.named_children()]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    return sizes


@pytest.mark.parametrize("scale,rounding", [("scaled", "ceil"), ("full", "ceil"), ("full", "floor")])
def test_every_variant_keeps_every_layers_map_size(scale, rounding):
    """Like for like: an ablation changes only what it names.  Non-overlapping pooling gives "output of
    equivalent dimensions" (§3.4) -- with the overlapping pool rounding up (cuda-convnet) and the z=2 one down at
    every size, and with PyTorch's floor at 224 (odd sizes) --
    so fc6 has the same inputs; no other variant moves a map size either."""
    from alexnet_book.model import AlexNet

    size = 32 if scale == "scaled" else 224
    base = AlexNet(num_classes=10, scale=scale, pool_rounding=rounding)
    reference = _map_sizes(base, size)
    variants = [dict(pool="non-overlapping"), dict(lrn=None), dict(towers=1), dict(activation="tanh"),
                dict(dropout=0.0), dict(lrn="caffe"), dict(lrn_beta=1.5), dict(remove="conv3"), dict(remove="conv4")]
    for change in variants:
        model = AlexNet(num_classes=10, scale=scale, pool_rounding=rounding, **change)
        sizes = _map_sizes(model, size)
        for name, hw in sizes.items():
            key = name.replace("tanh", "relu")
            assert reference[key] == hw, (change, name, hw, reference[key])
        assert model.classifier.fc6.in_features == base.classifier.fc6.in_features or change == dict(towers=1)
    if scale == "scaled":
        assert [reference[f"pool{i}"] for i in (1, 2, 5)] == [(16, 16), (8, 8), (4, 4)]


def test_floor_rounding_at_32_px_is_the_confound_the_ceil_rule_removes():
    from alexnet_book.model import AlexNet

    over = _map_sizes(AlexNet(num_classes=10, scale="scaled"), 32)
    non = _map_sizes(AlexNet(num_classes=10, scale="scaled", pool="non-overlapping"), 32)
    assert over["pool1"] == (15, 15) and non["pool1"] == (16, 16)  # why the CPU recipes round up
