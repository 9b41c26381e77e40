"""Decoding one image: §2 rescale + centre crop (libjpeg-turbo through simplejpeg, else PIL), the pool of decoding
worker processes, and the images of a split read in storage order (files, tars, CIFAR batches)."""
from __future__ import annotations

import io
import multiprocessing
import signal
import tarfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .cifar import read_cifar_batch
from .listing import _check_member
from .types import ImageList

try:  # libjpeg-turbo through simplejpeg: faster than PIL's decoder, optional (PIL decodes everything else)
    import simplejpeg as _simplejpeg
except ImportError:  # pragma: no cover - simplejpeg is a dependency, but the book works without it
    _simplejpeg = None

DECODER = "simplejpeg" if _simplejpeg is not None else "PIL"


def _dct_scale(h: int, w: int, size: int) -> int:
    """The largest power-of-two DCT reduction (1, 2, 4, 8) that keeps the shorter side ≥ ``size``."""
    for factor in (8, 4, 2):
        if min(h, w) // factor >= size:
            return factor
    return 1


def _decode_jpeg_fast(blob: bytes, size: int, fast: bool) -> tuple[np.ndarray, str] | None:
    """Decode a baseline/progressive YCbCr or grey JPEG with simplejpeg, reduced in the DCT domain by a power of
    two as PIL's draft mode does; None when simplejpeg is missing or cannot take this file (PIL then decodes it:
    CMYK, YCCK, damaged files, which PIL reports the way the book counts them)."""
    if _simplejpeg is None or blob[:2] != b"\xff\xd8":
        return None
    try:
        h, w, colourspace, _ = _simplejpeg.decode_jpeg_header(blob)
        if colourspace not in ("YCbCr", "Gray"):
            return None
        factor = _dct_scale(h, w, size)
        scaled = {} if factor == 1 else {"min_height": -(-h // factor), "min_width": -(-w // factor)}
        array = _simplejpeg.decode_jpeg(blob, colorspace="RGB", fastdct=fast, fastupsample=fast, **scaled)
    except (ValueError, RuntimeError):  # truncated or corrupt: let PIL decide (and report) what it is
        return None
    return array, ("L" if colourspace == "Gray" else "")


def _centre_square_resize(array: np.ndarray, size: int) -> np.ndarray:
    """§2: the central square of an HWC uint8 image, resized to ``size×size`` (bilinear, antialiased).

    torch's uint8 antialiased bilinear resize (a port of PIL's, vectorised): the same pixels as PIL's
    ``resize(BILINEAR, box=...)`` within a grey level or two, about 2.5x faster.
    """
    h, w = array.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    square = array[y:y + s, x:x + s]
    if s == size:
        return np.array(square)  # a writable copy (torch.from_numpy needs one)
    if not square.flags.writeable:  # PIL's arrays are read-only; torch wants writable memory
        square = np.array(square)
    t = torch.from_numpy(square).permute(2, 0, 1)[None]  # NCHW view of the HWC pixels
    if not t.is_contiguous(memory_format=torch.channels_last):
        t = t.contiguous(memory_format=torch.channels_last)  # torch's vectorised uint8 path reads channels-last
    out = torch.empty((1, size, size, 3), dtype=torch.uint8)
    try:  # written straight into HWC memory (interpolate would return NCHW and need a transposing copy)
        torch.ops.aten._upsample_bilinear2d_aa.out(t, [size, size], False, None, None, out=out.permute(0, 3, 1, 2))
    except (AttributeError, RuntimeError):  # pragma: no cover - a torch without the out= variant
        resized = torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", antialias=True)
        out = resized.permute(0, 2, 3, 1).contiguous()
    return out[0].numpy()


def decode_image(source, size: int, *, fast: bool = False) -> tuple[np.ndarray, str]:
    """Decode an image (path, bytes or HWC array) to RGB, shorter side → ``size``, centre ``size×size`` crop (§2).

    JPEGs are decoded by libjpeg-turbo (simplejpeg; PIL when it is missing or the file is CMYK, YCCK or damaged),
    first reduced in the DCT domain by the largest power of two that keeps the shorter side ≥ ``size`` (PIL's
    draft mode); the rest is one antialiased bilinear resize of the central square.  ``fast`` trades exactness
    for speed in the decoder (libjpeg's fast integer DCT and plain chroma upsampling, as streaming loaders do:
    a few grey levels at edges).  Returns the uint8 array and a note: "" or what was converted ("CMYK", "L",
    "PNG named .jpg", ...).
    """
    if isinstance(source, np.ndarray):
        img = Image.fromarray(source)
        name = None
    else:
        name = None if isinstance(source, (bytes, bytearray)) else source
        blob = bytes(source) if name is None else Path(source).read_bytes()
        where = f"{name}: " if name is not None else ""  # bytes from an archive: the caller names the member
        if not blob:
            raise ValueError(f"{where}an empty file (0 bytes), not an image")
        decoded = _decode_jpeg_fast(blob, size, fast)
        if decoded is not None:
            array, note = decoded
            return _centre_square_resize(array, size), note
        try:
            img = Image.open(io.BytesIO(blob))
        except Image.UnidentifiedImageError:  # PIL's message names the BytesIO object, not the file
            raise ValueError(f"{where}not an image format PIL reads ({len(blob)} bytes, beginning "
                             f"{blob[:8]!r})") from None
    notes = []
    if img.format == "JPEG":
        img.draft("RGB", (size, size))
    elif img.format and name is not None and str(name).lower().endswith((".jpg", ".jpeg")):
        notes.append(f"{img.format} named .jpg")
    img.load()
    if img.mode != "RGB":
        notes.append(img.mode)
        img = img.convert("RGB")
    return _centre_square_resize(np.asarray(img), size), ", ".join(notes)


def _worker_init():
    """A forked decoding worker: one torch thread (as DataLoader workers), so no OpenMP team crosses the fork.

    It ignores SIGINT: a Ctrl-C in a terminal reaches every process of the group, and a worker that died of it
    while holding the pool's queue lock would leave ``pool.terminate()`` waiting for ever; the parent alone
    handles it and terminates the workers.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # blocked by _start_pool while forking (a pending one was just dropped)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    torch.set_num_threads(1)


def _start_pool(workers: int):
    """A pool of forked decoding workers; SIGINT stays blocked while they are forked, so a Ctrl-C arriving then
    reaches the parent (after) and never a worker that has not yet set it aside."""
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows
        return ctx.Pool(workers, initializer=_worker_init)
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return ctx.Pool(workers, initializer=_worker_init)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _decode_task(task):
    """Worker: (slot, payload, size) -> (slot, array or None, note or error)."""
    slot, payload, size, name = task
    try:
        array, note = decode_image(payload, size)
        return slot, array, note
    except Exception as e:  # noqa: BLE001 -- a bad image is counted and reported, never fatal
        text = f"{type(e).__name__}: {e}".splitlines()[0]
        return slot, None, text if str(name) in text else f"{text} [{name}]"


def _iter_payloads(images: ImageList, start: int):
    """Yield (position, key, payload) in storage order, skipping the first ``start`` (resume)."""
    if images.storage == "files":
        for i in range(start, len(images)):
            yield i, images.keys[i], images.keys[i]
        return
    if images.storage == "cifar-batches":
        batches: dict[str, np.ndarray] = {}
        for i in range(start, len(images)):
            batch, row = images.keys[i].rsplit(":", 1)
            if batch not in batches:
                batches = {batch: read_cifar_batch(Path(images.archive) / batch)[0]}
            yield i, images.keys[i], batches[batch][int(row)]
        return
    wanted = {k: i for i, k in enumerate(images.keys)}
    archive = Path(images.archive)
    position = 0
    if images.storage == "tar":
        with tarfile.open(archive, "r|*") as tar:
            for m in tar:
                if m.name in wanted:
                    _check_member(archive, m.name)
                    if position >= start:
                        yield position, m.name, tar.extractfile(m).read()
                    position += 1
                    if position == len(wanted):
                        break  # the rest of the archive holds nothing of this split
        return
    if images.storage == "tar-of-tars":  # ILSVRC-2012 train: one tar per class inside the outer tar
        outer_names = {k.split("/", 1)[0] for k in images.keys}
        with tarfile.open(archive, "r:") as outer:
            for om in outer:
                if om.name not in outer_names:
                    continue
                _check_member(archive, om.name)
                with tarfile.open(fileobj=outer.extractfile(om), mode="r|") as inner:
                    for m in inner:
                        key = f"{om.name}/{m.name}"
                        if key in wanted:
                            _check_member(archive, key)
                            if position >= start:
                                yield position, key, inner.extractfile(m).read()
                            position += 1
        return
    raise ValueError(f"unknown storage {images.storage!r}")
