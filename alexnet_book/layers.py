"""The paper's layers (§3.1–3.4, §4.2).

Two kinds of code live here:

* ``LocalResponseNorm`` -- the module the network uses: fast (``fast_local_response_norm``) and tower-aware.
* the from-scratch functions (``conv2d``, ``relu``, ``tanh``, ``local_response_norm``, ``overlapping_pool``,
  ``dropout``) in plain tensor operations, each checked against ``torch.nn`` in ``tests/test_layers.py``.
"""
from __future__ import annotations

import contextlib

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


def _window_matrix(channels: int, before: int, after: int, weight: float, like: torch.Tensor) -> torch.Tensor:
    """(C, C) matrix holding ``weight`` at [j, i] where channel j lies in channel i's window [i-before, i+after]."""
    i = torch.arange(channels, device=like.device)
    offset = i[:, None] - i[None, :]  # j - i
    return ((offset >= -before) & (offset <= after)).to(like.dtype).mul_(weight)


def _window_sum(x: torch.Tensor, matrix: torch.Tensor, towers: int) -> torch.Tensor:
    """Σ_j matrix[j, i] x_j over the channels of each tower, as one matrix product; keeps x's memory format.

    A banded matrix product does more multiply-adds than five shifted additions, but it reads and writes
    the activations once instead of five times, and a CPU is starved for memory bandwidth, not arithmetic.
    """
    n, c = x.shape[:2]
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        # channels_last: every pixel's channels are one contiguous row; a tower is a run of C/towers of them
        _, _, h, w = x.shape
        rows = x.permute(0, 2, 3, 1).reshape(-1, c // towers)
        return (rows @ matrix).view(n, h, w, c).permute(0, 3, 1, 2)
    rows = x.reshape(n * towers, c // towers, -1)  # NCHW: each tower's maps are a (C/towers, H·W) matrix
    return torch.matmul(matrix.T, rows).view(x.shape)


def _inverse_power(d: torch.Tensor, beta: float, scratch: torch.Tensor) -> torch.Tensor:
    """d^-β into a new tensor (``scratch``: a free tensor shaped like d)."""
    if beta == 0.75:  # cuda-convnet's trick: d^-3/4 = d^-1/2 · (d^-1/2)^1/2, about 3× cheaper than pow on a CPU
        scale = d.rsqrt()
        return scale.mul_(torch.sqrt(scale, out=scratch))
    return d.pow(-beta)


def _without_autocast(x: torch.Tensor):
    """A context in which ops run in x's own dtype (autocast off on x's device, where autocast exists)."""
    if torch.amp.is_autocast_available(x.device.type):
        return torch.autocast(x.device.type, enabled=False)
    return contextlib.nullcontext()


class _FastLRN(torch.autograd.Function):
    """LRN (torch's α convention) with a hand-written backward, few passes over memory and few new tensors.

    Per tower, with the window W(i) = [i - n/2, i + (n-1)/2] clipped to the tower's channels:
    forward  d_i = k + α/n Σ_{j∈W(i)} a_j²,  b_i = a_i d_i^-β;
    backward ∂L/∂a_j = g_j d_j^-β − (2αβ/n) a_j Σ_{i: j∈W(i)} g_i b_i / d_i.
    Both window sums are banded matrix products (``_window_sum``); everything runs in the input's dtype
    (bf16 stays bf16 under autocast, as with ``F.local_response_norm``).  About 3× faster than the plain
    formula on a CPU, and channels_last in, channels_last out.
    """

    @staticmethod
    def forward(ctx, x, size, alpha, beta, k, towers):
        with _without_autocast(x):
            c = x.shape[1] // towers
            window = _window_matrix(c, size // 2, (size - 1) // 2, alpha / size, x)
            buffer = torch.mul(x, x)  # a², then scratch, then the output b
            d = _window_sum(buffer, window, towers).add_(k)
            scale = _inverse_power(d, beta, scratch=buffer)
            y = torch.mul(x, scale, out=buffer)
        ctx.save_for_backward(x, y, d, scale)
        ctx.hyper = (size, alpha, beta, towers)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, y, d, scale = ctx.saved_tensors
        size, alpha, beta, towers = ctx.hyper
        with _without_autocast(x):
            grad = grad.to(x.dtype)
            c = x.shape[1] // towers
            # the transposed window, with the constant of the second term folded in
            window = _window_matrix(c, size // 2, (size - 1) // 2, -2.0 * alpha * beta / size, x).T
            buffer = torch.mul(grad, y).div_(d)  # g_i b_i / d_i, then the result
            back = _window_sum(buffer, window, towers)
            grad_x = torch.mul(grad, scale, out=buffer).addcmul_(x, back)
        return grad_x, None, None, None, None, None


def fast_local_response_norm(x: torch.Tensor, size: int, alpha: float, beta: float, k: float,
                             towers: int = 1) -> torch.Tensor:
    """Same function as ``torch.nn.functional.local_response_norm`` (torch's α convention), faster (§3.3).

    ``towers=2`` normalises each half of the channels on its own.  Under ``torch.compile`` the plain formula
    (``local_response_norm``) is used instead, which the compiler fuses into one kernel.
    """
    if x.dim() < 3:
        raise ValueError(f"local response norm expects (N, C, ...) with at least 3 dimensions; got {tuple(x.shape)}")
    if x.shape[1] % towers:
        raise ValueError(f"{x.shape[1]} channels do not split into {towers} towers")
    if torch.compiler.is_compiling() and x.dim() == 4:
        return local_response_norm(x, size, alpha, beta, k, towers=towers)
    return _FastLRN.apply(x, size, alpha, beta, k, towers)


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
        return fast_local_response_norm(x, self.size, self.alpha, self.beta, self.k, towers=self.towers)

    def extra_repr(self) -> str:
        return (f"size={self.size}, alpha={self.alpha:g}, beta={self.beta:g}, k={self.k:g}, "
                f"convention={self.convention!r}, towers={self.towers}")


def scale_lrn_alpha_(model: torch.nn.Module, input_scale: float) -> None:
    """Divide every LRN layer's α by ``input_scale``² (§3.3 on a rescaled input).

    LRN(s·a; α/s²) = s·LRN(a; α): with the input multiplied by s and biases small, each LRN then divides by what
    it would divide by on the paper's mean-subtracted 0-255 pixels, instead of by k^β almost exactly.
    """
    for module in model.modules():
        if isinstance(module, LocalResponseNorm):
            module.alpha = module.alpha / input_scale ** 2


# ---------------------------------------------------------------------------------------------------------
# The layers from scratch, in plain tensor operations.  Each is checked against torch.nn (values and
# gradients) in tests/test_layers.py; notebooks/01_layers.ipynb shows each on a CIFAR-10 image.
# ---------------------------------------------------------------------------------------------------------

def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _windows(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int]) -> torch.Tensor:
    """Every kernel-sized window of an (N, C, H, W) tensor as a view of shape (N, C, H', W', kh, kw)."""
    return x.unfold(2, kernel[0], stride[0]).unfold(3, kernel[1], stride[1])


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0, groups: int = 1) -> torch.Tensor:
    """2-D convolution as im2col followed by one matrix multiply per group (§3.5).

    ``groups=2`` is the paper's two GPUs in one tensor: "the kernels of layers two, four, and five are
    connected only to those kernel maps in the previous layer which reside on the same GPU" (§3.5).
    Like every deep-learning "convolution" this is a cross-correlation (the kernel is not flipped).
    """
    if x.dim() != 4 or weight.dim() != 4:
        raise ValueError(f"conv2d expects x (N, C, H, W) and weight (O, C/groups, kh, kw); "
                         f"got {tuple(x.shape)} and {tuple(weight.shape)}")
    n, c, _, _ = x.shape
    out_channels, c_per_group, kh, kw = weight.shape
    if c != c_per_group * groups or out_channels % groups:
        raise ValueError(f"conv2d: {c} input channels and weight {tuple(weight.shape)} do not fit groups={groups}; "
                         f"weight must be (O, C/groups, kh, kw) with O divisible by groups")
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    x = F.pad(x, (pw, pw, ph, ph))  # zeros around the image
    patches = _windows(x, (kh, kw), (sh, sw))  # (N, C, H', W', kh, kw)
    oh, ow = patches.shape[2], patches.shape[3]
    # im2col: one column of C/groups·kh·kw input values per output position, for each group
    columns = (patches.reshape(n, groups, c_per_group, oh, ow, kh, kw)
               .permute(0, 1, 2, 5, 6, 3, 4)
               .reshape(n, groups, c_per_group * kh * kw, oh * ow))
    rows = weight.reshape(groups, out_channels // groups, c_per_group * kh * kw)  # one row per kernel
    out = torch.matmul(rows, columns)  # (N, groups, O/groups, H'·W')
    out = out.reshape(n, out_channels, oh, ow)
    if bias is not None:
        out = out + bias.reshape(1, out_channels, 1, 1)
    return out


def relu(x: torch.Tensor) -> torch.Tensor:
    """Rectified linear unit f(x) = max(0, x) (§3.1).

    "Following Nair and Hinton, we refer to neurons with this nonlinearity as Rectified Linear Units (ReLUs)."
    The gradient is 1 for x > 0 and 0 otherwise (0 at x = 0, as in torch).
    """
    return torch.where(x > 0, x, torch.zeros_like(x))


def tanh(x: torch.Tensor) -> torch.Tensor:
    """The saturating nonlinearity f(x) = tanh(x), from exponentials (§3.1), for the ReLU comparison of Fig. 1.

    tanh(x) = (1 − e^(−2x)) / (1 + e^(−2x)) for x ≥ 0 and −tanh(−x) for x < 0: the exponent is never
    positive, so nothing overflows, and expm1 keeps the small-x values exact.
    """
    u = torch.where(x >= 0, -2 * x, 2 * x)  # −2|x|, written so the gradient at 0 is right
    t = -torch.expm1(u) / (1 + torch.exp(u))  # tanh(|x|)
    return torch.where(x >= 0, t, -t)


def local_response_norm(x: torch.Tensor, size: int = paper.LRN["n"], alpha: float = paper.LRN["alpha"],
                        beta: float = paper.LRN["beta"], k: float = paper.LRN["k"], *,
                        convention: str = "authors", towers: int = 1) -> torch.Tensor:
    """Local response normalisation across adjacent kernel maps, written out from the formula (§3.3).

    b_i = a_i / (k + α' Σ_{j=max(0, i−n/2)}^{min(N−1, i+n/2)} a_j²)^β, with n = ``size`` and, per
    ``convention`` (see ``lrn_constants``): ``"authors"`` α' = α/n (Krizhevsky's code, the default),
    ``"printed"`` α' = α (the formula as printed), ``"caffe"`` α' = α/n and k = 1.  For an even ``size`` the
    window is n/2 maps before and n/2 − 1 after (torch's rule).  ``towers=2`` normalises each half of the
    channels on its own, so no window crosses the boundary between the two GPUs' maps (cuda-convnet).
    """
    if x.dim() != 4:
        raise ValueError(f"local_response_norm expects (N, C, H, W); got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    if c % towers:
        raise ValueError(f"{c} channels do not split into {towers} towers")
    k, alpha = lrn_constants(convention, n=size, alpha=alpha, k=k)  # now α is torch's: α' = α / n
    a = x.reshape(n * towers, c // towers, h, w)  # each tower's maps become a sample of their own
    sum_of_squares = _channel_window_sum(a * a, size // 2, (size - 1) // 2)  # zeros beyond the ends
    b = a / (k + (alpha / size) * sum_of_squares) ** beta
    return b.reshape(n, c, h, w)


def overlapping_pool(x: torch.Tensor, kernel: int | tuple[int, int] = paper.POOL["kernel"],
                     stride: int | tuple[int, int] = paper.POOL["stride"]) -> torch.Tensor:
    """Max-pooling over kernel×kernel windows placed ``stride`` apart; overlapping when stride < kernel (§3.4).

    "If we set s < z, we obtain overlapping pooling. This is what we use throughout our network, with s = 2
    and z = 3."  ``kernel=2, stride=2`` is the traditional non-overlapping pooling it replaced.
    """
    if x.dim() != 4:
        raise ValueError(f"overlapping_pool expects (N, C, H, W); got shape {tuple(x.shape)}")
    windows = _windows(x, _pair(kernel), _pair(stride))  # (N, C, H', W', z, z)
    # max over one flattened axis: the gradient goes to a single winner per window, as in max_pool2d
    return windows.flatten(-2).max(dim=-1).values


def dropout(x: torch.Tensor, p: float = paper.DROPOUT, training: bool = True,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Inverted dropout: zero each output with probability p and scale the survivors by 1/(1−p) (§4.2).

    The paper sets "to zero the output of each hidden neuron with probability 0.5" while training and at
    test time uses "all the neurons but multipl[ies] their outputs by 0.5".  Scaling the kept outputs by
    1/(1−p) while training instead is the same network: the next layer sees the same expected input, and
    at test time (``training=False``) the layer is the identity.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1]; got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return torch.zeros_like(x)
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= p
    return x * keep.to(x.dtype) / (1.0 - p)


def max_abs_difference(ours, theirs, *inputs: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """Largest |ours − theirs| over the outputs and over the gradients of every floating-point input.

    Both functions run on their own copies of ``inputs`` and back-propagate the same random upstream
    gradient; this is how notebooks/01_layers.ipynb sets each from-scratch layer (§3.1–3.4, §4.2) beside torch.
    """
    copies = [[t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs] for _ in range(2)]
    y_ours, y_theirs = ours(*copies[0]), theirs(*copies[1])
    upstream = torch.randn(y_ours.shape, generator=torch.Generator().manual_seed(seed)).to(y_ours)
    (y_ours * upstream).sum().backward()
    (y_theirs * upstream).sum().backward()
    gradients = [(a.grad - b.grad).abs().max().item() for a, b in zip(*copies) if a.requires_grad]
    return {"output": (y_ours - y_theirs).abs().max().item(), "gradient": max(gradients, default=0.0)}
