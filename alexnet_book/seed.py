"""The seed document: the "AlexNet" listing the book was commissioned from, and why it fails (§3.1–§3.5, §4.2).

``resources/alexnet-seed.txt`` is the seed document verbatim (``SEED_DOCUMENT``): a short summary of the paper
with a PyTorch listing.  ``SEED_LISTING`` is its code, ``SEED_TEXT`` the prose after it.  The listing's faults:
neither ``nn.Sequential(`` is closed, so it does not parse; no convolution is padded, so the maps shrink until
``Linear(256 * 6 * 6, 4096)`` cannot apply; there is no ReLU and no dropout; LRN follows each convolution
directly instead of its ReLU; nothing is grouped, so there are no towers.  Its text gives the LRN exponent
β = 1.5 (the paper and the listing: 0.75) and writes the sum with α/n where the paper prints α.

``check_seed_listing()`` shows each fault by running code, not by prose; ``seed_shapes()`` sets the seed's
shapes beside the corrected network's (``AlexNet()``).
"""
from __future__ import annotations

import re
from importlib import resources

import torch
from torch import nn

from . import paper
from .layers import LocalResponseNorm, lrn_constants
from .model import AlexNet

SEED_DOCUMENT = resources.files(__package__).joinpath("resources/alexnet-seed.txt").read_bytes().decode("utf-8")
_listing = re.search(r"^import torch\n.*?^ +return x\n", SEED_DOCUMENT, re.S | re.M)
SEED_LISTING = _listing.group(0)
LISTING_FIRST_LINE = SEED_DOCUMENT.count("\n", 0, _listing.start()) + 1  # its first line in the document
SEED_TEXT = SEED_DOCUMENT[_listing.end():].strip()

OPENERS, CLOSERS = "([{", ")]}"
LRNS = (nn.LocalResponseNorm, LocalResponseNorm)  # torch's (the seed's) and the book's (§3.3)
STAGES = ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5", "fc6", "fc7", "fc8")


# ------------------------------------------------------------------------------------ reading the listing

