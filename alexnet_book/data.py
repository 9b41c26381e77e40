"""Data sets and formats, and the paper's preprocessing into a uint8 cache (§2).

§2: "ImageNet consists of variable-resolution images ... we down-sampled the images to a fixed resolution of
256 × 256. Given a rectangular image, we first rescaled the image such that the shorter side was of length 256,
and then cropped out the central 256×256 patch from the resulting image. We did not pre-process the images in
any other way, except for subtracting the mean activity over the training set from each pixel."

One entry point, ``load_dataset(name, root)``, returns the train and validation splits as uint8 arrays of the
stored ``S×S`` images (S = 256 on the full track, 36 on the scaled CIFAR track), the per-pixel mean image and
the PCA of the RGB pixels over the training set (§4.1).  Every image is decoded once, in parallel worker
processes, into a memory-mapped ``.npy`` under ``data/cache/<key>/``; the build shows a progress bar, resumes
where it stopped, and only a finished build is ever renamed into place, so a half-written cache is never used.
Crops, flips, PCA colour noise and mean subtraction then run on whole uint8 batches (``augment.py``).

The scaled track.  CIFAR-10 images are 32×32; the book stores them at 36×36 (bilinear upsampling) and crops 32,
the analogue of the paper's 256 → 224 (36/32 ≈ 256/224).

Formats read: ImageFolder trees (``train/<class>/…``, ``val/<class>/…`` or ``test/<class>/…``) as folders or
tar(.gz) archives; torchvision's ``cifar-10-batches-py``; the official ILSVRC-2012 archives (a train tar of
per-class tars, a flat val tar and the devkit's ground truth) or their extracted folders; fast.ai's Imagenette
and Imagewoof archives; ImageNet subsets as manifests; and a deterministic synthetic set for tests.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import multiprocessing
import os
import pickle
import re
import shutil
import sys
import tarfile
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import paper

# Stored side and crop side of each track (§2, §4.1).  The scaled track is the CIFAR-sized analogue of 256/224.
SCALES = {"full": (paper.PREPROCESS["rescale"], paper.PREPROCESS["crop"]), "scaled": (36, 32)}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".gif", ".tif", ".tiff", ".webp")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CACHE_VERSION = 1  # bump when the decoding changes, so old caches are rebuilt rather than reused
HOW_TO_GET_DATA = ("see data/README.md: put cifar10-jpg.tar.gz next to the project (../shared/data/) or set "
                   "ALEXNET_BOOK_CIFAR10=/path/to/it, or go online once so torchvision can download CIFAR-10")


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


def find_cifar10() -> Path | None:
    """A local CIFAR-10: $ALEXNET_BOOK_CIFAR10, ../shared/data/cifar10-jpg.tar.gz from the root, or data/."""
    env = os.environ.get("ALEXNET_BOOK_CIFAR10")
    if env:
        path = Path(env).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"ALEXNET_BOOK_CIFAR10={env}: no such file or folder; point it at "
                                    "cifar10-jpg.tar.gz, its extracted folder or a cifar-10-batches-py folder")
        return path
    candidates = [project_root().parent / "shared" / "data" / "cifar10-jpg.tar.gz"]
    here = data_dir()
    candidates += [here / "cifar10-jpg.tar.gz", here / "cifar10-jpg", here / "cifar10", here / "cifar-10-batches-py"]
    for path in candidates:
        if path.exists():
            return path
    return None


# ---------------------------------------------------------------------------------------------------------------
# What a split is before decoding


@dataclass
class ImageList:
    """One split before decoding: where each image is stored and its label (§2)."""

    keys: list[str]  # file paths, archive member names, or "<batch file>:<row>" for torchvision's CIFAR batches
    labels: list[int]
    storage: str = "files"  # "files" | "tar" | "tar-of-tars" | "cifar-batches"
    archive: str | None = None  # the tar (tar, tar-of-tars) or the cifar-10-batches-py folder

    def __len__(self) -> int:
        return len(self.keys)


@dataclass
class Source:
    """A data set located on disk, split into train and val, with its class list (not yet decoded)."""

    name: str
    train: ImageList
    val: ImageList
    classes: list[str]
    class_names: list[str]
    description: str
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> paths, found while listing


@dataclass
class ImageArrays:
    """One preprocessed split held as uint8 pixels (memory-mapped from the cache on disk)."""

    images: torch.Tensor  # uint8, (N, S, S, 3) NHWC; S = stored size: 256 (full track) or 36 (scaled track)
    labels: torch.Tensor  # int64, (N,)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class DataSplits:
    """A data set ready for training: both splits, the class list, the §2 mean image and the §4.1 PCA."""

    name: str  # "cifar10", "imagenet", "imagenet-subset", "imagenette", "imagewoof", "synthetic"
    train: ImageArrays
    val: ImageArrays
    classes: list[str]  # folder names / wnids, sorted; index = label
    class_names: list[str]  # human-readable
    mean_image: torch.Tensor  # float32 (S, S, 3): per-pixel mean over the training set, 0-255 units (§2)
    pca_eigvals: torch.Tensor  # float32 (3,): eigenvalues of the RGB covariance over training pixels (0-255 units)
    pca_eigvecs: torch.Tensor  # float32 (3, 3): columns are the eigenvectors p1 p2 p3 (§4.1)
    crop: int  # 224 (full) or 32 (scaled): the network's input side
    source: str  # where it came from, for the notebook and the results store
    cache: str = ""  # the cache folder the arrays are mapped from
    skipped: dict = field(default_factory=dict)  # reason -> count of files left out or converted while building

    @property
    def size(self) -> int:
        """The stored side S (§2: 256 on the full track)."""
        return int(self.mean_image.shape[0])


# ---------------------------------------------------------------------------------------------------------------
# Listing: ImageFolder trees, tar archives, torchvision's CIFAR batches


def _check_member(archive: Path, name: str) -> None:
    """Refuse an archive member whose path would land outside the folder it is read or extracted into."""
    parts = Path(name).parts
    if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
        raise ValueError(f"{archive}: member {name!r} escapes the target folder; refusing it -- the archive is "
                         "unsafe or corrupt, download it again from the official source")


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def _class_tree(entries: list[tuple[str, str]], where: str, skipped: dict, classes: list[str] | None):
    """Group (class, key) pairs into an ImageList with labels = index in the sorted class list."""
    by_class: dict[str, list[str]] = {}
    for cls, key in entries:
        by_class.setdefault(cls, []).append(key)
    if classes is None:
        classes = sorted(by_class)
    if not classes:
        raise ValueError(f"{where}: no class folders with images found; expected <class>/<image> inside "
                         f"(ImageFolder layout) -- {HOW_TO_GET_DATA}")
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(by_class) - set(index))
    if unknown:
        raise ValueError(f"{where}: class folder {unknown[0]!r} is not among the training classes; remove it or "
                         "use the same class folders in train and val")
    keys, labels = [], []
    for cls in classes:
        files = sorted(by_class.get(cls, []))
        if not files:
            skipped.setdefault("empty class folder", []).append(f"{where}/{cls}")
        keys += files
        labels += [index[cls]] * len(files)
    return keys, labels, classes


def scan_folder(split_dir: str | Path, classes: list[str] | None = None,
                skipped: dict | None = None) -> tuple[ImageList, list[str]]:
    """List an ImageFolder split (``<split>/<class>/<image>``); class index = sorted folder names (§2)."""
    split_dir = Path(split_dir)
    skipped = {} if skipped is None else skipped
    if not split_dir.is_dir():
        raise FileNotFoundError(f"{split_dir}: no such folder; expected an ImageFolder split "
                                f"<root>/{split_dir.name}/<class>/<image> -- {HOW_TO_GET_DATA}")
    entries = []
    class_dirs = sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    for cdir in class_dirs:
        found = False
        for dirpath, dirnames, filenames in os.walk(cdir, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fname in sorted(filenames):
                path = os.path.join(dirpath, fname)
                if _is_image_name(fname):
                    entries.append((cdir.name, path))
                    found = True
                else:
                    skipped.setdefault("not an image file", []).append(path)
        if not found:
            entries.append((cdir.name, None))  # keeps an empty class in the class list
    stray = [p for p in split_dir.iterdir() if not p.is_dir()]
    for p in stray:
        skipped.setdefault("not an image file", []).append(str(p))
    present = [(c, k) for c, k in entries if k is not None]
    if classes is None:
        classes = sorted({c for c, _ in entries})
    keys, labels, classes = _class_tree(present, str(split_dir), skipped, classes)
    if not keys:
        raise ValueError(f"{split_dir}: the class folders hold no images ({', '.join(IMAGE_SUFFIXES)}); "
                         "extract the images into <split>/<class>/")
    return ImageList(keys, labels, "files"), classes


def _tar_members(archive: Path) -> list[str]:
    """The names of the regular files in a tar(.gz), each checked not to escape the target folder.

    Listing a compressed tar means decompressing all of it, so the list is kept under data/cache/listings/,
    keyed by the archive's path, size and modification time.
    """
    st = archive.stat()
    tag = hashlib.sha1(f"{archive.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
    listing = data_dir() / "cache" / "listings" / f"{archive.name}-{tag}.json"
    if listing.exists():
        with contextlib.suppress(ValueError, OSError):
            return json.loads(listing.read_text())
    try:
        with tarfile.open(archive, "r:*") as tar:
            names = []
            for m in tar:
                _check_member(archive, m.name)
                if m.isfile():
                    names.append(m.name)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ValueError(f"{archive}: not a readable tar archive ({e}); download it again") from None
    with contextlib.suppress(OSError):
        listing.parent.mkdir(parents=True, exist_ok=True)
        _atomic_json(listing, names)
    return names


def scan_tar(archive: str | Path, splits=("train", ("val", "test"))) -> tuple[ImageList, ImageList, list[str], dict]:
    """List an ImageFolder tree packed in a tar(.gz): ``[top/]train/<class>/<image>``, ``[top/]val|test/...``."""
    archive = Path(archive)
    names = _tar_members(archive)
    skipped: dict[str, list[str]] = {}
    pattern = re.compile(r"^(?:(?P<top>[^/]+)/)?(?P<split>[^/]+)/(?P<cls>[^/]+)/(?P<file>.+)$")
    groups: dict[str, list[tuple[str, str]]] = {}
    for name in names:
        m = pattern.match(name.lstrip("./") if name.startswith("./") else name)
        if m is None:
            continue
        split = m["split"]
        if not _is_image_name(m["file"]):
            skipped.setdefault("not an image file", []).append(f"{archive}:{name}")
            continue
        groups.setdefault(split, []).append((m["cls"], name))
    train_name, val_names = splits
    if train_name not in groups:
        raise ValueError(f"{archive}: no {train_name}/<class>/<image> members; expected the ImageFolder layout "
                         "train/<class>/*.jpg and val/ or test/<class>/*.jpg inside the archive")
    val_name = next((v for v in val_names if v in groups), None)
    if val_name is None:
        raise ValueError(f"{archive}: no val/ or test/ split; expected val/<class>/*.jpg or test/<class>/*.jpg "
                         "next to train/ inside the archive")
    keys, labels, classes = _class_tree(groups[train_name], f"{archive}:{train_name}", skipped, None)
    vkeys, vlabels, _ = _class_tree(groups[val_name], f"{archive}:{val_name}", skipped, classes)
    return (ImageList(keys, labels, "tar", str(archive)), ImageList(vkeys, vlabels, "tar", str(archive)),
            classes, skipped)


class _ArraysOnly(pickle.Unpickler):
    """Unpickle only dicts, lists, strings and numpy arrays (torchvision's CIFAR batch format), nothing else."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of the CIFAR batch format")


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, list[int]]:
    """One torchvision/Toronto CIFAR-10 batch file: (N, 32, 32, 3) uint8 images and their labels."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            entry = _ArraysOnly(f, encoding="latin1").load()
        data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        labels = entry.get("labels", entry.get("fine_labels"))
        return np.ascontiguousarray(data), [int(x) for x in labels]
    except (OSError, EOFError, KeyError, ValueError, pickle.UnpicklingError, TypeError) as e:
        raise ValueError(f"{path}: not a CIFAR-10 batch file ({e}); delete the cifar-10-batches-py folder and "
                         "download it again") from None


def scan_cifar_batches(folder: str | Path) -> tuple[ImageList, ImageList, list[str]]:
    """List torchvision's ``cifar-10-batches-py`` layout (data_batch_1..5, test_batch, batches.meta)."""
    folder = Path(folder)
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    need = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    missing = [n for n in need if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder / missing[0]}: missing; expected torchvision's cifar-10-batches-py "
                                "layout (data_batch_1..5, test_batch) -- download it again")
    lists = []
    for names in (need[:5], need[5:]):
        keys, labels = [], []
        for n in names:
            _, lab = read_cifar_batch(folder / n)
            keys += [f"{n}:{i}" for i in range(len(lab))]
            labels += lab
        lists.append(ImageList(keys, labels, "cifar-batches", str(folder)))
    classes = list(CIFAR10_CLASSES)
    meta = folder / "batches.meta"
    if meta.is_file():
        with open(meta, "rb") as f:
            names = _ArraysOnly(f, encoding="latin1").load().get("label_names")
        if names:
            classes = [str(n) for n in names]
    return lists[0], lists[1], classes


