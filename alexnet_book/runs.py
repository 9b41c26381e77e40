"""Records of training runs (§5): config hashes, atomic checkpoints, a metrics log per run, a results store.

This is ground-floor code: it knows nothing of networks or data.  A run is identified by the hash of its
configuration; a checkpoint holds everything needed to continue it exactly; the metrics log is written as the
run goes; the results store keeps one row per finished run, so an identical run is looked up, not repeated.

Several processes may share an ``out_dir``: the results store is read, changed and rewritten under a lock, and a
run folder has one owner at a time (``run_lock``), so an identical run started meanwhile waits for it.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import hashlib
import io
import json
import os
import pickle
import socket
import sys
import warnings
from pathlib import Path

import torch

from .files import atomic_write_bytes, atomic_write_text, file_lock, machine, project_root


def config_hash(config) -> str:
    """A stable 12-hex-digit hash of a dataclass or dict: SHA-256 of its JSON with sorted keys."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    text = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@contextlib.contextmanager
def run_lock(run_dir):
    """Own a run folder while a run trains in it: a second process asking for the same folder waits here.

    The lock file is ``.<folder name>.lock`` beside the folder (so a run that fails before it starts leaves no
    empty folder behind); ``.<folder name>.owner`` says which process holds it.  The waiting process says once, on
    stderr, which folder it waits for and who owns it.  A killed owner's lock is released by the system.
    """
    from filelock import FileLock, Timeout

    run_dir = Path(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(run_dir.with_name(f".{run_dir.name}.lock")))
    note = run_dir.with_name(f".{run_dir.name}.owner")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            owner = note.read_text().strip() or "another process"
        except OSError:
            owner = "another process"
        print(f"alexnet-book: {run_dir} is being trained by {owner}; waiting for it to finish (Ctrl-C stops "
              f"waiting)", file=sys.stderr, flush=True)
        lock.acquire()
    try:
        atomic_write_text(note, f"process {os.getpid()} on {socket.gethostname()} since "
                                f"{datetime.datetime.now().isoformat(timespec='seconds')}\n")
        yield
    finally:
        with contextlib.suppress(OSError):
            note.unlink()
        lock.release()


def save_checkpoint(path, state: dict) -> None:
    """Atomically save a checkpoint (tensors, numbers, strings, lists and dicts of them)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint without unpickling arbitrary objects (``weights_only=True``).

    A missing file raises FileNotFoundError; an empty, foreign, truncated or corrupt file raises a one-line
    ValueError naming the path and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint; train first (alexnet-book train ...) or check the path")
    ours = "point to a checkpoint.pt or model-*.pt written by alexnet-book train"
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise ValueError(f"{path}: an empty file (0 bytes), not a checkpoint; {ours}")
    if not head.startswith((b"PK\x03\x04", b"\x80")):  # torch.save writes a zip; old torch files are pickles
        raise ValueError(f"{path}: not a PyTorch file (it begins {head!r}, neither a zip nor a pickle); {ours}")
    try:
        with warnings.catch_warnings():  # a foreign pickle's protocol warning; the ValueError below says it all
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:  # objects beyond tensors and plain values: refused, never unpickled
        if "weights_only" not in str(error) and "Weights only" not in str(error):
            raise ValueError(f"{path}: not a readable checkpoint ({_first_sentence(error)}); {ours}") from None
        raise ValueError(f"{path}: refused by the safe loader (a pickle holding objects other than tensors, "
                         f"numbers and strings, or not torch.save's format), and not unpickled, since that could "
                         f"run code; {ours}") from None
    except Exception as error:  # truncated zip, damaged pickle, not a torch file at all
        raise ValueError(f"{path}: not a readable alexnet-book checkpoint ({_first_sentence(error)}); delete it "
                         f"and train again, or point to another file") from None
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{path}: not an alexnet-book checkpoint (no 'model' entry); delete it and train again, "
                         f"or {ours}")
    return state


def _first_sentence(error: Exception) -> str:
    """``Type: first sentence`` of an exception, on one line and without torch's advice to unpickle anyway."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    text = text.split(". ")[0].rstrip(".")
    if "weights_only" in text:
        text = "refused by the safe loader"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


RUNS_ENV = "ALEXNET_BOOK_RUNS"
DEFAULT_OUT_DIR = "runs"  # TrainConfig.out_dir's default: it stands for the book's one runs folder