def unclosed_brackets(text: str) -> list[tuple[str, int]]:
    """Brackets opened and never closed, as (bracket, line number); raises ValueError on a stray closer."""
    stack: list[tuple[str, int]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        for ch in line.split("#", 1)[0]:  # the listing has no '#' or brackets inside strings
            if ch in OPENERS:
                stack.append((ch, lineno))
            elif ch in CLOSERS:
                if not stack or OPENERS.index(stack[-1][0]) != CLOSERS.index(ch):
                    raise ValueError(f"line {lineno}: {ch!r} closes nothing that is open")
                stack.pop()
    return stack


def close_brackets(text: str, lines: tuple[int, ...] | None = None) -> str:
    """The smallest repair: close each unclosed bracket (or those opened on ``lines``) where its block ends.

    A bracket's block ends before the next line indented no deeper than the line that opened it; the closer
    goes on its own line, at that line's indentation, after the block's last non-blank line.
    """
    closing = {n: CLOSERS[OPENERS.index(b)] for b, n in unclosed_brackets(text) if lines is None or n in lines}
    out: list[str] = []
    waiting: list[tuple[str, int]] = []  # (closer, indentation) of brackets opened and not yet closed

    def close_one():
        closer, indent = waiting.pop()
        last = max(i for i, line in enumerate(out) if line.strip())
        out.insert(last + 1, " " * indent + closer)

    for lineno, line in enumerate(text.splitlines(), start=1):
        indent = len(line) - len(line.lstrip())
        while line.strip() and waiting and indent <= waiting[-1][1]:
            close_one()
        out.append(line)
        if lineno in closing:
            waiting.append((closing[lineno], indent))
    while waiting:
        close_one()
    return "\n".join(out) + "\n"


def numbered_listing(text: str = SEED_LISTING, first_line: int = LISTING_FIRST_LINE) -> str:
    """A listing with its document line numbers in the margin, as the faults cite them."""
    return "\n".join(f"{n:3d}  {line}".rstrip() for n, line in enumerate(text.splitlines(), start=first_line))


def compile_error(text: str, first_line: int = 1) -> SyntaxError | None:
    """The SyntaxError ``compile()`` raises for a listing, or None when it compiles; ``first_line`` numbers the
    lines as in the document (``LISTING_FIRST_LINE`` for the seed's listing)."""
    try:
        compile("\n" * (first_line - 1) + text, "<seed listing>", "exec")
    except SyntaxError as error:
        return error
    return None


def build_seed_model(text: str | None = None, num_classes: int = 1000) -> nn.Module:
    """The seed's ``AlexNet`` from a listing (default: the seed's, brackets closed minimally); eval mode.

    A listing that does not compile raises its SyntaxError, as the seed's own does.
    """
    code = compile(close_brackets(SEED_LISTING) if text is None else text, "<seed listing>", "exec")
    namespace: dict = {}
    exec(code, namespace)  # the seed document shipped with the package, not user input
    return namespace["AlexNet"](num_classes=num_classes).eval()


def stage_names(model: nn.Module) -> dict[nn.Module, str]:
    """Each leaf module's name in the paper's terms: its own name (``conv1``, ``relu1``, ``fc6``), or, for an
    index like ``features.3``, convN / poolN / lrnN / reluN by the convolution it follows and fc6–fc8 in order."""
    names, conv, fc = {}, 0, 5
    for name, module in model.named_modules():
        if not name or list(module.children()):
            continue
        own = name.rsplit(".", 1)[-1]
        if isinstance(module, nn.Conv2d):
            conv += 1
        if isinstance(module, nn.Linear):
            fc += 1
        if not own.isdigit():
            names[module] = own
        elif isinstance(module, nn.Conv2d):
            names[module] = f"conv{conv}"
        elif isinstance(module, nn.Linear):
            names[module] = f"fc{fc}"
        else:
            kind = {nn.MaxPool2d: "pool", nn.LocalResponseNorm: "lrn", nn.ReLU: "relu", nn.Dropout: "dropout"}
            names[module] = kind.get(type(module), type(module).__name__.lower()) + str(conv if fc == 5 else fc)
    return names


def trace_shapes(model: nn.Module, input_size: int = paper.INPUT_SIZE) -> "pandas.DataFrame":
    """Run one zero image through ``model`` with a hook on every leaf layer: its input and output shapes, in
    call order, up to the layer that fails, whose row holds the error (the rest never run)."""
    import pandas as pd

    names, rows, hooks = stage_names(model), [], []

    def before(module, inputs):
        rows.append(dict(layer=names[module], type=type(module).__name__, input=tuple(inputs[0].shape[1:]),
                         output=None, error=""))

    def after(module, inputs, output):
        rows[-1]["output"] = tuple(output.shape[1:])

    for module in names:
        hooks += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, input_size, input_size))
    except RuntimeError as error:
        if not rows or rows[-1]["output"] is not None:  # failed between layers (in forward itself)
            rows.append(dict(layer="forward", type="", input=None, output=None, error=""))
        rows[-1]["error"] = f"RuntimeError: {str(error).splitlines()[0]}"
    finally:
        for hook in hooks:
            hook.remove()
    return pd.DataFrame(rows, columns=["layer", "type", "input", "output", "error"])


def seed_shapes(corrected: nn.Module | None = None, sizes: tuple[int, ...] = (224, 227)) -> "pandas.DataFrame":
    """The seed network's output shape at each stage beside the corrected network's (``AlexNet()``), per input
    size; where the seed fails, what the failing layer was handed; '' for stages it never reaches."""
    import pandas as pd

    columns = {}
    net = corrected if corrected is not None else AlexNet().eval()
    for label, model in (("seed", build_seed_model()), ("AlexNet()", net)):
        for size in sizes:
            trace = trace_shapes(model, size).set_index("layer")
            cells = []
            for stage in STAGES:
                if stage not in trace.index:
                    cells.append("")
                elif trace.loc[stage, "error"]:
                    cells.append(f"fails: handed {trace.loc[stage, 'input']}")
                else:
                    cells.append(trace.loc[stage, "output"])
            columns[f"{label} {size}×{size}"] = cells
    return pd.DataFrame(columns, index=pd.Index(STAGES, name="stage"))


def _of(model: nn.Module, kind: type | tuple[type, ...]) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


def _lines(numbers) -> str:
    return ", ".join(str(n + LISTING_FIRST_LINE - 1) for n in numbers)


# ------------------------------------------------------------------------------- one function per fault
# Each returns one row: fault, seed (what the seed says), paper (what the paper and AlexNet() say),
# demonstrated_by (the code that runs), result (what it printed) and shown (True when the run shows the fault).