def open_imagefolder(name: str, root: str | Path) -> Source:
    """An ImageFolder data set as a folder (``train/``, ``val/`` or ``test/``) or a tar(.gz) of one (§2)."""
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or folder; pass the folder holding train/ and val/ (or "
                                f"test/), or its .tar.gz -- {HOW_TO_GET_DATA}")
    if root.is_file():
        train, val, classes, skipped = scan_tar(root)
        return Source(name, train, val, classes, list(classes), f"{name} {root}", skipped)
    if not (root / "train").is_dir():
        subs = [p for p in root.iterdir() if p.is_dir() and (p / "train").is_dir()]
        if len(subs) == 1:
            root = subs[0]
        else:
            raise ValueError(f"{root}: no train/ folder; expected the ImageFolder layout "
                             f"{root}/train/<class>/<image> and {root}/val/<class>/<image> (or test/)")
    val_dir = next((root / v for v in ("val", "test") if (root / v).is_dir()), None)
    if val_dir is None:
        raise ValueError(f"{root}: no val/ or test/ folder next to train/; add the validation images as "
                         f"{root}/val/<class>/<image>")
    skipped: dict[str, list[str]] = {}
    train, classes = scan_folder(root / "train", None, skipped)
    val, _ = scan_folder(val_dir, classes, skipped)
    return Source(name, train, val, classes, list(classes), f"{name} {root}", skipped)