def runs_dir(out_dir: str | Path | None = None) -> Path:
    """The folder for run folders and the results store (``results.jsonl``), the same for every entry point.

    ``out_dir`` None or ``"runs"`` (TrainConfig's default): ``$ALEXNET_BOOK_RUNS``, else ``<project root>/runs``
    -- whatever the working directory, so the notebooks (run from notebooks/), ``alexnet-book train``,
    ``evaluate`` and ``ablate`` share one store.  Any other ``out_dir`` is used as given.
    """
    if out_dir is not None and Path(out_dir) != Path(DEFAULT_OUT_DIR):
        return Path(out_dir)
    env = os.environ.get(RUNS_ENV)
    if env:
        return Path(env).expanduser()
    return project_root() / DEFAULT_OUT_DIR


def results_dir(path: str | Path | None = None) -> Path:
    """Where committed result tables live: ``path``, else env ``ALEXNET_BOOK_RESULTS``, else ``<project>/results``
    (the committed results folder beside the runs folder: the evidence and the ablation tables)."""
    if path is not None:
        return Path(path)
    if os.environ.get("ALEXNET_BOOK_RESULTS"):
        return Path(os.environ["ALEXNET_BOOK_RESULTS"])
    return project_root() / "results"


class MetricsLog:
    """The metrics of one run as a CSV file, one row appended (and flushed) per logging point.

    Columns: step, epoch, lr, train_loss, train_error, val_top1, val_top5, images_per_s, time (seconds since
    the run started), train_eval_error (eval-mode error on a fixed training subset, when measured).  Rows
    without a validation score leave val_top1/val_top5 empty.  ``truncate(n)`` keeps the first n rows: a resumed
    run drops what its killed predecessor logged after the last checkpoint.  A log begun with fewer columns (an
    older version) keeps its own header.
    """

    COLUMNS = ("step", "epoch", "lr", "train_loss", "train_error", "val_top1", "val_top5", "images_per_s", "time",
               "train_eval_error")

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.exists():
            atomic_write_text(self.path, ",".join(self.COLUMNS) + "\n")
        with open(self.path, newline="") as f:
            header = next(csv.reader(f), None)
        self.columns = tuple(header) if header and set(header) <= set(self.COLUMNS) else self.COLUMNS

    def __len__(self) -> int:
        with open(self.path, newline="") as f:
            return max(sum(1 for _ in csv.reader(f)) - 1, 0)

    def append(self, row: dict) -> None:
        unknown = set(row) - set(self.COLUMNS)
        if unknown:
            raise ValueError(f"{self.path}: unknown metrics columns {sorted(unknown)}; use {self.COLUMNS}")
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow(["" if row.get(c) is None else row[c] for c in self.columns])
            f.flush()

    def truncate(self, rows: int) -> None:
        with open(self.path, newline="") as f:
            lines = f.read().splitlines(keepends=True)
        atomic_write_text(self.path, "".join(lines[:rows + 1]))

    def read(self) -> "pandas.DataFrame":
        import pandas as pd

        return pd.read_csv(self.path)


class ResultsStore:
    """Finished runs, one JSON object per line: the table that notebooks and ablation tables read.

    A row holds config_hash, config (dict), data, seed, metrics (dict of final numbers), wall_s, machine,
    date and run_dir.  ``add`` rewrites the file atomically, replacing any row with the same hash; it holds the
    lock file ``.<name>.lock`` beside the store meanwhile, so processes adding at once lose no rows.
    """

    def __init__(self, path=None):
        self.path = Path(path) if path is not None else runs_dir() / "results.jsonl"

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(f".{self.path.name}.lock")

    def rows(self) -> list[dict]:
        if not self.path.exists():
            return []
        rows = []
        with open(self.path) as f:
            for number, line in enumerate(f, start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError:
                        raise ValueError(f"{self.path}: line {number} is not JSON; delete that line "
                                         f"(or the file) and the runs will be redone") from None
        return rows

    def find(self, config_hash) -> dict | None:
        """The finished run with this config hash, or None."""
        return next((row for row in reversed(self.rows()) if row.get("config_hash") == config_hash), None)

    def add(self, row: dict) -> None:
        if "config_hash" not in row:
            raise ValueError("a results row needs a 'config_hash'")
        row = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": machine(), **row}
        with file_lock(self.lock_path):  # read, change, rewrite: one process at a time
            rows = [r for r in self.rows() if r.get("config_hash") != row["config_hash"]] + [row]
            atomic_write_text(self.path, "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in rows))

    def table(self) -> "pandas.DataFrame":
        """One row per run: config_hash, config, data, seed, the final metrics as columns, wall_s, machine, date."""
        import pandas as pd

        records = []
        for row in self.rows():
            record = {k: v for k, v in row.items() if k != "metrics"}
            record.update(row.get("metrics", {}))
            records.append(record)
        front = ["config_hash", "config", "data", "seed"]
        df = pd.DataFrame(records)
        if df.empty:
            return pd.DataFrame(columns=front + ["wall_s", "machine", "date"])
        return df[[c for c in front if c in df] + [c for c in df if c not in front]]