def fault_does_not_parse() -> dict:
    """Neither ``nn.Sequential(`` is closed: compile() fails, still fails with one closed, passes with both."""
    def outcome(error):
        return "compiles" if error is None else f"SyntaxError: {error.msg} (line {error.lineno})"

    opened = [n for _, n in unclosed_brackets(SEED_LISTING)]
    as_written = compile_error(SEED_LISTING, LISTING_FIRST_LINE)
    # once a line is added, the numbers below it are the repaired listing's, not the document's
    one_closed = compile_error(close_brackets(SEED_LISTING, lines=tuple(opened[:1])), LISTING_FIRST_LINE)
    both_closed = compile_error(close_brackets(SEED_LISTING), LISTING_FIRST_LINE)
    return dict(fault="the listing does not parse",
                seed=f"'nn.Sequential(' opened on document lines {_lines(opened)}, never closed",
                paper="a network that builds: AlexNet()",
                demonstrated_by="compile(SEED_LISTING); compile(close_brackets(SEED_LISTING[, lines]))",
                result=f"as written: {outcome(as_written)}; the first closed (a line added): {outcome(one_closed)}; "
                       f"both closed ({len(opened)} lines added): {outcome(both_closed)}",
                shown=len(opened) == 2 and as_written is not None and one_closed is not None
                and both_closed is None)


def fault_no_padding(seed: nn.Module) -> dict:
    """No padding: the maps shrink until fc6, ``Linear(256 * 6 * 6, 4096)``, is handed too few numbers."""
    pads = [m.padding for m in _of(seed, nn.Conv2d)]
    fc6 = _of(seed, nn.Linear)[0]
    found = []
    for size in (224, 227):
        trace = trace_shapes(seed, size).set_index("layer")
        pool5 = trace.loc["pool5", "output"]
        handed = trace.loc["fc6", "input"][0]
        found.append((size, pool5, handed, trace.loc["fc6", "error"]))
    return dict(fault="no padding: the maps shrink until fc6 cannot apply",
                seed=f"padding {', '.join(map(str, sorted(set(pads))))} in all {len(pads)} Conv2d; "
                     f"Linear({fc6.in_features}, {fc6.out_features})",
                paper="padding " + ", ".join(f"{name} {pad}" for name, _, _, _, pad, _ in paper.CONV_LAYERS)
                      + ": pool5 256×6×6 = 9216 inputs to fc6 (§3.5)",
                demonstrated_by="trace_shapes(build_seed_model(), 224 and 227)",
                result="; ".join(f"{s}×{s}: pool5 {'×'.join(map(str, p))}, fc6 handed {h} of {fc6.in_features}"
                                 f" → {e or 'no error'}" for s, p, h, e in found),
                shown=all(e.startswith("RuntimeError") and h != fc6.in_features for _, _, h, e in found))


def fault_no_relu_no_dropout(seed: nn.Module, net: nn.Module) -> dict:
    """No ReLU, no dropout: count the module types; without them the three FC layers are one affine map."""
    counts = {kind.__name__: len(_of(seed, kind)) for kind in (nn.ReLU, nn.Dropout)}
    ours = {kind.__name__: len(_of(net, kind)) for kind in (nn.ReLU, nn.Dropout)}
    gen = torch.Generator().manual_seed(0)
    x, y = (torch.randn(2, 9216, generator=gen) for _ in range(2))
    f = seed.classifier
    with torch.no_grad():
        affine = (f(x + y) - f(x) - f(y) + f(torch.zeros_like(x))).abs().max().item() / f(x).abs().max().item()
    claims = "the use of ReLU" in SEED_TEXT and "dropout regularization" in SEED_TEXT
    return dict(fault="no ReLU, no dropout",
                seed=("the text claims ReLU and dropout; " if claims else "") + "the listing has "
                     + ", ".join(f"{n} {k}" for k, n in counts.items()),
                paper=f"ReLU after every conv and fc6, fc7 (§3.1); dropout {paper.DROPOUT:g} on fc6, fc7 (§4.2): "
                      "AlexNet() has " + ", ".join(f"{n} {k}" for k, n in ours.items()),
                demonstrated_by="count module types; test the seed's classifier for additivity",
                result=f"{counts['ReLU']} ReLU, {counts['Dropout']} Dropout; fc6→fc8 is affine: "
                       f"f(x+y) − f(x) − f(y) + f(0) = {affine:.0e} of |f(x)|",
                shown=counts == {"ReLU": 0, "Dropout": 0} and affine < 1e-4)


def _first_block(model: nn.Module) -> list[str]:
    """The layers of ``features`` up to pool1, by their paper names (conv1 → ... → pool1)."""
    names = stage_names(model)
    order = [names[m] for m in model.features if names[m] != "pad"]
    return order[:order.index("pool1") + 1]


