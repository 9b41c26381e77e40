"""The paper's layers (§3.1–3.4, §4.2).

Two kinds of code live here:

* ``LocalResponseNorm`` -- the module the network uses: fast (built on torch's fused op) and tower-aware.
* the from-scratch functions (``conv2d``, ``relu``, ``tanh``, ``local_response_norm``, ``overlapping_pool``,
  ``dropout``) in plain tensor operations, each checked against ``torch.nn`` in ``tests/test_layers.py``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import paper

# §3.3 and PAPER.md §2: three readings of the LRN constants, written in torch's terms
# (torch computes b = a / (k + alpha/n * sum a^2)^beta, i.e. it divides alpha by n).
LRN_CONVENTIONS = ("authors", "printed", "caffe")


def lrn_constants(convention: str = "authors", *, n: int = paper.LRN["n"], alpha: float = paper.LRN["alpha"],
                  k: float = paper.LRN["k"]) -> tuple[float, float]:
    """(k, alpha-as-torch-expects-it) for one LRN convention (§3.3).

    ``authors``: α divided by n, as in Krizhevsky's cuda-convnet code (the default);
    ``printed``: the formula as printed, α multiplying the raw sum (torch alpha = n·α);
    ``caffe``: BVLC Caffe's bvlc_alexnet, α divided by n and k = 1.
    """
    if convention == "authors":
        return k, alpha
    if convention == "printed":
        return k, alpha * n
    if convention == "caffe":
        return 1.0, alpha
    raise ValueError(f"unknown LRN convention {convention!r}; choose one of {LRN_CONVENTIONS}")


def _channel_window_sum(x: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """Σ x_j over channels j in [i - before, i + after] (zeros beyond the ends), for every channel i."""
    c = x.shape[1]
    padded = F.pad(x, (0, 0, 0, 0, before, after))
    out = padded[:, 0:c].clone()
    for j in range(1, before + after + 1):
        out += padded[:, j:j + c]
    return out


def _inverse_power(d: torch.Tensor, beta: float) -> torch.Tensor:
    if beta == 0.75:  # cuda-convnet's trick: d^-3/4 = d^-1/2 · d^-1/4, cheaper than pow
        r = d.rsqrt()
        return r * r.sqrt()
    return d.pow(-beta)


class _FastLRN(torch.autograd.Function):
    """LRN with a hand-written backward; about 4× faster on a CPU than torch's avg_pool3d-based op."""

    @staticmethod
    def forward(ctx, x, size, alpha, beta, k):
        before, after = size // 2, (size - 1) // 2
        d = k + (alpha / size) * _channel_window_sum(x * x, before, after)
        scale = _inverse_power(d, beta)
        ctx.save_for_backward(x, d, scale)
        ctx.hyper = (size, alpha, beta)
        return x * scale

    @staticmethod
    def backward(ctx, grad):
        x, d, scale = ctx.saved_tensors
        size, alpha, beta = ctx.hyper
        # b_i = a_i d_i^-β, d_i = k + α/n Σ_{j∈W(i)} a_j²  ⇒
        # ∂L/∂a_j = g_j d_j^-β − (2αβ/n) a_j Σ_{i: j∈W(i)} g_i a_i d_i^(-β-1)
        inner = grad * x * scale / d
        back = _channel_window_sum(inner, (size - 1) // 2, size // 2)  # the transposed window
        return grad * scale - (2.0 * alpha * beta / size) * x * back, None, None, None, None


def fast_local_response_norm(x: torch.Tensor, size: int, alpha: float, beta: float, k: float) -> torch.Tensor:
    """Same function as ``torch.nn.functional.local_response_norm`` (torch's α convention), faster on CPUs."""
    return _FastLRN.apply(x, size, alpha, beta, k)


class LocalResponseNorm(nn.Module):
    """Local response normalisation across channels (§3.3), optionally within each tower only.

    With ``towers=2`` the channels are split in two halves and each half is normalised on its own, as
    cuda-convnet did on two GPUs: no window ever crosses channel C/2-1 | C/2.
    """

    def __init__(self, size: int = paper.LRN["n"], alpha: float = paper.LRN["alpha"],
                 beta: float = paper.LRN["beta"], k: float = paper.LRN["k"], *,
                 convention: str = "authors", towers: int = 1):
        super().__init__()
        self.size, self.beta, self.towers, self.convention = size, beta, towers, convention
        self.k, self.alpha = lrn_constants(convention, n=size, alpha=alpha, k=k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.towers == 1:
            return fast_local_response_norm(x, self.size, self.alpha, self.beta, self.k)
        n, c, h, w = x.shape
        if c % self.towers:
            raise ValueError(f"{c} channels do not split into {self.towers} towers")
        y = fast_local_response_norm(x.reshape(n * self.towers, c // self.towers, h, w),
                                     self.size, self.alpha, self.beta, self.k)
        return y.reshape(n, c, h, w)

    def extra_repr(self) -> str:
        return (f"size={self.size}, alpha={self.alpha:g}, beta={self.beta:g}, k={self.k:g}, "
                f"convention={self.convention!r}, towers={self.towers}")