def open_cifar10(root: str | Path | None = None, *, download: bool = False) -> Source:
    """CIFAR-10 from a local .tar.gz / ImageFolder / cifar-10-batches-py, or torchvision's download."""
    if root is None:
        root = find_cifar10()
        if root is None and download:
            root = download_cifar10(data_dir())
        if root is None:
            raise FileNotFoundError(f"CIFAR-10 not found locally and not downloaded; {HOW_TO_GET_DATA}")
    root = Path(root).expanduser()
    if root.is_dir() and ((root / "data_batch_1").exists() or (root / "cifar-10-batches-py").is_dir()):
        train, val, classes = scan_cifar_batches(root)
        return Source("cifar10", train, val, classes, list(classes), f"cifar10 torchvision batches {root}")
    src = open_imagefolder("cifar10", root)
    return src


def download_cifar10(root: str | Path, timeout: float = 5.0) -> Path | None:
    """Download CIFAR-10 with torchvision into ``root`` when online; None (quickly) when offline."""
    import socket
    import urllib.request

    try:  # a short probe first, so an offline machine answers in seconds
        urllib.request.urlopen(urllib.request.Request(CIFAR10_URL, method="HEAD"), timeout=timeout).close()
    except (OSError, ValueError):
        return None
    from torchvision.datasets import CIFAR10

    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(60)
    try:
        CIFAR10(str(root), train=True, download=True)
    except Exception as e:  # noqa: BLE001 -- any failure here means "not downloaded"
        warnings.warn(f"torchvision could not download CIFAR-10 into {root}: {e}")
        return None
    finally:
        socket.setdefaulttimeout(old)
    return Path(root) / "cifar-10-batches-py"