def _before_lrn(model: nn.Module) -> list[str]:
    """The type of the layer right before each LRN in ``features``."""
    layers = list(model.features)
    return [type(layers[i - 1]).__name__ for i, m in enumerate(layers) if isinstance(m, LRNS)]


def fault_lrn_before_relu(seed: nn.Module, net: nn.Module) -> dict:
    """LRN directly after each convolution, where the paper puts it after the ReLU."""
    seed_before, our_before = _before_lrn(seed), _before_lrn(net)
    return dict(fault="LRN directly after the convolution, not after its ReLU",
                seed=f"LRN after {', '.join(seed_before)}",
                paper="conv → ReLU → LRN → pool: \"after applying the ReLU nonlinearity\" (§3.3); "
                      f"AlexNet(): LRN after {', '.join(our_before)}",
                demonstrated_by="the order of the modules in features",
                result=f"seed {' → '.join(_first_block(seed))}; AlexNet() {' → '.join(_first_block(net))}",
                shown=seed_before == ["Conv2d", "Conv2d"] and set(our_before) == {"ReLU"})


def fault_no_groups(seed: nn.Module, net: nn.Module) -> dict:
    """No groups, so no towers: every conv reads all maps, and LRN's window crosses from one GPU's maps to the
    other's."""
    seed_groups = [m.groups for m in _of(seed, nn.Conv2d)]
    paper_groups = [groups for *_, groups in paper.CONV_LAYERS]
    our_groups = [m.groups for m in _of(net, nn.Conv2d)]
    seed_conv = sum(p.numel() for m in _of(seed, nn.Conv2d) for p in m.parameters())
    our_conv = sum(p.numel() for m in _of(net, nn.Conv2d) for p in m.parameters())
    x = torch.rand(1, 96, 1, 1, generator=torch.Generator().manual_seed(0)) + 1.0
    y = x.clone()
    y[:, 47] += 10.0  # the last map of tower 1
    leaks = []
    for lrn in (_of(seed, LRNS)[0], _of(net, LRNS)[0]):
        with torch.no_grad():
            leaks.append((lrn(y) - lrn(x))[:, 48:].abs().max().item())
    return dict(fault="no groups: no towers",
                seed=f"groups {seed_groups}; one LocalResponseNorm over all channels",
                paper=f"groups {paper_groups}: conv2, conv4, conv5 read their own GPU's maps (§3.2); "
                      "LRN within each GPU",
                demonstrated_by="the groups of each Conv2d; conv parameters; LRN after changing map 47",
                result=f"seed groups {seed_groups}, AlexNet() {our_groups}; conv parameters {seed_conv:,} "
                       f"vs {our_conv:,}; map 47 (tower 1) changes map 48+ (tower 2) by {leaks[0]:.1e} "
                       f"in the seed, {leaks[1]:g} in AlexNet()",
                shown=set(seed_groups) == {1} and our_groups == paper_groups and leaks[0] > 0 and leaks[1] == 0)


def text_lrn() -> dict:
    """The LRN constants of the seed text's formula: k, n, alpha, beta and whether the sum is scaled by α/n."""
    number = r"(\d+(?:\.\d+)?)"
    latex = dict(k=r"k = " + number, n=r"n = (\d+)", alpha=r"\\alpha = 10\^\{(-?\d+)\}", beta=r"\\beta = " + number)
    found = {name: re.search(pattern, SEED_TEXT).group(1) for name, pattern in latex.items()}
    return dict(k=float(found["k"]), n=int(found["n"]), alpha=10.0 ** int(found["alpha"]),
                beta=float(found["beta"]), alpha_over_n=r"\frac{\alpha}{n} \sum" in SEED_TEXT)


def fault_text_beta(seed: nn.Module) -> dict:
    """The text's β = 1.5 against the listing's and the paper's 0.75."""
    text_beta = text_lrn()["beta"]
    code_betas = sorted({m.beta for m in _of(seed, LRNS)})
    a = torch.ones(1, paper.LRN["n"], 1, 1)  # a small activity: the divisor is ≈ k
    with torch.no_grad():
        scale = (LocalResponseNorm(beta=text_beta)(a) / LocalResponseNorm()(a))[0, 2].item()
    return dict(fault=f"LRN β = {text_beta:g} in the text",
                seed=f"text β = {text_beta:g}; listing beta = {', '.join(f'{b:g}' for b in code_betas)}",
                paper=f"β = {paper.LRN['beta']:g} (§3.3)",
                demonstrated_by="β read from the text's formula and from the listing's modules",
                result=f"text {text_beta:g} ≠ listing {code_betas[0]:g} = paper {paper.LRN['beta']:g}: "
                       f"at small activity each response scaled by a further {scale:.3f} "
                       f"(≈ k^-{text_beta - paper.LRN['beta']:g})",
                shown=text_beta != paper.LRN["beta"] and code_betas == [paper.LRN["beta"]]
                and text_beta == paper.SEED_LRN_BETA)


