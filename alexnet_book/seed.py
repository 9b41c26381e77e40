"""The seed's code: a naive ``nn.Sequential`` AlexNet and a demonstration of why it fails (§3.3, §3.5).

RECONSTRUCTION.  The book's brief quoted a seed listing that is not available in this repository; what we
know of it is its errata (PAPER.md §1-§2, ``paper.ERRATA``): its brackets do not balance; without padding the
maps shrink to 1×1 at pool5, so ``Linear(256 * 6 * 6, ...)`` cannot apply; it has no ReLU and no dropout; and
the seed *text* gives the LRN exponent as β = 1.5 where the paper and the seed *code* use 0.75.
``SEED_LISTING`` is a plausible listing reconstructed from those errata -- the paper's layer sizes written
straight into ``nn.Sequential`` -- with exactly those faults and no others that we added on purpose.  Its one
further departure, a single ``nn.LocalResponseNorm`` whose window crosses the towers, is what any
``nn.Sequential`` with torch's LRN does; PAPER.md §2 flags it, so ``check_seed_listing`` reports it too.

``check_seed_listing()`` shows each fault by running code, not by assertion in prose, and sets beside it what
the corrected network (``AlexNet()``) does instead.
"""
from __future__ import annotations

import torch
from torch import nn

from . import paper
from .layers import LocalResponseNorm
from .model import AlexNet

# Reconstructed from the errata in PAPER.md; the original listing was not available.  Kept verbatim as text:
# it does not compile (one bracket is never closed), which is the first of its faults.
SEED_LISTING = '''\
import torch.nn as nn

# AlexNet (Krizhevsky et al., 2012), two GPUs as groups=2
model = nn.Sequential(
    nn.Conv2d(3, 96, kernel_size=11, stride=4),
    nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2),
    nn.MaxPool2d(kernel_size=3, stride=2),
    nn.Conv2d(96, 256, kernel_size=5, groups=2),
    nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2),
    nn.MaxPool2d(kernel_size=3, stride=2),
    nn.Conv2d(256, 384, kernel_size=3),
    nn.Conv2d(384, 384, kernel_size=3, groups=2),
    nn.Conv2d(384, 256, kernel_size=3, groups=2),
    nn.MaxPool2d(kernel_size=3, stride=2),
    nn.Flatten(),
    nn.Linear(256 * 6 * 6, 4096),
    nn.Linear(4096, 4096),
    nn.Linear(4096, 1000
)
'''

OPENERS, CLOSERS = "([{", ")]}"


