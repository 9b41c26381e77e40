"""The cache: decode once into memory-mapped uint8 arrays (atomic, resumable, parallel), the §2 mean image and
the §4.1 PCA, the cache key (a fingerprint of the listing and the archives' content) and the free-space check."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from ..files import atomic_write_json, data_dir, file_lock
from .decode import _decode_task, _iter_payloads, _start_pool
from .listing import _state_tag
from .types import SCALES, DataSplits, ImageArrays, ImageList, Source

CACHE_VERSION = 2  # bump when the decoding changes, so old caches are rebuilt rather than reused


def _shrink_npy(path: Path, rows: int) -> None:
    """Cut a .npy array to its first ``rows`` rows in place (rewrite the header's shape, truncate the file)."""
    with open(path, "r+b") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(f)
        offset = f.tell()
        start = 10 if version == (1, 0) else 12
        header = repr({"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": fortran,
                       "shape": (rows,) + tuple(shape[1:])})
        pad = offset - start - len(header) - 1
        if pad < 0:
            raise ValueError(f"{path}: cannot rewrite the .npy header in place; delete the cache and rebuild it")
        f.seek(start)
        f.write((header + " " * pad + "\n").encode("latin1"))
        f.truncate(offset + rows * int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize)


FULL_DIGEST_BYTES = 2 * 2**30  # archives up to this size are hashed whole; larger ones (ImageNet) by samples
_SAMPLE = 2**20


def archive_digest(path) -> str:
    """A fingerprint of an archive's content: its size and the SHA-1 of all its bytes (up to
    ``FULL_DIGEST_BYTES``), or of 64 evenly spaced 1 MiB samples for larger ones (a 150 GB ImageNet tar is not
    read whole for a cache key; a change that keeps the size and misses every sample goes unnoticed).
    Remembered per (path, size, modification time) under data/cache/digests/, so each state is read once."""
    path = Path(path)
    st = path.stat()
    memo = data_dir() / "cache" / "digests" / f"{path.name}-{_state_tag(path)}.json"
    with contextlib.suppress(OSError, ValueError):
        return json.loads(memo.read_text())["digest"]
    h = hashlib.sha1(str(st.st_size).encode())
    with open(path, "rb") as f:
        if st.st_size <= FULL_DIGEST_BYTES:
            for block in iter(lambda: f.read(8 * _SAMPLE), b""):
                h.update(block)
            kind = "sha1"
        else:
            for i in range(64):
                f.seek((st.st_size - _SAMPLE) * i // 63)
                h.update(f.read(_SAMPLE))
            kind = "sampled-sha1"
    digest = f"{st.st_size}:{kind}:{h.hexdigest()}"
    with contextlib.suppress(OSError):  # only a speed-up: a read-only data folder hashes again next time
        memo.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(memo, {"path": str(path.resolve()), "digest": digest})
    return digest


def cache_content_digest(folder) -> str | None:
    """The SHA-1 of a finished cache's decoded arrays (train/val images and labels), remembered in the folder
    (content_digest.json); None when the folder is not a finished cache.  Two caches with the same digest hold
    the same pixels and labels, whatever their keys."""
    folder = Path(folder)
    names = ("train_images.npy", "train_labels.npy", "val_images.npy", "val_labels.npy")
    if not (folder / "complete.json").is_file() or not all((folder / n).is_file() for n in names):
        return None
    memo = folder / "content_digest.json"
    with contextlib.suppress(OSError, ValueError):
        return json.loads(memo.read_text())["digest"]
    h = hashlib.sha1()
    for name in names:
        with open(folder / name, "rb") as f:
            for block in iter(lambda: f.read(8 * _SAMPLE), b""):
                h.update(block)
    digest = h.hexdigest()
    with contextlib.suppress(OSError):
        atomic_write_json(memo, {"digest": digest})
    return digest


def _stat_tag(path: str) -> str:
    """``size:mtime_ns`` of a file (following symlinks), "-" when it cannot be read: what a cache key notes of it."""
    try:
        st = os.stat(path)
    except OSError:
        return "-"
    return f"{st.st_size}:{st.st_mtime_ns}"


def _cache_key(source: Source, size: int) -> str:
    """The cache folder's name: a fingerprint of the listing, the labels, the stored size and the files themselves
    (an archive's content digest; each image file's size and mtime_ns, so a replaced image means a new cache)."""
    h = hashlib.sha1()
    h.update(json.dumps([CACHE_VERSION, source.name, size, source.classes]).encode())
    for images in (source.train, source.val):
        h.update(json.dumps([images.storage, images.archive, len(images)]).encode())
        if images.archive and Path(images.archive).is_file():
            # the archive's content, not its modification time: the same file copied again (a fresh checkout,
            # a re-mounted share) keeps its cache and its runs' data identity
            h.update(archive_digest(images.archive).encode())
        h.update("\n".join(images.keys).encode())
        if images.storage == "files":
            h.update("\n".join(_stat_tag(k) for k in images.keys).encode())
        elif images.storage == "cifar-batches":
            batches = sorted({k.rsplit(":", 1)[0] for k in images.keys})
            h.update("\n".join(_stat_tag(os.path.join(images.archive, b)) for b in batches).encode())
        h.update(np.asarray(images.labels, dtype=np.int64).tobytes())
    return f"{source.name}-{size}px-{len(source.train)}-{h.hexdigest()[:10]}"


CHUNK = 1024  # images decoded between two progress records
DISK_MARGIN = 64 * 2**20  # bytes kept free beyond the pixels and labels (progress records, stats, metadata)


def _bytes_to_write(images: ImageList, folder: Path, split: str, size: int) -> int:
    """Bytes the rest of one split's build will write: its rows not yet written (the .npy files are sparse)."""
    written = 0
    state_path = folder / f"{split}_progress.json"
    if state_path.exists() and (folder / f"{split}_images.npy").exists():
        with contextlib.suppress(ValueError, OSError, KeyError, TypeError):
            state = json.loads(state_path.read_text())
            if state["finished"]:
                return 0
            written = int(state["written"])
    return max(len(images) - written, 0) * (size * size * 3 + 8)


def _check_free_space(source: Source, folder: Path, size: int, chosen: bool) -> None:
    """Refuse, in one message, a build the disk cannot hold: a full disk under a memory map is a bare SIGBUS
    ("Bus error") halfway through, not an error.  ``folder``: the build's ``<key>.partial`` folder (it may not exist
    yet; its parent, the cache folder, does); ``chosen``: the cache folder was passed by the caller."""
    need = DISK_MARGIN + sum(_bytes_to_write(images, folder, split, size)
                             for split, images in (("train", source.train), ("val", source.val)))
    free = shutil.disk_usage(folder.parent).free
    if free >= need:
        return
    elsewhere = ("pass another cache_root" if chosen else
                 f"set ALEXNET_BOOK_DATA=/a/bigger/disk (caches go to its cache/ folder; now {data_dir()})")
    raise OSError(f"{folder.parent}: not enough free disk space for the {source.name} cache at {size}px: it needs "
                  f"{need / 2**30:.2f} GiB ({need} bytes), {free / 2**30:.2f} GiB ({free} bytes) are available; free "
                  f"space there or put the cache on a bigger disk: {elsewhere}")


def _decode_split(images: ImageList, folder: Path, split: str, size: int, *, workers: int, progress: bool) -> dict:
    """Decode one split into ``folder/<split>_images.npy`` (+ labels), resuming from ``<split>_progress.json``."""
    from tqdm.auto import tqdm

    state_path = folder / f"{split}_progress.json"
    img_path, lab_path = folder / f"{split}_images.npy", folder / f"{split}_labels.npy"
    n = len(images)
    state = json.loads(state_path.read_text()) if state_path.exists() else None
    if state is None or not img_path.exists():
        state = {"processed": 0, "written": 0, "notes": {}, "failed": [], "finished": False}
        np.lib.format.open_memmap(img_path, "w+", np.uint8, (max(n, 1), size, size, 3)).flush()
        np.lib.format.open_memmap(lab_path, "w+", np.int64, (max(n, 1),)).flush()
        atomic_write_json(state_path, state)
    if state["finished"]:
        return state
    out = np.lib.format.open_memmap(img_path, "r+")
    out_labels = np.lib.format.open_memmap(lab_path, "r+")
    label_of = dict(zip(images.keys, images.labels))
    key_at: dict[int, str] = {}
    bar = tqdm(total=n, initial=state["processed"], desc=f"decoding {split} → {size}px", unit="img",
               disable=not progress, leave=False)
    todo = n - state["processed"]
    use_pool = workers > 1 and todo >= 256
    pool = None
    try:
        pool = _start_pool(workers) if use_pool else None
        payloads = _iter_payloads(images, state["processed"])
        pending = None

        def write(results):
            for pos, array, note in results:
                if array is None:
                    key_at.pop(pos)
                    state["failed"].append(note)
                else:
                    out[state["written"]] = array
                    out_labels[state["written"]] = label_of[key_at.pop(pos)]
                    state["written"] += 1
                    if note:
                        state["notes"][note] = state["notes"].get(note, 0) + 1
            state["processed"] += len(results)
            out.flush()
            out_labels.flush()
            atomic_write_json(state_path, state)  # records progress only after the pixels are on disk
            bar.update(len(results))

        while True:
            tasks = [(pos, payload, size, key) for pos, key, payload in _take(payloads, CHUNK)]
            if not tasks:
                break
            key_at.update((t[0], t[3]) for t in tasks)
            if pool is None:
                write([_decode_task(t) for t in tasks])
                continue
            # the workers decode this chunk while the main process writes the previous one and reads the next
            job = pool.map_async(_decode_task, tasks, chunksize=max(1, len(tasks) // (4 * workers)))
            if pending is not None:
                write(_results(pending))
            pending = job
        if pending is not None:
            write(_results(pending))
    finally:
        if pool:
            pool.terminate()  # the workers ignore SIGINT, so after a Ctrl-C they are stopped here, not left hanging
            pool.join()
        bar.close()
        del out, out_labels
    if state["written"] == 0:
        raise ValueError(f"{folder}: no image of the {split} split could be decoded (first error: "
                         f"{state['failed'][0] if state['failed'] else 'none listed'}); check the files")
    _shrink_npy(img_path, state["written"])
    _shrink_npy(lab_path, state["written"])
    state["finished"] = True
    atomic_write_json(state_path, state)
    return state


def _results(job, poll: float = 0.25):
    """``job.get()`` in short timed waits.  An untimed wait blocks the main thread in a lock that a Ctrl-C only
    interrupts when the kernel hands SIGINT to the main thread; handed to another thread (tqdm's monitor, say), it
    waits until the job ends -- or for ever if it does not.  Waking every ``poll`` seconds lets Python raise the
    KeyboardInterrupt promptly either way."""
    import multiprocessing

    while True:
        try:
            return job.get(timeout=poll)
        except multiprocessing.TimeoutError:
            continue


def _take(iterator, n):
    out = []
    for item in iterator:
        out.append(item)
        if len(out) == n:
            break
    return out


def mean_and_pca(images: np.ndarray, chunk: int = 512, *,
                 progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel mean image (§2) and the eigen-decomposition of the RGB covariance over all pixels (§4.1).

    Returns (mean image float32 (S, S, 3), eigenvalues float32 (3,) descending, eigenvectors float32 (3, 3) as
    columns), all in 0-255 units.  Accumulates in float64 over chunks of a (memory-mapped) uint8 array; with
    ``progress`` a bar on stderr counts the images (one pass over the whole training set: minutes on ImageNet).
    """
    from tqdm.auto import tqdm

    n = images.shape[0]
    total = np.zeros(images.shape[1:], np.float64)
    rgb_sum = np.zeros(3, np.float64)
    rgb_outer = np.zeros((3, 3), np.float64)
    with tqdm(total=n, desc="mean image and PCA", unit="img", disable=not progress, leave=False) as bar:
        for i in range(0, n, chunk):
            block = np.asarray(images[i:i + chunk], dtype=np.float64)
            total += block.sum(axis=0)
            pixels = block.reshape(-1, 3)
            rgb_sum += pixels.sum(axis=0)
            rgb_outer += pixels.T @ pixels
            bar.update(block.shape[0])
    count = n * images.shape[1] * images.shape[2]
    mu = rgb_sum / count
    cov = rgb_outer / count - np.outer(mu, mu)
    eigvals, eigvecs = np.linalg.eigh(cov)
    order = np.argsort(eigvals)[::-1]
    eigvals, eigvecs = eigvals[order], eigvecs[:, order]
    eigvecs *= np.where(eigvecs.sum(axis=0) < 0, -1.0, 1.0)  # a fixed sign, so caches compare equal
    return (total / n).astype(np.float32), eigvals.clip(min=0).astype(np.float32), eigvecs.astype(np.float32)


def build_cache(source: Source, size: int, cache_root: str | Path | None = None, *, progress: bool = True,
                workers: int | None = None) -> Path:
    """Decode a Source once into ``<cache_root>/<key>/`` (uint8 .npy, labels, mean image, PCA, meta) (§2).

    Resumable: progress is recorded after every chunk in ``<key>.partial/``; a rerun continues from there.
    Atomic: the folder is renamed to ``<key>/`` only when complete, so a half-written cache is never used.
    Refused up front (OSError) when the disk lacks the space it will write.  One Ctrl-C stops it (the decoding
    workers ignore SIGINT and are terminated) and keeps the partial folder for the next run.
    """
    chosen = cache_root is not None
    final = cache_folder(source, size, cache_root)
    cache_root, key = final.parent, final.name
    partial = cache_root / (key + ".partial")
    if (final / "complete.json").exists():
        return final
    workers = workers or os.cpu_count() or 1
    with file_lock(cache_root / (key + ".lock")):  # two processes never build the same cache at once
        if (final / "complete.json").exists():
            return final
        _check_free_space(source, partial, size, chosen)
        partial.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        try:
            states = {split: _decode_split(images, partial, split, size, workers=workers, progress=progress)
                      for split, images in (("train", source.train), ("val", source.val))}
        except KeyboardInterrupt:
            print(f"\ncache build stopped; what is decoded stays in {partial} and the next run resumes from there",
                  file=sys.stderr, flush=True)
            raise
        stats = partial / "stats.npz"
        if not stats.exists():
            mean, eigvals, eigvecs = mean_and_pca(np.load(partial / "train_images.npy", mmap_mode="r"),
                                                  progress=progress)
            tmp = partial / "stats.tmp.npz"
            np.savez(tmp, mean_image=mean, pca_eigvals=eigvals, pca_eigvecs=eigvecs)
            os.replace(tmp, stats)
        skipped = {reason: len(paths) for reason, paths in source.skipped.items()}
        for split, st in states.items():
            if st["failed"]:
                skipped[f"{split}: undecodable"] = len(st["failed"])
            for note, count in st["notes"].items():
                skipped[f"{split}: converted {note}"] = count
        meta = {"name": source.name, "size": size, "classes": source.classes, "class_names": source.class_names,
                "source": source.description, "train": states["train"]["written"], "val": states["val"]["written"],
                "skipped": skipped, "failed": states["train"]["failed"][:100] + states["val"]["failed"][:100],
                "listing_skipped": {r: p[:100] for r, p in source.skipped.items()},
                "build_s": round(time.time() - t0, 1), "version": CACHE_VERSION}
        atomic_write_json(partial / "meta.json", meta)
        atomic_write_json(partial / "complete.json", {"key": key, "date": time.strftime("%Y-%m-%d %H:%M:%S")})
        if final.exists():  # a stale, incomplete folder of the same name: never used, replace it
            shutil.rmtree(final)
        os.replace(partial, final)
    return final


def _report(meta: dict, where: str) -> None:
    """Say what was left out or converted while building a cache (counted, reported skips)."""
    skipped = meta.get("skipped", {})
    if not skipped:
        return
    lines = ", ".join(f"{count} {reason}" for reason, count in sorted(skipped.items()))
    failed = meta.get("failed", [])
    first = f"; first undecodable: {failed[0]}" if failed else ""
    warnings.warn(f"{meta['name']}: {lines}{first} (details: {where}/meta.json)", stacklevel=3)


def load_cache(folder: str | Path, crop: int | None = None) -> DataSplits:
    """Map a finished cache folder as DataSplits (uint8 arrays memory-mapped copy-on-write)."""
    folder = Path(folder)
    if not (folder / "complete.json").exists():
        raise FileNotFoundError(f"{folder}: not a finished cache (no complete.json); rebuild it with "
                                "load_dataset(...) or `alexnet-book data cache`")
    meta = json.loads((folder / "meta.json").read_text())
    stats = np.load(folder / "stats.npz")

    def arrays(split):
        images = np.load(folder / f"{split}_images.npy", mmap_mode="c")
        labels = np.load(folder / f"{split}_labels.npy")
        return ImageArrays(torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64)))

    size = int(meta["size"])
    if crop is None:
        crop = next((c for s, c in SCALES.values() if s == size), size)
    return DataSplits(meta["name"], arrays("train"), arrays("val"), list(meta["classes"]), list(meta["class_names"]),
                      torch.from_numpy(stats["mean_image"]), torch.from_numpy(stats["pca_eigvals"]),
                      torch.from_numpy(stats["pca_eigvecs"]), int(crop), meta["source"], str(folder),
                      dict(meta.get("skipped", {})))


def cache_folder(source: Source, size: int, cache_root: str | Path | None = None) -> Path:
    """The folder ``build_cache(source, size, cache_root)`` writes (finished or not), from the listing alone."""
    cache_root = Path(cache_root) if cache_root is not None else data_dir() / "cache"
    return cache_root / _cache_key(source, size)
