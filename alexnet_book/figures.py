"""The paper's figures re-drawn from any network (Figs. 1, 3, 4, §6.1), and their export to ``figures/``.

Every figure of the book goes through ``save_figure``: PNG (200 dpi), SVG and PDF, written atomically, with
a line in ``figures/index.json`` saying what it shows, which paper figure it reproduces, which notebook and
data drew it, and from which checkpoint or config.  ``alexnet-book figures`` regenerates the figures the
library draws; files in ``figures/`` are produced by that command and the notebooks, never edited by hand.
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path

import matplotlib

# One look for every figure in the book: small, clean, readable when printed beside the paper.
BOOK_STYLE = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "figure.constrained_layout.use": True,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.prop_cycle": matplotlib.cycler(color=["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                                "#8c564b", "#e377c2", "#7f7f7f"]),
    "legend.frameon": False,
    "legend.fontsize": 8,
    "lines.linewidth": 1.5,
    "image.interpolation": "nearest",
    "image.cmap": "viridis",
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.05,
    # deterministic SVG ids, so a regenerated figure does not churn in git
    "svg.hashsalt": "alexnet-book",
    "svg.fonttype": "path",
    "pdf.fonttype": 42,
}
PNG_DPI = 200
FORMATS = ("png", "svg", "pdf")
# No dates or software versions inside the files: the same figure gives the same bytes.
_METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None},
             "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None}}


def book_style():
    """The book's matplotlib style as a context manager: ``with book_style(): fig, ax = plt.subplots()``."""
    return matplotlib.rc_context(BOOK_STYLE)


def figures_dir(path: str | Path | None = None) -> Path:
    """Where figures go: ``path``, else env ``ALEXNET_BOOK_FIGURES``, else ``<project root>/figures``.

    The project root is the folder holding ``pyproject.toml`` above the package; outside a checkout
    (an installed package) the figures go to ``./figures``.
    """
    if path is not None:
        return Path(path)
    if os.environ.get("ALEXNET_BOOK_FIGURES"):
        return Path(os.environ["ALEXNET_BOOK_FIGURES"])
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file():
        return root / "figures"
    return Path.cwd() / "figures"


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; figures are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(folder: Path):
    """Hold an exclusive lock on ``folder`` (POSIX); notebooks run in parallel may update the manifest at once."""
    try:
        import fcntl
        fd = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):  # Windows: no lock, the write itself is still atomic
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def read_index(figures_dir_: str | Path | None = None) -> dict:
    """The manifest ``figures/index.json`` as a dict (an empty one when there is none yet)."""
    path = figures_dir(figures_dir_) / "index.json"
    if not path.exists():
        return {"figures": {}}
    try:
        index = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); delete it and run `alexnet-book figures`") from None
    index.setdefault("figures", {})
    return index


def save_figure(fig, name: str, *, caption: str, paper_figure: str | None = None, notebook: str | None = None,
                data: str | None = None, config_hash: str | None = None,
                figures_dir: str | Path | None = None) -> list[Path]:
    """Save ``fig`` as ``<name>.png`` (200 dpi), ``.svg`` and ``.pdf`` and record it in ``index.json``.

    Every file is written atomically (temp file + rename).  The manifest entry holds the files, the caption,
    the paper figure it reproduces (e.g. "Fig. 3"), the notebook and data set that drew it, the checkpoint or
    config hash, the date and the library version.  The date is kept when the files come out byte-identical,
    so regenerating an unchanged figure changes nothing in git.
    """
    from . import __version__

    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError(f"figure name {name!r} must be a plain file stem such as 'fig3_conv1_filters'")
    out = _figures_dir(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths, digests = [], {}
    with matplotlib.rc_context({"svg.hashsalt": BOOK_STYLE["svg.hashsalt"]}):
        for fmt in FORMATS:
            buffer = io.BytesIO()
            fig.savefig(buffer, format=fmt, dpi=PNG_DPI, metadata=_METADATA[fmt])
            data_bytes = buffer.getvalue()
            path = out / f"{name}.{fmt}"
            _atomic_write(path, data_bytes)
            paths.append(path)
            digests[path.name] = hashlib.sha256(data_bytes).hexdigest()

    with _locked(out):
        index = read_index(out)
        old = index["figures"].get(name, {})
        entry = {
            "files": sorted(digests),
            "caption": caption,
            "paper_figure": paper_figure,
            "notebook": notebook,
            "data": data,
            "config_hash": config_hash,
            "sha256": digests,
            "date": datetime.date.today().isoformat(),
            "library_version": __version__,
        }
        if old.get("sha256") == digests and {k: v for k, v in old.items() if k != "date"} == \
                {k: v for k, v in entry.items() if k != "date"}:
            entry["date"] = old.get("date", entry["date"])  # unchanged figure: no churn
        index["figures"][name] = entry
        index["figures"] = dict(sorted(index["figures"].items()))
        _atomic_write(out / "index.json", (json.dumps(index, indent=2, sort_keys=True) + "\n").encode())
    return paths


_figures_dir = figures_dir  # save_figure's keyword argument shadows the function's name inside it
