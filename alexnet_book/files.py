"""Files and I/O, each helper once: where the project and its data live, downloads, digests, atomic writes,
locks between processes, and a description of this machine.

Ground-floor code: it imports nothing from the rest of the package, so every other module may use it (the
results store, the data sets, the weights, the figures, the commands).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import tempfile
from pathlib import Path


# ---------------------------------------------------------------------------------------------------------------
# Where things are


def project_root() -> Path:
    """The project root: the folder holding pyproject.toml above this package, else the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def data_dir() -> Path:
    """Where downloads, generated sets and caches live: $ALEXNET_BOOK_DATA, else <project root>/data."""
    env = os.environ.get("ALEXNET_BOOK_DATA")
    return Path(env).expanduser() if env else project_root() / "data"


# ---------------------------------------------------------------------------------------------------------------
# Atomic writes and locks


def _umask() -> int:
    """The process's umask (read without changing it where /proc says it; else set and restored at once)."""
    try:
        with open("/proc/self/status") as f:
            return int(next(line for line in f if line.startswith("Umask:")).split()[1], 8)
    except (OSError, StopIteration, ValueError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never half of one.

    The bytes go to a temporary file in the same folder, are flushed to disk, and the file is renamed over
    ``path`` (``os.replace`` is atomic on one file system).  The file gets the mode a plain ``open`` would give
    it (0666 less the umask: usually 0644), not the temporary file's private 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.chmod(tmp, 0o666 & ~_umask())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj, *, indent: int = 1) -> None:
    """``obj`` as JSON (``indent`` spaces, no trailing newline), written atomically."""
    atomic_write_text(path, json.dumps(obj, indent=indent))


@contextlib.contextmanager
def file_lock(path, timeout: float = -1):
    """Hold an exclusive lock between processes while the block runs (POSIX flock, Windows LockFileEx).

    ``path`` is the lock file, created (with its folder) if missing and left in place afterwards; put it beside
    what it guards.  ``timeout`` in seconds (-1: wait as long as it takes) raises ``filelock.Timeout``.
    """
    from filelock import FileLock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path), timeout=timeout):
        yield


# ---------------------------------------------------------------------------------------------------------------
# Digests and downloads


def digest(path: str | Path, algorithm: str) -> str:
    """Hex digest of a file (``algorithm``: any of hashlib's names), read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _matches(path: Path, expected: dict[str, str]) -> tuple[str, str, str] | None:
    """The first (algorithm, got, want) whose digest of ``path`` does not start with ``want``; None when all do."""
    for algorithm, want in expected.items():
        got = digest(path, algorithm)
        if not got.startswith(want.lower()):
            return algorithm, got, want
    return None


def download(url: str, dest: str | Path, *, md5: str | None = None, sha256: str | None = None,
             sha1: str | None = None, timeout: float = 30.0, progress: bool = True, chunk: int = 1 << 20,
             partial_suffix: str = ".partial", by_hand: str | None = None,
             again: str = "download it again") -> Path:
    """Download ``url`` to ``dest``, resuming a partial ``dest.partial`` (HTTP Range), verifying its checksums.

    Every digest given (md5, sha256, sha1) is checked over the whole file; a published prefix of one (at least 8
    hex digits, as torchvision's file names carry) checks that prefix.  The file appears at ``dest`` only when
    complete and verified; an existing ``dest`` is checked first (a short or damaged copy is resumed, then
    checked again).  A checksum mismatch deletes the partial file and raises ValueError naming both digests,
    followed by ``again``.  No network, or an HTTP error, raises ConnectionError (an OSError) at once, followed by
    ``by_hand`` (how to get the file by hand; default: download it by hand to ``dest``); a download that breaks
    off keeps what arrived, so the same call resumes it.
    """
    dest = Path(dest)
    expected = {name: value for name, value in (("md5", md5), ("sha256", sha256), ("sha1", sha1)) if value}
    short = [f"{name} {value!r}" for name, value in expected.items() if len(value) < 8]
    if short:
        raise ValueError(f"{dest.name}: a checksum of at least 8 hex digits is needed, not {short[0]}")
    partial = dest.with_name(dest.name + partial_suffix)
    if dest.is_file():
        if _matches(dest, expected) is None:
            return dest
        os.replace(dest, partial)  # a short copy is resumed; a damaged one fails the checksum below and is deleted
    dest.parent.mkdir(parents=True, exist_ok=True)
    by_hand = by_hand or f"download it by hand to {dest}"
    _fetch_rest(url, partial, timeout=timeout, progress=progress, chunk=chunk, desc=dest.name, by_hand=by_hand)
    mismatch = _matches(partial, expected)
    if mismatch is not None:
        algorithm, got, want = mismatch
        partial.unlink()
        raise ValueError(f"{dest}: checksum mismatch: {algorithm} {got} does not match the expected {want}; the "
                         f"download was damaged or the file changed upstream, so it was deleted -- {again}")
    os.replace(partial, dest)
    return dest


def _fetch_rest(url: str, partial: Path, *, timeout: float, progress: bool, chunk: int, desc: str,
                by_hand: str) -> None:
    """Append to ``partial`` what the server has beyond its current size (all of it when it ignores Range)."""
    import http.client
    import urllib.error
    import urllib.request

    from tqdm.auto import tqdm

    have = partial.stat().st_size if partial.is_file() else 0
    headers = {"User-Agent": "alexnet-book"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # 416: nothing left to send, the partial file is whole: verify it
            return
        raise ConnectionError(f"{url}: HTTP {error.code} {error.reason}; check the address or try again later. "
                              f"{by_hand}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ConnectionError(f"cannot reach {url} ({reason}), so cannot download it; no internet here? "
                              f"{by_hand}") from None
    with response:
        resumed = response.status == 206 and response.headers.get("Content-Range", "").startswith(f"bytes {have}-")
        start = have if resumed else 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        with open(partial, "ab" if resumed else "wb") as out, \
                tqdm(total=total, initial=start, unit="B", unit_scale=True, desc=desc, disable=not progress) as bar:
            try:
                while block := response.read(chunk):
                    out.write(block)
                    bar.update(len(block))
            except (OSError, http.client.HTTPException) as error:
                raise ConnectionError(f"download of {url} broke off after {out.tell():,} bytes "
                                      f"({type(error).__name__}); run the same command again to resume") from None
    if total is not None and partial.stat().st_size != total:
        raise ConnectionError(f"download of {url} stopped at {partial.stat().st_size:,} of {total:,} bytes; "
                              f"run the same command again to resume")


# ---------------------------------------------------------------------------------------------------------------
# This machine


def machine(*, torch_version: bool = False) -> str:
    """Where a run ran, in words: the platform, the CPU with its widest vector units, and the GPU (if any); with
    ``torch_version``, the torch version too (for tables and benchmarks compared across installs)."""
    import torch  # here, not at the top: the command line imports this module before it may import torch

    from .devices import cpu_vector_units, device_name

    cpu = device_name(torch.device("cpu"))
    units = cpu_vector_units()  # the same model name can hide AVX2-only and AVX512-BF16 CPUs
    text = f"{platform.system()} {platform.machine()}, {cpu} ({os.cpu_count()} cores{', ' + units if units else ''})"
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        text += f", {n}× {torch.cuda.get_device_name(0)}"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        text += ", Apple MPS"
    if torch_version:
        text += f", torch {torch.__version__}"
    return text
