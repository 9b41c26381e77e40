"""The from-scratch layers (§3.1–3.4, §4.2) against torch.nn: values and gradients, plus the LRN formula and towers."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from alexnet_book import layers, paper

torch.set_num_threads(1)
D = torch.float64  # exact enough that 1e-10 tolerances catch any wrong term


def _values_and_grads(ours, theirs, *inputs):
    """Run both functions on copies of ``inputs`` with the same upstream gradient; return (outs, grads) pairs."""
    a = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs]
    b = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs]
    ya, yb = ours(*a), theirs(*b)
    upstream = torch.randn_like(ya)
    (ya * upstream).sum().backward()
    (yb * upstream).sum().backward()
    return (ya, yb), [(p.grad, q.grad) for p, q in zip(a, b) if p.requires_grad]


def _assert_same(ours, theirs, *inputs, atol=1e-10):
    (ya, yb), grads = _values_and_grads(ours, theirs, *inputs)
    assert ya.shape == yb.shape
    torch.testing.assert_close(ya, yb, atol=atol, rtol=1e-7)
    for ga, gb in grads:
        torch.testing.assert_close(ga, gb, atol=atol, rtol=1e-7)


# ---------------------------------------------------------------- convolution (§3.5)

@pytest.mark.parametrize("c_in, c_out, hw, kernel, stride, padding, groups, bias", [
    (3, 8, (13, 13), (11, 11), 4, 0, 1, True),       # conv1-like: big kernel, stride 4
    (4, 6, (9, 7), (5, 5), 1, 2, 2, True),           # conv2-like: groups=2, padding 2, non-square image
    (6, 9, (8, 10), (3, 2), (2, 1), (1, 0), 3, False),  # non-square kernel, stride, padding; 3 groups
    (4, 4, (6, 6), (3, 3), 1, 1, 4, True),           # depthwise
])
def test_conv2d_matches_torch(c_in, c_out, hw, kernel, stride, padding, groups, bias):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, c_in, *hw, generator=g, dtype=D)
    w = torch.randn(c_out, c_in // groups, *kernel, generator=g, dtype=D)
    args = (x, w) + ((torch.randn(c_out, generator=g, dtype=D),) if bias else ())
    _assert_same(lambda *t: layers.conv2d(*t, stride=stride, padding=padding, groups=groups),
                 lambda *t: F.conv2d(*t, stride=stride, padding=padding, groups=groups), *args)


def test_conv2d_groups_keep_towers_apart():
    """With groups=2 an output map of tower 2 does not depend on any input map of tower 1 (§3.5)."""
    x = torch.randn(1, 4, 7, 7, dtype=D)
    w = torch.randn(6, 2, 3, 3, dtype=D)
    y = layers.conv2d(x, w, groups=2)
    x2 = x.clone()
    x2[:, :2] += 1.0
    y2 = layers.conv2d(x2, w, groups=2)
    assert torch.equal(y[:, 3:], y2[:, 3:])
    assert not torch.allclose(y[:, :3], y2[:, :3])


def test_conv2d_rejects_bad_groups():
    with pytest.raises(ValueError, match="groups"):
        layers.conv2d(torch.randn(1, 5, 6, 6), torch.randn(4, 2, 3, 3), groups=2)


# ---------------------------------------------------------------- ReLU and tanh (§3.1)

def test_relu_matches_torch():
    x = torch.randn(3, 5, 4, 6, dtype=D)
    x[0, 0, 0, :3] = 0.0  # the kink: gradient 0 at 0, as torch
    _assert_same(layers.relu, torch.relu, x)


def test_tanh_matches_torch_including_extremes():
    x = torch.cat([torch.randn(200, dtype=D) * 3,
                   torch.tensor([0.0, 1e-12, -1e-12, 20.0, -20.0, 400.0, -400.0, 1e4, -1e4], dtype=D)])
    _assert_same(layers.tanh, torch.tanh, x, atol=1e-14)
    y = layers.tanh(torch.tensor([1e4, -1e4, 1e-30], dtype=torch.float32))
    assert torch.isfinite(y).all() and y.tolist()[:2] == [1.0, -1.0] and y[2] == 1e-30  # stable, exact near 0


# ---------------------------------------------------------------- LRN (§3.3)

def _lrn_by_the_formula(a, n, alpha, beta, k, divide_alpha_by_n):
    """b_i = a_i / (k + α' Σ_{j=max(0,i-n/2)}^{min(N-1,i+n/2)} a_j²)^β, one channel at a time (odd n)."""
    N = a.shape[1]
    a_prime = alpha / n if divide_alpha_by_n else alpha
    b = torch.empty_like(a)
    for i in range(N):
        s = torch.zeros_like(a[:, 0])
        for j in range(max(0, i - n // 2), min(N - 1, i + n // 2) + 1):
            s = s + a[:, j] ** 2
        b[:, i] = a[:, i] / (k + a_prime * s) ** beta
    return b


# the three readings, each written exactly as its source states it
FORMULAS = {
    "authors": dict(k=2.0, alpha=1e-4, divide_alpha_by_n=True),   # cuda-convnet: α/n, k = 2
    "printed": dict(k=2.0, alpha=1e-4, divide_alpha_by_n=False),  # §3.3 as printed
    "caffe": dict(k=1.0, alpha=1e-4, divide_alpha_by_n=True),     # bvlc_alexnet: α/n, k = 1
}
# PAPER.md §2: the same three in torch's terms
TORCH_LRN = {
    "authors": nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
    "printed": nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0),
    "caffe": nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0),
}


def _activations(scale=30.0, channels=11):
    # large activations (like ReLU outputs of a net in training) so that α Σ a² is not negligible next to k
    return (torch.randn(2, channels, 4, 3, dtype=D) * scale).abs()


@pytest.mark.parametrize("convention", ["authors", "printed", "caffe"])
def test_lrn_convention_matches_its_formula(convention):
    a = _activations()
    f = FORMULAS[convention]
    expected = _lrn_by_the_formula(a, 5, f["alpha"], 0.75, f["k"], f["divide_alpha_by_n"])
    torch.testing.assert_close(layers.local_response_norm(a, convention=convention), expected, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("convention", ["authors", "printed", "caffe"])
def test_lrn_convention_matches_torch_mapping(convention):
    a = torch.randn(2, 10, 5, 6, dtype=D) * 30
    _assert_same(lambda t: layers.local_response_norm(t, convention=convention), TORCH_LRN[convention], a)


def test_lrn_conventions_really_differ():
    a = _activations()
    out = {c: layers.local_response_norm(a, convention=c) for c in FORMULAS}
    assert (out["authors"] - out["printed"]).abs().max() > 1e-3
    assert (out["authors"] - out["caffe"]).abs().max() > 1e-3


@pytest.mark.parametrize("size, beta", [(3, 0.75), (5, paper.SEED_LRN_BETA), (7, 0.5)])
def test_lrn_other_sizes_and_betas_match_formula_and_torch(size, beta):
    a = _activations(channels=9)
    expected = _lrn_by_the_formula(a, size, 1e-4, beta, 2.0, divide_alpha_by_n=True)
    ours = layers.local_response_norm(a, size=size, beta=beta)
    torch.testing.assert_close(ours, expected, atol=1e-12, rtol=1e-10)
    _assert_same(lambda t: layers.local_response_norm(t, size=size, beta=beta),
                 nn.LocalResponseNorm(size, alpha=1e-4, beta=beta, k=2.0), a)


def test_lrn_even_size_follows_torch():
    a = _activations(channels=8)
    _assert_same(lambda t: layers.local_response_norm(t, size=4), nn.LocalResponseNorm(4, 1e-4, 0.75, 2.0), a)


def test_lrn_defaults_are_the_papers():
    a = _activations()
    torch.testing.assert_close(layers.local_response_norm(a),
                               _lrn_by_the_formula(a, paper.LRN["n"], paper.LRN["alpha"], paper.LRN["beta"],
                                                   paper.LRN["k"], divide_alpha_by_n=True))


@pytest.mark.parametrize("convention", ["authors", "printed", "caffe"])
def test_lrn_per_tower_is_the_formula_on_each_half(convention):
    a = _activations(channels=12)
    f = FORMULAS[convention]
    halves = [_lrn_by_the_formula(h, 5, f["alpha"], 0.75, f["k"], f["divide_alpha_by_n"]) for h in a.split(6, dim=1)]
    ours = layers.local_response_norm(a, convention=convention, towers=2)
    torch.testing.assert_close(ours, torch.cat(halves, dim=1), atol=1e-12, rtol=1e-10)
    assert not torch.allclose(ours, layers.local_response_norm(a, convention=convention, towers=1))


@pytest.mark.parametrize("lrn", [
    lambda t, towers: layers.local_response_norm(t, towers=towers),
    lambda t, towers: layers.LocalResponseNorm(towers=towers)(t),
], ids=["local_response_norm", "LocalResponseNorm"])
def test_lrn_window_never_crosses_the_tower_boundary(lrn):
    """Changing a tower-1 map changes no tower-2 output with towers=2 -- but does with towers=1 (CC2, §3.3)."""
    c = 96  # conv1: tower 1 holds maps 0..47, tower 2 maps 48..95
    a = _activations(channels=c)
    for changed in (47, 46, 0):  # the last tower-1 map, and others
        bumped = a.clone()
        bumped[:, changed] += 50.0
        two = (lrn(bumped, 2) - lrn(a, 2)).abs()
        assert two[:, c // 2:].max() == 0.0
        assert two[:, changed].max() > 0  # the change is seen where it should be
    bumped = a.clone()
    bumped[:, 47] += 50.0
    one = (lrn(bumped, 1) - lrn(a, 1)).abs()
    assert one[:, 48].max() > 1e-6 and one[:, 49].max() > 1e-6  # a single LRN leaks across the boundary


def test_lrn_rejects_channels_that_do_not_split():
    with pytest.raises(ValueError, match="towers"):
        layers.local_response_norm(torch.randn(1, 5, 2, 2), towers=2)
    with pytest.raises(ValueError, match="convention"):
        layers.local_response_norm(torch.randn(1, 4, 2, 2), convention="cc3")


# the module the network uses (fast path, hand-written backward)

@pytest.mark.parametrize("towers", [1, 2])
@pytest.mark.parametrize("convention", ["authors", "printed", "caffe"])
def test_lrn_module_fast_path_matches_torch(towers, convention):
    a = torch.randn(3, 16, 5, 4, dtype=D) * 30
    module = layers.LocalResponseNorm(convention=convention, towers=towers)
    k, alpha = layers.lrn_constants(convention)

    def reference(t):
        return torch.cat([F.local_response_norm(h, 5, alpha, 0.75, k) for h in t.chunk(towers, dim=1)], dim=1)

    _assert_same(module, reference, a)
    _assert_same(module, lambda t: layers.local_response_norm(t, convention=convention, towers=towers), a)


@pytest.mark.parametrize("size, beta", [(3, 0.75), (4, 1.5), (5, 0.5)])
def test_fast_lrn_gradient_other_hyperparameters(size, beta):
    a = torch.randn(2, 9, 3, 3, dtype=D) * 20
    _assert_same(lambda t: layers.fast_local_response_norm(t, size, 3e-4, beta, 1.5),
                 lambda t: F.local_response_norm(t, size, 3e-4, beta, 1.5), a)


# ---------------------------------------------------------------- pooling (§3.4)

@pytest.mark.parametrize("shape, kernel, stride", [
    ((2, 3, 13, 13), 3, 2),         # overlapping, the paper's z=3, s=2
    ((2, 3, 12, 12), 2, 2),         # non-overlapping z=2, s=2
    ((1, 2, 11, 8), (3, 2), (2, 1)),  # non-square everything
])
def test_overlapping_pool_matches_torch(shape, kernel, stride):
    x = torch.randn(*shape, dtype=D)
    _assert_same(lambda t: layers.overlapping_pool(t, kernel, stride), lambda t: F.max_pool2d(t, kernel, stride), x)


def test_overlapping_pool_with_ties_after_relu():
    """After ReLU many windows are all zeros: the gradient still goes to one element per window, as max_pool2d."""
    x = (torch.randn(2, 4, 15, 15, dtype=D) - 1.5).clamp(min=0)  # ~93% zeros: about half the windows all-zero
    _assert_same(lambda t: layers.overlapping_pool(t), lambda t: F.max_pool2d(t, 3, 2), x)


def test_pool_output_sizes_are_the_papers():
    """55 → 27, 27 → 13, 13 → 6 with z=3, s=2 (§3.5); z=2, s=2 gives the same sizes."""
    for size, expected in ((55, 27), (27, 13), (13, 6)):
        x = torch.zeros(1, 1, size, size)
        assert layers.overlapping_pool(x).shape[-1] == expected
        assert layers.overlapping_pool(x, **paper.NON_OVERLAPPING_POOL).shape[-1] == expected


# ---------------------------------------------------------------- dropout (§4.2)

def test_dropout_statistics_and_scale():
    p = paper.DROPOUT
    x = torch.full((200_000,), 3.0, dtype=D)
    y = layers.dropout(x, p, generator=torch.Generator().manual_seed(0))
    kept = y != 0
    assert abs(kept.double().mean().item() - (1 - p)) < 0.005  # 5 standard deviations ≈ 0.0056
    assert torch.all(y[kept] == 3.0 / (1 - p))  # survivors scaled by 1/(1-p)
    assert abs(y.mean().item() - 3.0) < 0.03  # the expected output is the input
    for q in (0.2, 0.8):
        kept_q = (layers.dropout(x, q, generator=torch.Generator().manual_seed(1)) != 0).double().mean().item()
        assert abs(kept_q - (1 - q)) < 0.005


def test_dropout_gradient_is_the_mask_over_keep_probability():
    x = torch.randn(50, 40, dtype=D, requires_grad=True)
    y = layers.dropout(x, 0.3, generator=torch.Generator().manual_seed(2))
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y != 0).to(D) / 0.7)
    # torch's own inverted dropout has the same relation between its output and its gradient
    x2 = x.detach().clone().requires_grad_()
    torch.manual_seed(2)
    y2 = F.dropout(x2, 0.3, training=True)
    y2.sum().backward()
    torch.testing.assert_close(x2.grad, (y2 != 0).to(D) / 0.7)


def test_dropout_eval_is_identity_and_generator_reproduces():
    x = torch.randn(4, 10)
    assert layers.dropout(x, 0.5, training=False) is x
    a = layers.dropout(x, 0.5, generator=torch.Generator().manual_seed(7))
    b = layers.dropout(x, 0.5, generator=torch.Generator().manual_seed(7))
    c = layers.dropout(x, 0.5, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(layers.dropout(x, 1.0), torch.zeros_like(x))
    assert torch.equal(layers.dropout(x, 0.0), x)
    with pytest.raises(ValueError, match="probability"):
        layers.dropout(x, 1.5)


def test_dropout_equals_papers_test_time_halving():
    """Paper: drop with p=0.5 while training, multiply by 0.5 at test. Inverted: ×2 while training, identity at
    test. Averaged over masks, both give the next layer the same input relative to test time (§4.2)."""
    x = torch.randn(64, dtype=D)
    g = torch.Generator().manual_seed(3)
    draws = torch.stack([layers.dropout(x, 0.5, generator=g) for _ in range(4000)])
    paper_training = draws * 0.5  # the same masks without the 1/(1-p) scale
    torch.testing.assert_close(paper_training.mean(0), 0.5 * x, atol=0.08, rtol=0)  # paper: test output = 0.5·x
    torch.testing.assert_close(draws.mean(0), layers.dropout(x, 0.5, training=False), atol=0.15, rtol=0)


def test_public_names():
    import alexnet_book
    for name in ("conv2d", "relu", "tanh", "local_response_norm", "overlapping_pool", "dropout", "LocalResponseNorm"):
        assert getattr(alexnet_book, name) is getattr(layers, name)


def test_max_abs_difference_sees_output_and_gradient_differences():
    x = torch.randn(3, 4, dtype=D)
    same = layers.max_abs_difference(layers.relu, torch.relu, x)
    assert same == {"output": 0.0, "gradient": 0.0}
    shifted = layers.max_abs_difference(lambda t: t + 1, lambda t: t, x)
    assert shifted["output"] == pytest.approx(1.0) and shifted["gradient"] == 0.0
    doubled = layers.max_abs_difference(lambda t: 2 * t, lambda t: t, torch.ones(2, 2, dtype=D))
    assert doubled["output"] == pytest.approx(1.0) and doubled["gradient"] > 0