def unclosed_brackets(text: str) -> list[tuple[str, int]]:
    """Brackets opened and never closed, as (bracket, line number); raises ValueError on a stray closer."""
    stack: list[tuple[str, int]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        for ch in line.split("#", 1)[0]:  # the listing has no '#' inside strings
            if ch in OPENERS:
                stack.append((ch, lineno))
            elif ch in CLOSERS:
                if not stack or OPENERS.index(stack[-1][0]) != CLOSERS.index(ch):
                    raise ValueError(f"line {lineno}: {ch!r} closes nothing that is open")
                stack.pop()
    return stack


def balance_brackets(text: str) -> str:
    """The listing with its unclosed brackets closed at the end, innermost first (the smallest repair)."""
    closers = "".join(CLOSERS[OPENERS.index(b)] for b, _ in reversed(unclosed_brackets(text)))
    return text.rstrip("\n") + ("\n" + closers if closers else "") + "\n"


def build_seed_model(text: str = SEED_LISTING) -> nn.Module:
    """Execute a listing and return the ``model`` it defines (SyntaxError if it does not compile)."""
    code = compile(text, "<seed listing>", "exec")
    namespace: dict = {}
    exec(code, namespace)  # our own constant text, not user input
    return namespace["model"]


def trace_shapes(model: nn.Sequential, input_size: int = paper.INPUT_SIZE) -> "pandas.DataFrame":
    """Feed a zero image through a Sequential layer by layer; record each output shape, or the error that stops it."""
    import pandas as pd

    rows = []
    x = torch.zeros(1, 3, input_size, input_size)
    with torch.no_grad():
        for i, layer in enumerate(model):
            try:
                x = layer(x)
            except RuntimeError as error:
                rows.append(dict(index=i, layer=repr(layer), output=None, error=str(error).splitlines()[0]))
                break
            rows.append(dict(index=i, layer=repr(layer), output=tuple(x.shape[1:]), error=""))
    return pd.DataFrame(rows)


def check_seed_listing(input_size: int = paper.INPUT_SIZE, corrected: nn.Module | None = None) -> "pandas.DataFrame":
    """Demonstrate each fault of the seed listing and what the corrected network does instead (§3.3, §3.5).

    Returns one row per fault: ``fault``, ``source`` (where the fault is recorded), ``evidence`` (what running
    the seed shows) and ``corrected`` (what ``AlexNet()``, or ``corrected`` if given, does).
    """
    import pandas as pd

    net = corrected if corrected is not None else AlexNet()
    rows = []

    # 1. Unbalanced brackets: the text does not compile.
    try:
        compile(SEED_LISTING, "<seed listing>", "exec")
        compiled = "compiles"
    except SyntaxError as error:
        compiled = f"SyntaxError: {error.msg} (line {error.lineno})"
    open_ = unclosed_brackets(SEED_LISTING)
    rows.append(dict(fault="unbalanced brackets", source="paper.ERRATA",
                     evidence=f"{compiled}; unclosed: " + ", ".join(f"{b!r} from line {n}" for b, n in open_),
                     corrected=f"AlexNet() builds: {sum(p.numel() for p in net.parameters()):,} parameters"))

    # 2. No padding: maps shrink to 1×1 at pool5 and Linear(256*6*6) cannot apply.
    seed = build_seed_model(balance_brackets(SEED_LISTING))
    trace = trace_shapes(seed, input_size)
    shapes = trace[trace["error"] == ""]
    pool5 = shapes[shapes["layer"].str.startswith("MaxPool2d")]["output"].iloc[-1]
    failed = trace[trace["error"] != ""]
    error = failed["error"].iloc[0] if len(failed) else "no error"
    net.eval()
    with torch.no_grad():
        pooled = net.features(torch.zeros(1, 3, input_size, input_size))
        logits = net.classifier(torch.flatten(pooled, 1))
    rows.append(dict(fault="no padding: pool5 shrinks, Linear(256*6*6) cannot apply", source="paper.ERRATA",
                     evidence=f"{input_size}×{input_size} input → pool5 {pool5[0]}×{pool5[1]}×{pool5[2]}; "
                              f"Linear(9216, 4096): RuntimeError: {error}",
                     corrected=f"pool5 {tuple(pooled.shape[1:])} = {pooled[0].numel()} → fc6; "
                               f"logits {tuple(logits.shape)}"))

    # 3. No ReLU, no dropout.
    def count(model, kind):
        return sum(isinstance(m, kind) for m in model.modules())

    rows.append(dict(fault="no ReLU, no dropout", source="paper.ERRATA",
                     evidence=f"{count(seed, nn.ReLU)} ReLU, {count(seed, nn.Dropout)} Dropout modules: "
                              "the stack is linear between pools",
                     corrected=f"{count(net, nn.ReLU)} ReLU (§3.1), {count(net, nn.Dropout)} Dropout "
                               f"p={net.options['dropout']:g} on fc6 and fc7 outputs (§4.2)"))

    # 4. β: the seed text says 1.5, the seed code and the paper 0.75.
    seed_betas = sorted({m.beta for m in seed.modules() if isinstance(m, nn.LocalResponseNorm)})
    a = torch.full((1, 5, 1, 1), 1.0)
    ratio = (nn.functional.local_response_norm(a, 5, 1e-4, paper.SEED_LRN_BETA, 2.0)
             / nn.functional.local_response_norm(a, 5, 1e-4, paper.LRN["beta"], 2.0))[0, 2].item()
    net_betas = sorted({m.beta for m in net.modules() if isinstance(m, LocalResponseNorm)})
    rows.append(dict(fault=f"LRN β = {paper.SEED_LRN_BETA:g} in the seed text", source="paper.SEED_LRN_BETA",
                     evidence=f"seed code β = {', '.join(f'{b:g}' for b in seed_betas)}; text β = "
                              f"{paper.SEED_LRN_BETA:g} would scale responses by a further "
                              f"{ratio:.3f} (small activations: d ≈ k = 2, 2^-0.75)",
                     corrected=f"β = {', '.join(f'{b:g}' for b in net_betas)} (§3.3); "
                               f"AlexNet(lrn_beta={paper.SEED_LRN_BETA:g}) for the ablation"))

    # 5. (PAPER.md §2, not in the errata list) torch's LRN over all channels lets windows cross the towers.
    lrn = next(m for m in seed.modules() if isinstance(m, nn.LocalResponseNorm))
    x = torch.rand(1, 96, 1, 1) + 1.0
    y = x.clone()
    y[:, 47] += 10.0  # the last map of tower 1
    leak = (lrn(y) - lrn(x))[:, 48:].abs().max().item()
    ours = getattr(net.features, "lrn1", None)
    if ours is not None:
        half = net.features.conv1.out_channels // 2
        x = torch.rand(1, 2 * half, 1, 1) + 1.0
        y = x.clone()
        y[:, half - 1] += 10.0
        kept = f"changing map {half - 1} changes tower 2 by {(ours(y) - ours(x))[:, half:].abs().max().item():g}"
    else:
        kept = "no LRN in this network"
    rows.append(dict(fault="LRN window crosses the towers (not in the errata)", source="PAPER.md §2",
                     evidence=f"changing map 47 (tower 1) changes map 48 (tower 2) by up to {leak:.2e}",
                     corrected=f"LRN within {getattr(ours, 'towers', 1)} tower(s): {kept}"))
    return pd.DataFrame(rows)