# ---------------------------------------------------------------------------------------------------------------
# The synthetic set


def make_synthetic(root: str | Path | None = None, *, classes: int = 10, train_per_class: int = 60,
                   val_per_class: int = 12, size: tuple[int, int] = (48, 40), seed: int = 0) -> Path:
    """Write a deterministic ImageFolder set of JPEGs (class = colour + stripe angle) for tests and offline demos."""
    root = Path(root) if root is not None else data_dir() / f"synthetic-{classes}x{train_per_class}-{seed}"
    if (root / "train").is_dir() and (root / "val").is_dir():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=root.name + ".", dir=root.parent))
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        for c in range(classes):
            angle = np.pi * c / classes
            hue = 2 * np.pi * c / classes
            colour = 127.5 + 100 * np.cos(hue + np.array([0.0, 2.094, 4.189], dtype=np.float32))
            folder = tmp / split / f"class{c:02d}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                rng = np.random.default_rng([seed, c, i, split == "val"])
                phase = rng.uniform(0, 2 * np.pi)
                wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) / 3.0 + phase)
                img = colour + 60 * wave[..., None] + rng.normal(0, 12, (h, w, 3))
                Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / f"{i:04d}.jpg", quality=90)
    try:
        os.replace(tmp, root)
    except OSError:  # another process made it first
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def open_synthetic(root: str | Path | None = None) -> Source:
    """The synthetic set (generated on first use) as a Source."""
    src = open_imagefolder("synthetic", make_synthetic(root) if root is None else root)
    src.description = "synthetic " + src.description.split(" ", 1)[1]
    return src