def fault_text_alpha(seed: nn.Module) -> dict:
    """The text's α/n sum (torch's and the authors' convention) against the α the paper prints."""
    text = text_lrn()
    # torch's alpha multiplies the window's mean, so alpha / n is the coefficient of each squared activity
    convention = "authors" if text["alpha_over_n"] else "printed"
    per_square = lrn_constants(convention, n=text["n"], alpha=text["alpha"], k=text["k"])[1] / text["n"]
    printed_alpha = lrn_constants("printed")[1] / paper.LRN["n"]
    x = torch.rand(1, 96, 4, 4, generator=torch.Generator().manual_seed(0)) * 100
    lrn = _of(seed, LRNS)[0]
    with torch.no_grad():
        y = lrn(x)
        diff = {c: ((y - LocalResponseNorm(convention=c)(x)).abs().max() / y.abs().max()).item()
                for c in ("authors", "printed")}
    return dict(fault="the text's α/n against the paper's printed α",
                seed=f"text: (α/n)·Σ a², α = {text['alpha']:g}, n = {text['n']}; "
                     f"listing: LocalResponseNorm(alpha={lrn.alpha:g})",
                paper=f"printed: α·Σ a², α = {paper.LRN['alpha']:g} (§3.3); the authors' code divides by n",
                demonstrated_by="text's coefficient of Σ a²; the listing's LRN against "
                                "LocalResponseNorm(convention='authors' | 'printed')",
                result=f"text {per_square:g} per squared activity, printed {printed_alpha:g} "
                       f"({printed_alpha / per_square:g}×); the listing's LRN = 'authors' (relative difference "
                       f"{diff['authors']:.0e}), ≠ 'printed' ({diff['printed']:.2f})",
                shown=text["alpha_over_n"] and per_square != printed_alpha
                and diff["authors"] < 1e-5 < diff["printed"])


def check_seed_listing(corrected: nn.Module | None = None) -> "pandas.DataFrame":
    """Each fault of the seed document's listing and text, demonstrated by running code (§3.1–§3.5, §4.2).

    One row per fault: ``fault``, ``seed`` (what the seed says), ``paper`` (what the paper and the corrected
    network, ``AlexNet()`` or ``corrected``, say), ``demonstrated_by``, ``result`` and ``shown`` (whether the
    run showed the fault).  ``seed_shapes`` sets the two networks' shapes side by side.
    """
    import pandas as pd

    seed, net = build_seed_model(), (corrected if corrected is not None else AlexNet()).eval()
    rows = [fault_does_not_parse(), fault_no_padding(seed), fault_no_relu_no_dropout(seed, net),
            fault_lrn_before_relu(seed, net), fault_no_groups(seed, net), fault_text_beta(seed),
            fault_text_alpha(seed)]
    return pd.DataFrame(rows)


def text_numbers() -> "pandas.DataFrame":
    """The seed text's error rates against the paper's: top-1/top-5 of the CNN (Table 1), LRN and overlapping
    pooling's reductions (§3.3, §3.4).  They agree; the text's faults are its LRN formula's."""
    import pandas as pd

    pairs = [tuple(map(float, p)) for p in re.findall(r"(\d+\.\d+)% and (\d+\.\d+)%", SEED_TEXT)]
    claim = paper.CLAIM
    expected = [("top-1 / top-5 error on ILSVRC-2010 (Table 1)", next(r[1:] for r in paper.TABLE1 if r[0] == "CNN")),
                ("LRN reduces them by (§3.3)", (-claim["lrn"].top1, -claim["lrn"].top5)),
                ("overlapping pooling by (§3.4)", (-claim["overlapping_pool"].top1, -claim["overlapping_pool"].top5))]
    if len(pairs) != len(expected):
        raise ValueError(f"expected {len(expected)} pairs of error rates in the seed text, found {len(pairs)}")
    rows = [dict(number=what, text=f"{t[0]:.1f}% / {t[1]:.1f}%", paper=f"{p[0]:.1f}% / {p[1]:.1f}%", agree=t == p)
            for (what, p), t in zip(expected, pairs)]
    return pd.DataFrame(rows)