# ---------------------------------------------------------------------------------------------------------------
# Decoding one image: §2 rescale + centre crop


def decode_image(source, size: int) -> tuple[np.ndarray, str]:
    """Decode an image (path, bytes or HWC array) to RGB, shorter side → ``size``, centre ``size×size`` crop (§2).

    JPEGs are first reduced in the DCT domain (PIL draft mode) by the largest power of two that keeps the shorter
    side ≥ ``size``; the rest is one bilinear (antialiased) resize of the central square.  Returns the uint8 array
    and a note: "" or what was converted ("CMYK", "L", "PNG named .jpg", ...).
    """
    if isinstance(source, np.ndarray):
        img = Image.fromarray(source)
    else:
        img = Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
    notes = []
    if img.format == "JPEG":
        img.draft("RGB", (size, size))
    elif img.format and isinstance(source, (str, os.PathLike)) and str(source).lower().endswith((".jpg", ".jpeg")):
        notes.append(f"{img.format} named .jpg")
    img.load()
    if img.mode != "RGB":
        notes.append(img.mode)
        img = img.convert("RGB")
    w, h = img.size
    s = min(w, h)
    box = ((w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2)
    if (w, h) != (size, size):
        img = img.resize((size, size), Image.BILINEAR, box=box)
    return np.asarray(img, dtype=np.uint8), ", ".join(notes)


def _decode_task(task):
    """Worker: (slot, payload, size) -> (slot, array or None, note or error)."""
    slot, payload, size, name = task
    try:
        array, note = decode_image(payload, size)
        return slot, array, note
    except Exception as e:  # noqa: BLE001 -- a bad image is counted and reported, never fatal
        return slot, None, f"{type(e).__name__}: {e}".splitlines()[0] + f" [{name}]"


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


# ---------------------------------------------------------------------------------------------------------------
# The cache: decode once into memory-mapped uint8 arrays (atomic, resumable, parallel)


def _atomic_json(path: Path, obj) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


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


def _cache_key(source: Source, size: int) -> str:
    h = hashlib.sha1()
    h.update(json.dumps([CACHE_VERSION, source.name, size, source.classes]).encode())
    for images in (source.train, source.val):
        h.update(json.dumps([images.storage, images.archive, len(images)]).encode())
        if images.archive and Path(images.archive).is_file():
            st = Path(images.archive).stat()
            h.update(f"{st.st_size}:{int(st.st_mtime)}".encode())
        h.update("\n".join(images.keys).encode())
        h.update(np.asarray(images.labels, dtype=np.int64).tobytes())
    return f"{source.name}-{size}px-{len(source.train)}-{h.hexdigest()[:10]}"


def _decode_split(images: ImageList, folder: Path, split: str, size: int, *, workers: int, progress: bool,
                  chunk: int = 1024) -> dict:
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
        _atomic_json(state_path, state)
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
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    pool = ctx.Pool(workers) if use_pool else None
    try:
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
            _atomic_json(state_path, state)  # records progress only after the pixels are on disk
            bar.update(len(results))

        while True:
            tasks = [(pos, payload, size, key) for pos, key, payload in _take(payloads, chunk)]
            if not tasks:
                break
            key_at.update((t[0], t[3]) for t in tasks)
            job = (pool.map_async(_decode_task, tasks, chunksize=max(1, len(tasks) // (4 * workers)))
                   if pool else [_decode_task(t) for t in tasks])
            if pending is not None:
                write(pending.get() if pool else pending)
            pending = job
        if pending is not None:
            write(pending.get() if pool else pending)
    finally:
        if pool:
            pool.terminate()
        bar.close()
        del out, out_labels
    if state["written"] == 0:
        raise ValueError(f"{folder}: no image of the {split} split could be decoded (first error: "
                         f"{state['failed'][0] if state['failed'] else 'none listed'}); check the files")
    _shrink_npy(img_path, state["written"])
    _shrink_npy(lab_path, state["written"])
    state["finished"] = True
    _atomic_json(state_path, state)
    return state


def _take(iterator, n):
    out = []
    for item in iterator:
        out.append(item)
        if len(out) == n:
            break
    return out


def mean_and_pca(images: np.ndarray, chunk: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel mean image (§2) and the eigen-decomposition of the RGB covariance over all pixels (§4.1).

    Returns (mean image float32 (S, S, 3), eigenvalues float32 (3,) descending, eigenvectors float32 (3, 3) as
    columns), all in 0-255 units.  Accumulates in float64 over chunks of a (memory-mapped) uint8 array.
    """
    n = images.shape[0]
    total = np.zeros(images.shape[1:], np.float64)
    rgb_sum = np.zeros(3, np.float64)
    rgb_outer = np.zeros((3, 3), np.float64)
    for i in range(0, n, chunk):
        block = np.asarray(images[i:i + chunk], dtype=np.float64)
        total += block.sum(axis=0)
        pixels = block.reshape(-1, 3)
        rgb_sum += pixels.sum(axis=0)
        rgb_outer += pixels.T @ pixels
    count = n * images.shape[1] * images.shape[2]
    mu = rgb_sum / count
    cov = rgb_outer / count - np.outer(mu, mu)
    eigvals, eigvecs = np.linalg.eigh(cov)
    order = np.argsort(eigvals)[::-1]
    eigvals, eigvecs = eigvals[order], eigvecs[:, order]
    eigvecs *= np.where(eigvecs.sum(axis=0) < 0, -1.0, 1.0)  # a fixed sign, so caches compare equal
    return (total / n).astype(np.float32), eigvals.clip(min=0).astype(np.float32), eigvecs.astype(np.float32)


@contextlib.contextmanager
def _locked(path: Path):
    """Hold an exclusive lock on ``path`` (so two processes never build the same cache at once)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build_cache(source: Source, size: int, cache_root: str | Path | None = None, *, progress: bool = True,
                workers: int | None = None) -> Path:
    """Decode a Source once into ``<cache_root>/<key>/`` (uint8 .npy, labels, mean image, PCA, meta) (§2).

    Resumable: progress is recorded after every chunk in ``<key>.partial/``; a rerun continues from there.
    Atomic: the folder is renamed to ``<key>/`` only when complete, so a half-written cache is never used.
    """
    cache_root = Path(cache_root) if cache_root is not None else data_dir() / "cache"
    key = _cache_key(source, size)
    final, partial = cache_root / key, cache_root / (key + ".partial")
    if (final / "complete.json").exists():
        return final
    workers = workers or os.cpu_count() or 1
    with _locked(cache_root / (key + ".lock")):
        if (final / "complete.json").exists():
            return final
        partial.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        states = {split: _decode_split(images, partial, split, size, workers=workers, progress=progress)
                  for split, images in (("train", source.train), ("val", source.val))}
        stats = partial / "stats.npz"
        if not stats.exists():
            mean, eigvals, eigvecs = mean_and_pca(np.load(partial / "train_images.npy", mmap_mode="r"))
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
        _atomic_json(partial / "meta.json", meta)
        _atomic_json(partial / "complete.json", {"key": key, "date": time.strftime("%Y-%m-%d %H:%M:%S")})
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


# ---------------------------------------------------------------------------------------------------------------
# The entry point


def limit_images(images: ImageList, limit: int | None, num_classes: int) -> ImageList:
    """At most ``limit`` images, balanced over classes (the first ones of each class in sorted order)."""
    if limit is None or limit >= len(images):
        return images
    per_class = [limit // num_classes + (1 if c < limit % num_classes else 0) for c in range(num_classes)]
    keep = []
    for i, label in enumerate(images.labels):
        if per_class[label] > 0:
            per_class[label] -= 1
            keep.append(i)
    return ImageList([images.keys[i] for i in keep], [images.labels[i] for i in keep], images.storage, images.archive)


def _banner(text: str) -> None:
    line = "!" * 100
    print(f"\n{line}\n!! {text}\n{line}\n", file=sys.stderr, flush=True)
    warnings.warn(text, stacklevel=3)


def open_source(name: str = "auto", root: str | Path | None = None) -> Source:
    """Locate a data set by name (without decoding): cifar10, synthetic, imagenet, imagenet-subset, imagenette,
    imagewoof, folder; "auto" = CIFAR-10 found locally, else downloaded, else (loudly) the synthetic set."""
    key = name.lower().replace("_", "-")
    if key == "auto":
        if root is not None:
            return open_cifar10(root)
        local = find_cifar10()
        if local is not None:
            return open_cifar10(local)
        downloaded = download_cifar10(data_dir())
        if downloaded is not None:
            return open_cifar10(downloaded)
        _banner(f"NO REAL DATA FOUND -- training on the SYNTHETIC set instead. To use CIFAR-10: {HOW_TO_GET_DATA}")
        return open_synthetic()
    if key in ("cifar10", "cifar-10"):
        return open_cifar10(root, download=root is None)
    if key == "synthetic":
        return open_synthetic(root)
    if key in ("folder", "imagefolder"):
        if root is None:
            raise ValueError("data set 'folder' needs root= the folder holding train/ and val/")
        return open_imagefolder(Path(root).name, root)
    opener = _OPENERS.get(key)
    if opener is None:
        raise ValueError(f"unknown data set {name!r}; choose one of auto, cifar10, synthetic, folder, "
                         f"{', '.join(_OPENERS)}")
    return opener(root)


_OPENERS: dict = {}  # more data sets register here below (ImageNet, its subsets, Imagenette, Imagewoof)
FULL_BY_DEFAULT = ("imagenet", "imagenet-subset", "imagenette", "imagewoof")


def load_dataset(name: str = "auto", root: str | Path | None = None, *, scale: str | None = None,
                 limit: int | None = None, progress: bool = True) -> DataSplits:
    """Load a data set by name as uint8 train/val arrays, class names, mean image and PCA (§2, §4.1).

    name "auto": CIFAR-10 found locally (env ALEXNET_BOOK_CIFAR10, ../shared/data/cifar10-jpg.tar.gz from the
    project root, data/ folder), else torchvision download when online, else (loudly) the synthetic set.
    scale: "scaled" (store 36, crop 32) or "full" (store 256, crop 224); default "scaled" for cifar10/synthetic,
    "full" for ImageNet-like sets. limit: at most this many images per split (balanced over classes; for smoke
    modes and tests). Decodes once into the cache under data/cache/ (atomic, resumable, progress bar) and
    memory-maps it afterwards.
    """
    source = open_source(name, root)
    if scale is None:
        scale = "full" if source.name in FULL_BY_DEFAULT else "scaled"
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, not {scale!r}")
    size, crop = SCALES[scale]
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be a positive number of images per split, not {limit!r}")
        source.train = limit_images(source.train, limit, len(source.classes))
        source.val = limit_images(source.val, limit, len(source.classes))
    folder = build_cache(source, size, progress=progress)
    splits = load_cache(folder, crop)
    meta = json.loads((folder / "meta.json").read_text())
    _report(meta, str(folder))
    return splits
