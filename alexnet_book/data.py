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
import contextvars
import hashlib
import io
import json
import multiprocessing
import os
import pickle
import re
import shlex
import shutil
import signal
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
from .runs import file_lock

# Stored side and crop side of each track (§2, §4.1).  The scaled track is the CIFAR-sized analogue of 256/224.
# "native" keeps CIFAR-10's own 32×32 pixels (stored 32, no resampling; the crop is the whole image): the input
# of the authors' CIFAR-10 nets (Fig. 1, cuda-convnet's examples).
SCALES = {"full": (paper.PREPROCESS["rescale"], paper.PREPROCESS["crop"]), "scaled": (36, 32), "native": (32, 32)}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".gif", ".tif", ".tiff", ".webp")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CACHE_VERSION = 2  # bump when the decoding changes, so old caches are rebuilt rather than reused
FULL_BY_DEFAULT = ("imagenet", "imagenet-subset", "imagenette", "imagewoof")  # sets stored at 256 by default
_OPENERS: dict = {}  # data sets beyond CIFAR-10 and synthetic register here (ImageNet, subsets, Imagenette, ...)
LISTING_BAR_AFTER = 5000  # a listing longer than this many members shows a progress bar (archives, big folders)
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


_LISTING_PROGRESS = contextvars.ContextVar("alexnet_book_listing_progress", default=True)


@contextlib.contextmanager
def _listing_progress(progress: bool):
    """Whether listings made inside the block may show their progress bar (``load_dataset(progress=)``)."""
    token = _LISTING_PROGRESS.set(bool(progress))
    try:
        yield
    finally:
        _LISTING_PROGRESS.reset(token)


class _ListingBar:
    """Counts the members of a listing; a tqdm bar (stderr) appears only once it passes ``LISTING_BAR_AFTER``.

    Listing a large archive (decompressing all of it) or a folder of a million files takes minutes; small
    listings, the usual case, stay silent.  Off inside ``_listing_progress(False)``.
    """

    def __init__(self, what: str):
        self.what, self.count, self.bar = what, 0, None

    def update(self, n: int = 1) -> None:
        self.count += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.count > LISTING_BAR_AFTER and _LISTING_PROGRESS.get():
            from tqdm.auto import tqdm

            self.bar = tqdm(desc=f"listing {self.what}", unit=" files", initial=self.count, leave=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


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


def _unreadable(folder: Path, e: OSError) -> PermissionError:
    return PermissionError(f"{folder}: folder not readable ({e.strerror or e}), so its images cannot be listed; "
                           f"make it readable with chmod -R a+rX {folder}")


def scan_folder(split_dir: str | Path, classes: list[str] | None = None,
                skipped: dict | None = None) -> tuple[ImageList, list[str]]:
    """List an ImageFolder split (``<split>/<class>/<image>``); class index = sorted folder names (§2)."""
    split_dir = Path(split_dir)
    skipped = {} if skipped is None else skipped
    if not split_dir.is_dir():
        raise FileNotFoundError(f"{split_dir}: no such folder; expected an ImageFolder split "
                                f"<root>/{split_dir.name}/<class>/<image> -- {HOW_TO_GET_DATA}")
    entries = []
    try:
        class_dirs = sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    except PermissionError as e:
        raise _unreadable(split_dir, e) from None

    def unreadable(e: OSError):  # os.walk skips a folder it cannot list; an unreadable class is not an empty one
        if isinstance(e, PermissionError):
            raise _unreadable(Path(e.filename or cdir), e) from None

    with _ListingBar(str(split_dir)) as bar:
        for cdir in class_dirs:
            found = False
            for dirpath, dirnames, filenames in os.walk(cdir, onerror=unreadable, followlinks=True):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for fname in sorted(filenames):
                    path = os.path.join(dirpath, fname)
                    if _is_image_name(fname):
                        entries.append((cdir.name, path))
                        found = True
                    else:
                        skipped.setdefault("not an image file", []).append(path)
                bar.update(len(filenames))
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


def _state_tag(path: Path) -> str:
    """A short name for one state of a file: its resolved path, size and modification time, hashed."""
    st = path.stat()
    return hashlib.sha1(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]


def _listing_path(archive: Path) -> Path:
    """Where the member list of ``archive`` is remembered, keyed by its path, size and modification time."""
    return data_dir() / "cache" / "listings" / f"{archive.name}-{_state_tag(archive)}.json"


def _save_listing(listing: Path, names: list[str]) -> None:
    with contextlib.suppress(OSError):  # only a speed-up: a read-only data folder just lists again next time
        listing.parent.mkdir(parents=True, exist_ok=True)
        _atomic_json(listing, names)


def _tar_members(archive: Path) -> list[str]:
    """The names of the regular files in a tar(.gz), each checked not to escape the target folder.

    Listing a compressed tar means decompressing all of it, so the list is kept under data/cache/listings/,
    keyed by the archive's path, size and modification time.
    """
    listing = _listing_path(archive)
    if listing.exists():
        with contextlib.suppress(ValueError, OSError):
            return json.loads(listing.read_text())
    try:
        with tarfile.open(archive, "r:*") as tar, _ListingBar(archive.name) as bar:
            names = []
            for m in tar:
                _check_member(archive, m.name)
                if m.isfile():
                    names.append(m.name)
                bar.update()
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ValueError(f"{archive}: not a readable tar archive ({e}); download it again") from None
    _save_listing(listing, names)
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
        _atomic_json(memo, {"path": str(path.resolve()), "digest": digest})
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
        _atomic_json(memo, {"digest": digest})
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
            _atomic_json(state_path, state)  # records progress only after the pixels are on disk
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
                write(pending.get())
            pending = job
        if pending is not None:
            write(pending.get())
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
    _atomic_json(state_path, state)
    return state


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
# ImageNet ILSVRC-2012: official archives or extracted folders; class index = sorted wnids


TRAIN_TAR, VAL_TAR, DEVKIT = "ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar", "ILSVRC2012_devkit_t12.tar.gz"
WNID = re.compile(r"^n\d{8}$")


def read_class_list(name: str) -> list[tuple[str, str]]:
    """A named class list from data/classes/<name>.txt: (wnid, name) pairs (name "" when not given)."""
    path = project_root() / "data" / "classes" / f"{name}.txt"
    if not path.exists():
        choices = sorted(p.stem for p in path.parent.glob("*.txt"))
        raise FileNotFoundError(f"{path}: no such class list; choose one of {', '.join(choices) or '(none)'} or "
                                "pass a list of wnids")
    pairs = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            wnid, _, label = line.partition(" ")
            pairs.append((wnid, label.strip()))
    return pairs


@dataclass
class Devkit:
    """What the ILSVRC-2012 devkit says: ILSVRC2012_ID → wnid, wnid → words, and the val ground truth (IDs)."""

    wnid_of_id: dict[int, str]
    words: dict[str, str]
    val_ids: list[int]


def read_devkit(path: str | Path) -> Devkit:
    """Read ``data/meta.mat`` and ``data/ILSVRC2012_validation_ground_truth.txt`` from the devkit (tar.gz or folder)."""
    import scipy.io

    path = Path(path)
    meta_bytes = truth_text = None
    try:
        if path.is_file():
            with tarfile.open(path, "r:*") as tar:
                for m in tar:
                    _check_member(path, m.name)
                    if m.name.endswith("data/meta.mat"):
                        meta_bytes = tar.extractfile(m).read()
                    elif m.name.endswith("data/ILSVRC2012_validation_ground_truth.txt"):
                        truth_text = tar.extractfile(m).read().decode()
        elif path.is_dir():
            metas = list(path.glob("**/data/meta.mat"))
            truths = list(path.glob("**/data/ILSVRC2012_validation_ground_truth.txt"))
            meta_bytes = metas[0].read_bytes() if metas else None
            truth_text = truths[0].read_text() if truths else None
        else:
            raise FileNotFoundError(f"{path}: no such devkit; download {DEVKIT} from image-net.org (see data/README.md)")
    except (tarfile.TarError, EOFError) as e:
        raise ValueError(f"{path}: not a readable devkit archive ({e}); download {DEVKIT} again") from None
    if meta_bytes is None or truth_text is None:
        raise ValueError(f"{path}: data/meta.mat or data/ILSVRC2012_validation_ground_truth.txt missing; "
                         f"this is not the ILSVRC-2012 devkit ({DEVKIT})")
    synsets = scipy.io.loadmat(io.BytesIO(meta_bytes), squeeze_me=True)["synsets"]
    wnid_of_id, words = {}, {}
    for s in np.atleast_1d(synsets):
        if int(s["num_children"]) == 0:  # the 1000 leaf classes; the rest are WordNet ancestors
            wnid_of_id[int(s["ILSVRC2012_ID"])] = str(s["WNID"])
            words[str(s["WNID"])] = str(s["words"])
    val_ids = [int(x) for x in truth_text.split()]
    return Devkit(wnid_of_id, words, val_ids)


def _imagenet_names(classes: list[str], devkit: Devkit | None) -> list[str]:
    """Human-readable names: the devkit's first synonym, else a shipped class list, else the wnid."""
    known = {}
    for list_name in ("imagenet1000", "imagenette", "imagewoof"):
        with contextlib.suppress(FileNotFoundError):
            known.update({w: n for w, n in read_class_list(list_name) if n})
    if devkit is not None:
        known.update({w: words.split(",")[0].strip() for w, words in devkit.words.items()})
    return [known.get(c, c) for c in classes]


def _val_labels_flat(files: list[str], root: Path, devkit: Devkit | None, classes: list[str]) -> list[int]:
    """Labels of a flat val folder/tar (ILSVRC2012_val_00000001.JPEG ...) from the devkit or Kaggle's CSV."""
    index = {c: i for i, c in enumerate(classes)}
    solution = next(iter(root.glob("LOC_val_solution.csv")), None) if root.is_dir() else None
    wnid_of_file = {}
    if solution is not None:  # Kaggle's layout: ImageId,PredictionString "n01751748 x y x y ..."
        for line in solution.read_text().splitlines()[1:]:
            image_id, _, pred = line.partition(",")
            wnid_of_file[image_id] = pred.split()[0]
    elif devkit is None:
        raise FileNotFoundError(f"{root}: flat val images need the devkit's ground truth; put {DEVKIT} (or its "
                                "extracted folder) next to them")
    labels = []
    for f in files:
        stem = Path(f).name.split(".")[0]
        if wnid_of_file:
            wnid = wnid_of_file.get(stem)
        else:
            number = int(stem.rsplit("_", 1)[-1])
            if not 1 <= number <= len(devkit.val_ids):
                raise ValueError(f"{f}: no ground truth for val image {number}; is the devkit the ILSVRC-2012 one?")
            wnid = devkit.wnid_of_id[devkit.val_ids[number - 1]]
        if wnid not in index:
            raise ValueError(f"{f}: its class {wnid} is not among the training classes; check train/ is complete")
        labels.append(index[wnid])
    return labels


def _tar_of_tars_members(archive: Path) -> list[str]:
    """``<class>.tar/<image>`` for every image in the ILSVRC-2012 train tar (listed once, cached)."""
    listing = _listing_path(archive)
    if listing.exists():
        with contextlib.suppress(ValueError, OSError):
            return json.loads(listing.read_text())
    names = []
    try:
        with tarfile.open(archive, "r:") as outer, _ListingBar(archive.name) as bar:
            for om in outer:
                _check_member(archive, om.name)
                if not om.isfile():
                    continue
                if not om.name.endswith(".tar"):
                    raise ValueError(f"{archive}: member {om.name!r} is not a per-class tar; expected "
                                     f"{TRAIN_TAR} as distributed (one n########.tar per class)")
                with tarfile.open(fileobj=outer.extractfile(om), mode="r:") as inner:
                    for m in inner:
                        _check_member(archive, f"{om.name}/{m.name}")
                        if m.isfile():
                            names.append(f"{om.name}/{m.name}")
                        bar.update()
    except (tarfile.TarError, EOFError) as e:
        raise ValueError(f"{archive}: not a readable tar of tars ({e}); download {TRAIN_TAR} again") from None
    _save_listing(listing, names)
    return names


def open_imagenet(root: str | Path | None = None) -> Source:
    """ILSVRC-2012 from the official archives or extracted folders; class index = sorted wnids (§2).

    ``root`` holds any mix of: ILSVRC2012_img_train.tar (a tar of per-class tars) or train/<wnid>/;
    ILSVRC2012_img_val.tar (flat) or val/<wnid>/ or val/ flat; and ILSVRC2012_devkit_t12.tar.gz (or its
    folder, or Kaggle's LOC_val_solution.csv) for the flat val labels and the class names.
    """
    if root is None:
        root = os.environ.get("ALEXNET_BOOK_IMAGENET") or data_dir() / "imagenet"
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder; pass root= the folder holding {TRAIN_TAR}, {VAL_TAR} "
                                f"and {DEVKIT} (or train/ and val/), or set ALEXNET_BOOK_IMAGENET (data/README.md)")
    devkit_path = next((p for p in (root / DEVKIT, root / "ILSVRC2012_devkit_t12") if p.exists()), None)
    devkit = read_devkit(devkit_path) if devkit_path else None
    skipped: dict[str, list[str]] = {}
    if (root / TRAIN_TAR).is_file():
        names = _tar_of_tars_members(root / TRAIN_TAR)
        entries = []
        for n in names:
            cls = n.split("/", 1)[0][:-len(".tar")]
            if _is_image_name(n):
                entries.append((cls, n))
            else:
                skipped.setdefault("not an image file", []).append(f"{root / TRAIN_TAR}:{n}")
        keys, labels, classes = _class_tree(entries, str(root / TRAIN_TAR), skipped, None)
        train = ImageList(keys, labels, "tar-of-tars", str(root / TRAIN_TAR))
    elif (root / "train").is_dir():
        train, classes = scan_folder(root / "train", None, skipped)
    else:
        raise ValueError(f"{root}: neither {TRAIN_TAR} nor train/<wnid>/ found; put the official archives or the "
                         "extracted folders there (data/README.md)")
    odd = [c for c in classes if not WNID.match(c)]
    if odd:
        raise ValueError(f"{root}: class {odd[0]!r} is not a wnid (n########); is this the ImageNet train set?")
    if (root / VAL_TAR).is_file():
        files = sorted(n for n in _tar_members(root / VAL_TAR) if _is_image_name(n))
        val = ImageList(files, _val_labels_flat(files, root, devkit, classes), "tar", str(root / VAL_TAR))
    elif (root / "val").is_dir():
        flat = sorted(p for p in (root / "val").iterdir() if p.is_file() and _is_image_name(p.name))
        if flat:
            files = [str(p) for p in flat]
            val = ImageList(files, _val_labels_flat(files, root, devkit, classes), "files")
        else:
            val, _ = scan_folder(root / "val", classes, skipped)
    else:
        raise ValueError(f"{root}: neither {VAL_TAR} nor val/ found; put the validation images there")
    return Source("imagenet", train, val, classes, _imagenet_names(classes, devkit), f"imagenet {root}", skipped)


# ---------------------------------------------------------------------------------------------------------------
# ImageNet subsets: N classes × M images as a manifest or a tree of symlinks (no copying)


def make_subset(source: Source, classes: str | int | list[str], images: int | None = None, *,
                val_images: int | None = None, seed: int = 0, out: str | Path | None = None,
                symlinks: bool = False) -> Path:
    """Pick N classes (seeded, or a named list: imagenette, imagewoof, imagenet100) × M train images per class.

    Writes ``out`` as a JSON manifest (default; works for archives too) or, with ``symlinks=True``, as an
    ImageFolder tree of symlinks to the original files.  Nothing is copied.  Val keeps all images of the chosen
    classes unless ``val_images`` is given.  Load it with ``load_dataset("imagenet-subset", root=out)``.
    """
    rng = np.random.default_rng(seed)
    if isinstance(classes, str):
        wanted = [w for w, _ in read_class_list(classes)]
        tag = classes
    elif isinstance(classes, int):
        if not 0 < classes <= len(source.classes):
            raise ValueError(f"cannot pick {classes} classes out of {len(source.classes)}")
        wanted = [source.classes[i] for i in sorted(rng.choice(len(source.classes), classes, replace=False))]
        tag = f"{classes}classes-seed{seed}"
    else:
        wanted, tag = list(classes), f"{len(classes)}classes"
    missing = [w for w in wanted if w not in source.classes]
    if missing:
        raise ValueError(f"{source.description}: class {missing[0]} of the subset is not in the data set; check "
                         "the class list or the data set root")
    chosen = sorted(wanted)  # the subset's own class index = sorted wnids, like the full set
    old = {source.classes.index(w): i for i, w in enumerate(chosen)}

    def pick(images_list: ImageList, per_class: int | None) -> tuple[list[str], list[int]]:
        keys, labels = [], []
        for old_label, new_label in old.items():
            members = [k for k, lab in zip(images_list.keys, images_list.labels) if lab == old_label]
            if per_class is not None and per_class < len(members):
                members = [members[i] for i in sorted(rng.choice(len(members), per_class, replace=False))]
            keys += members
            labels += [new_label] * len(members)
        return keys, labels

    train_keys, train_labels = pick(source.train, images)
    val_keys, val_labels = pick(source.val, val_images)
    names = [source.class_names[source.classes.index(w)] for w in chosen]
    if out is None:
        out = data_dir() / "subsets" / f"{source.name}-{tag}-{images or 'all'}img-seed{seed}"
        out = out.with_suffix(".json") if not symlinks else out
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not symlinks:
        manifest = {"name": "imagenet-subset", "parent": source.description, "classes": chosen, "class_names": names,
                    "seed": seed, "images_per_class": images,
                    "train": {"storage": source.train.storage, "archive": source.train.archive,
                              "keys": train_keys, "labels": train_labels},
                    "val": {"storage": source.val.storage, "archive": source.val.archive,
                            "keys": val_keys, "labels": val_labels}}
        _atomic_json(out, manifest)
        return out
    if source.train.storage != "files" or source.val.storage != "files":
        raise ValueError(f"{source.description}: symlinks need extracted image files; extract the archives or "
                         "write a manifest instead (the default)")
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    for split, keys, labels in (("train", train_keys, train_labels), ("val", val_keys, val_labels)):
        for key, label in zip(keys, labels):
            folder = tmp / split / chosen[label]
            folder.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.abspath(key), folder / Path(key).name)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def open_subset(root: str | Path) -> Source:
    """An ImageNet subset: a manifest written by make_subset, or a symlink (or plain) ImageFolder tree."""
    root = Path(root).expanduser()
    if root.is_dir():
        src = open_imagefolder("imagenet-subset", root)
        src.class_names = _imagenet_names(src.classes, None)
        return src
    if not root.is_file():
        raise FileNotFoundError(f"{root}: no such subset; make one with `alexnet-book data subset` (data/README.md)")
    try:
        m = json.loads(root.read_text())
        lists = [ImageList(list(m[s]["keys"]), [int(x) for x in m[s]["labels"]], m[s]["storage"], m[s]["archive"])
                 for s in ("train", "val")]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{root}: not a subset manifest ({e}); make one with `alexnet-book data subset`") from None
    for images in lists:
        where = images.archive if images.storage != "files" else (images.keys[0] if images.keys else None)
        if where and not Path(where).exists():
            raise FileNotFoundError(f"{where}: listed in the manifest {root} but missing; has the data set moved? "
                                    "make the subset again")
    return Source("imagenet-subset", lists[0], lists[1], list(m["classes"]), list(m["class_names"]),
                  f"imagenet-subset {root} of {m.get('parent', '?')}")


# ---------------------------------------------------------------------------------------------------------------
# Imagenette / Imagewoof (fast.ai): download with checksum and resume, or a local path


FASTAI_URL = "https://s3.amazonaws.com/fast-ai-imageclas/{name}{size}.tgz"
# md5 of each archive as torchvision.datasets.Imagenette checks them; Imagewoof's sha256 as FluxML's FastAI.jl
# registers its DataDeps (FastAI.jl, src/datasets/.../imagewoof: 160 and 320 px; the full-size archive has no
# published checksum: its sha256 is printed after download so a user can pin it with --sha256).
FASTAI_MD5 = {"imagenette2.tgz": "fe2fc210e6bb7c5664d602c3cd71e612",
              "imagenette2-320.tgz": "3df6f0d01a2c9592104656642f5e78a3",
              "imagenette2-160.tgz": "e793b78cc4c9e9a4ccc0c1155377a412"}
FASTAI_SHA256 = {"imagewoof2-160.tgz": "663c22f69c2802d85e2a67103c017e047096702ffddf9149a14011b7002539bf",
                 "imagewoof2-320.tgz": "4e4905ed7643120daaf9bf3b2ef7f3a7e8396d9bdaf254a38c6f01f618b4973d"}


def download(url: str, dest: str | Path, *, md5: str | None = None, sha256: str | None = None,
             timeout: float = 30.0, progress: bool = True, chunk: int = 1 << 20) -> Path:
    """Download ``url`` to ``dest``, resuming a partial ``dest.partial`` (HTTP Range), verifying md5/sha256.

    The file appears at ``dest`` only when complete and verified.  A checksum mismatch deletes the partial
    file and raises ValueError naming both digests.
    """
    import urllib.error
    import urllib.request

    from tqdm.auto import tqdm

    dest = Path(dest)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the partial file is already whole: verify it below
            response = None
        else:
            raise OSError(f"{url}: HTTP {e.code} {e.reason}; check the address or try again later") from None
    except (urllib.error.URLError, OSError) as e:
        raise OSError(f"{url}: cannot download ({getattr(e, 'reason', e)}); check the connection, or download it "
                      f"by hand to {dest}") from None
    if response is not None:
        with response:
            resumed = response.status == 206
            total = response.headers.get("Content-Length")
            total = int(total) + (have if resumed else 0) if total else None
            mode = "ab" if resumed else "wb"
            with open(partial, mode) as f, tqdm(total=total, initial=have if resumed else 0, unit="B",
                                                unit_scale=True, desc=dest.name, disable=not progress) as bar:
                while True:
                    block = response.read(chunk)
                    if not block:
                        break
                    f.write(block)
                    bar.update(len(block))
    for algo, want in (("md5", md5), ("sha256", sha256)):
        if want:
            got = _digest(partial, algo)
            if got != want.lower():
                partial.unlink()
                raise ValueError(f"{dest}: {algo} {got} does not match the expected {want}; the download is "
                                 "corrupt or the file changed upstream -- deleted it, download again (an archive "
                                 "re-published upstream: pass its checksum with --sha256)")
    os.replace(partial, dest)
    return dest


def _digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def extract_tar(archive: str | Path, target: str | Path) -> Path:
    """Extract a tar(.gz) into ``target`` atomically, refusing any member that would land outside it."""
    archive, target = Path(archive), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for m in members:
                _check_member(archive, m.name)
            tar.extractall(tmp, members=members, filter="data")  # also refuses links that point outside
    except tarfile.FilterError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(f"{archive}: member {e.tarinfo.name!r} escapes the target folder ({e}); refusing it -- "
                         "the archive is unsafe or corrupt, download it again from the official source") from None
    except (tarfile.TarError, EOFError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(f"{archive}: cannot extract ({e}); the archive is corrupt, download it again") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    return target


def open_fastai(name: str, root: str | Path | None = None, *, size: str = "320", download_ok: bool = True,
                sha256: str | None = None) -> Source:
    """Imagenette or Imagewoof: a local folder / .tgz, or download fast.ai's archive (160, 320 or full size)."""
    stem = {"imagenette": "imagenette2", "imagewoof": "imagewoof2"}[name]
    suffix = "" if str(size) in ("full", "") else f"-{size}"
    if root is None:
        present = [s for s in ("", "-320", "-160") if (data_dir() / f"{stem}{s}" / "train").is_dir()]
        suffix = suffix if suffix in present or not present else present[0]  # use what is already here
        folder = data_dir() / f"{stem}{suffix}"
        if not (folder / "train").is_dir():
            archive = data_dir() / f"{stem}{suffix}.tgz"
            if not archive.exists():
                if not download_ok:
                    raise FileNotFoundError(f"{archive}: not found; download it (data/README.md) or pass root=")
                download(FASTAI_URL.format(name=stem, size=suffix), archive, md5=FASTAI_MD5.get(archive.name),
                         sha256=sha256 or FASTAI_SHA256.get(archive.name))
                print(f"{archive.name} sha256 {_digest(archive, 'sha256')}")
            extract_tar(archive, folder.with_name(folder.name + ".extract"))
            inner = folder.with_name(folder.name + ".extract")
            top = inner / f"{stem}{suffix}"
            os.replace(top if top.is_dir() else inner, folder)
            shutil.rmtree(inner, ignore_errors=True)
        root = folder
    src = open_imagefolder(name, root)
    names = dict(read_class_list(name))
    src.class_names = [names.get(c, c) for c in src.classes]
    return src


_OPENERS.update({
    "imagenet": open_imagenet,
    "imagenet-subset": lambda root: open_subset(root if root is not None else data_dir() / "subsets" / "default.json"),
    "imagenette": lambda root: open_fastai("imagenette", root),
    "imagewoof": lambda root: open_fastai("imagewoof", root),
})


# ---------------------------------------------------------------------------------------------------------------
# Without a cache: a torch Dataset that decodes JPEGs on the fly


class JpegDataset(torch.utils.data.Dataset):
    """Decode image files on the fly to the stored §2 view (shorter side → S, centre crop): (uint8 S×S×3, label).

    For users without a cache and for the benchmark; batch the results and apply ``augment.train_batch``.
    ``fast`` (default True): libjpeg's fast DCT and chroma upsampling, as streaming loaders use (see
    ``decode_image``); the cache decodes exactly.  Undecodable files raise ValueError naming the file (build a
    cache to have them skipped and counted).
    """

    def __init__(self, images: ImageList, size: int, *, fast: bool = True):
        if images.storage != "files":
            raise ValueError(f"JpegDataset reads extracted files, not {images.storage}; build a cache instead")
        self.images, self.size, self.fast = images, size, fast

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path = self.images.keys[i]
        try:
            array, _ = decode_image(path, self.size, fast=self.fast)
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"{path}: cannot decode ({e}); delete or replace the file") from None
        return torch.from_numpy(array), self.images.labels[i]


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




def load_dataset(name: str = "auto", root: str | Path | None = None, *, scale: str | None = None,
                 limit: int | None = None, progress: bool = True) -> DataSplits:
    """Load a data set by name as uint8 train/val arrays, class names, mean image and PCA (§2, §4.1).

    name "auto": CIFAR-10 found locally (env ALEXNET_BOOK_CIFAR10, ../shared/data/cifar10-jpg.tar.gz from the
    project root, data/ folder), else torchvision download when online, else (loudly) the synthetic set.
    scale: "scaled" (store 36, crop 32), "full" (store 256, crop 224) or "native" (store 32, crop 32: CIFAR-10's
    own pixels, no resampling); default "scaled" for cifar10/synthetic,
    "full" for ImageNet-like sets. limit: at most this many images per split (balanced over classes; for smoke
    modes and tests). Decodes once into the cache under data/cache/ (atomic, resumable, progress bar) and
    memory-maps it afterwards.
    """
    with _listing_progress(progress):
        source, size, crop = _located(name, root, scale, limit)
    folder = build_cache(source, size, progress=progress)
    splits = load_cache(folder, crop)
    meta = json.loads((folder / "meta.json").read_text())
    _report(meta, str(folder))
    return splits


def _located(name, root, scale, limit) -> tuple[Source, int, int]:
    """The Source ``load_dataset`` decodes (limited to ``limit`` images per split), its stored and crop sides."""
    return _requested(open_source(name, root), scale, limit)


def _requested(source: Source, scale: str | None, limit: int | None) -> tuple[Source, int, int]:
    """``source`` limited to ``limit`` images per split (in place), with the stored and crop sides of ``scale``."""
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
    return source, size, crop


def data_identity(splits: DataSplits) -> dict:
    """Which data a run trained on, for the results store and checkpoints: ``source`` (where the set came from)
    and ``cache_key`` (the name of its cache: a fingerprint of the listing, labels, archives and stored size, and of
    each extracted image file's size and modification time)."""
    return {"source": splits.source, "cache_key": Path(splits.cache).name if splits.cache else ""}


def dataset_identity(name: str = "auto", root: str | Path | None = None, *, scale: str | None = None,
                     limit: int | None = None) -> dict:
    """``data_identity`` of what ``load_dataset(name, root, scale=, limit=)`` would open, from the listing alone
    (nothing is decoded): how a finished run is checked against the data found now, before it is reused."""
    source, size, _ = _located(name, root, scale, limit)
    return {"source": source.description, "cache_key": _cache_key(source, size)}


def cache_folder(source: Source, size: int, cache_root: str | Path | None = None) -> Path:
    """The folder ``build_cache(source, size, cache_root)`` writes (finished or not), from the listing alone."""
    cache_root = Path(cache_root) if cache_root is not None else data_dir() / "cache"
    return cache_root / _cache_key(source, size)


def same_data(recorded: dict | None, current: dict) -> bool:
    """Whether a recorded data identity matches the current one (a record without one matches anything)."""
    if not recorded:
        return True
    if recorded.get("cache_key") and current.get("cache_key"):
        if recorded["cache_key"] == current["cache_key"]:
            return True
        # keys made differently (an older key that hashed the archive's modification time) or of another copy:
        # the same data when both caches are on disk and hold the same decoded pixels and labels
        caches = data_dir() / "cache"
        old, new = (cache_content_digest(caches / key) for key in (recorded["cache_key"], current["cache_key"]))
        return old is not None and old == new
    return recorded.get("source") == current.get("source")


# ---------------------------------------------------------------------------------------------------------------
# Summaries and the `alexnet-book data` command


def describe(splits: DataSplits) -> "pandas.DataFrame":
    """One row per split: images, classes, stored side, crop side, cache size (for notebooks and `data info`)."""
    import pandas as pd

    rows = []
    for split in ("train", "val"):
        arrays = getattr(splits, split)
        rows.append({"data set": splits.name, "split": split, "images": len(arrays), "classes": len(splits.classes),
                     "stored": f"{splits.size}×{splits.size}", "crop": f"{splits.crop}×{splits.crop}",
                     "MB": round(arrays.images.numel() / 2**20, 1),
                     "images per class (min-max)": "{}-{}".format(*_count_range(arrays.labels, len(splits.classes)))})
    return pd.DataFrame(rows)


def _count_range(labels: torch.Tensor, n: int) -> tuple[int, int]:
    counts = torch.bincount(labels, minlength=n)
    return int(counts.min()), int(counts.max())


def class_counts(splits: DataSplits | Source) -> "pandas.DataFrame":
    """Images per class in each split, with the human-readable names: of the decoded arrays (DataSplits) or of
    the listing before decoding (Source: what a cache would hold, less any undecodable file)."""
    import pandas as pd

    n = len(splits.classes)

    def counts(labels) -> list[int]:
        return torch.bincount(torch.as_tensor(labels, dtype=torch.int64), minlength=n).tolist()

    return pd.DataFrame({"class": splits.classes, "name": splits.class_names,
                         "train": counts(splits.train.labels), "val": counts(splits.val.labels)})


def cache_status(source: Source, size: int, cache_root: str | Path | None = None) -> tuple[str, Path]:
    """Whether the cache of ``source`` at ``size`` px exists, without decoding: ("built" | "partial" | "missing",
    its folder).  "partial": a build stopped part-way (``build_cache`` resumes it)."""
    folder = cache_folder(source, size, cache_root)
    if (folder / "complete.json").exists():
        return "built", folder
    if (folder.parent / (folder.name + ".partial")).is_dir():
        return "partial", folder
    return "missing", folder


def cli_main(argv: list[str]) -> int:
    """`alexnet-book data {info,cache,subset,download,synthetic}`: inspect data sets, build caches and subsets (§2)."""
    parser = argparse.ArgumentParser(prog="alexnet-book data", description=cli_main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, cache=True):
        p.add_argument("--data", default="auto", help="data set: auto, cifar10, synthetic, imagenet, "
                       "imagenet-subset, imagenette, imagewoof, folder (default: auto)")
        p.add_argument("--root", default=None, help="where the data set is (folder, archive or manifest); "
                       "default: the usual places (data/README.md)")
        if cache:
            p.add_argument("--scale", choices=list(SCALES), default=None,
                           help="full: store 256, crop 224; scaled: store 36, crop 32; native: store 32, crop 32 "
                                "(CIFAR-10's own pixels) (default: by data set)")
            p.add_argument("--limit", type=int, default=None, help="at most this many images per split, "
                           "balanced over classes (smoke runs)")

    p = sub.add_parser("info", help="what a data set holds: splits, classes, where it is, whether it is cached")
    common(p)
    p.add_argument("--classes", action="store_true", help="also list images per class (from the listing; from "
                   "the cache with --build)")
    p.add_argument("--build", action="store_true", help="build the cache if missing and show mean and PCA")
    p = sub.add_parser("cache", help="decode a data set once into the uint8 cache (resumable, atomic)")
    common(p)
    p.add_argument("--workers", type=int, default=None, help="decoding processes (default: all cores)")
    p = sub.add_parser("subset", help="an N-class × M-image subset as a manifest or symlinks (no copying)")
    common(p, cache=False)
    p.add_argument("--classes", required=True, help="a named list (imagenette, imagewoof, imagenet100), "
                   "a number of classes picked at random with --seed, or comma-separated wnids")
    p.add_argument("--images", type=int, default=None, help="training images per class (default: all)")
    p.add_argument("--val-images", type=int, default=None, help="validation images per class (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed for the random choices (default 0)")
    p.add_argument("--out", default=None, help="manifest .json or symlink folder (default: data/subsets/...)")
    p.add_argument("--symlinks", action="store_true", help="write an ImageFolder tree of symlinks instead")
    p = sub.add_parser("download", help="download and extract Imagenette or Imagewoof (resumable, verified)")
    p.add_argument("name", choices=["imagenette", "imagewoof"], help="which fast.ai data set")
    p.add_argument("--size", choices=["160", "320", "full"], default="320", help="shorter side (default 320)")
    p.add_argument("--sha256", default=None, help="expected sha256 of the archive, if you have one")
    p = sub.add_parser("synthetic", help="write the deterministic synthetic ImageFolder set")
    p.add_argument("--out", default=None, help="folder (default: data/synthetic-...)")
    p.add_argument("--classes", type=int, default=10, help="number of classes (default 10)")
    p.add_argument("--train", type=int, default=60, help="training images per class (default 60)")
    p.add_argument("--val", type=int, default=12, help="validation images per class (default 12)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    args = parser.parse_args(argv)
    try:
        if args.command == "info":
            source = open_source(args.data, args.root)
            print(f"source   {source.description}")
            print(f"classes  {len(source.classes)}: {', '.join(source.class_names[:10])}"
                  f"{' ...' if len(source.classes) > 10 else ''}")
            print(f"images   train {len(source.train)}, val {len(source.val)} (listed; storage {source.train.storage})")
            for reason, paths in source.skipped.items():
                print(f"skipped  {len(paths)} {reason}, e.g. {paths[0]}")
            scale = args.scale or ("full" if source.name in FULL_BY_DEFAULT else "scaled")
            source, size, _ = _requested(source, scale, args.limit)
            state, folder = cache_status(source, size)
            wanted = f"scale {scale} ({size}px)" + (f", limit {args.limit}" if args.limit else "")
            if state == "built":
                meta = json.loads((folder / "meta.json").read_text())
                print(f"cache    built for {wanted}: {folder} (train {meta['train']}, val {meta['val']} images)")
            else:
                how = ["--data", args.data] + (["--root", args.root] if args.root else []) + ["--scale", scale] \
                    + (["--limit", str(args.limit)] if args.limit else [])
                print(f"cache    {'partly built' if state == 'partial' else 'not built'} for {wanted}: {folder}; "
                      f"{'finish' if state == 'partial' else 'build'} it with `alexnet-book data cache "
                      f"{shlex.join(how)}` or add --build")
            if args.classes and not args.build:
                print(class_counts(source).to_string(index=False))
            if args.build:
                splits = load_dataset(args.data, args.root, scale=args.scale, limit=args.limit)
                print(describe(splits).to_string(index=False))
                print(f"cache    {splits.cache}")
                print(f"mean RGB {[round(v, 1) for v in splits.mean_image.mean((0, 1)).tolist()]}")
                print(f"PCA λ    {[round(v, 1) for v in splits.pca_eigvals.tolist()]}")
                if args.classes:
                    print(class_counts(splits).to_string(index=False))
        elif args.command == "cache":
            source = open_source(args.data, args.root)
            scale = args.scale or ("full" if source.name in FULL_BY_DEFAULT else "scaled")
            if args.limit:
                source.train = limit_images(source.train, args.limit, len(source.classes))
                source.val = limit_images(source.val, args.limit, len(source.classes))
            folder = build_cache(source, SCALES[scale][0], workers=args.workers)
            meta = json.loads((folder / "meta.json").read_text())
            print(f"{folder}: train {meta['train']}, val {meta['val']} images at {meta['size']}px; "
                  f"skipped/converted: {meta['skipped'] or 'none'}")
        elif args.command == "subset":
            source = open_source(args.data if args.data != "auto" else "imagenet", args.root)
            classes = args.classes
            if classes.isdigit():
                classes = int(classes)
            elif "," in classes or WNID.match(classes):
                classes = [c.strip() for c in classes.split(",") if c.strip()]
            out = make_subset(source, classes, args.images, val_images=args.val_images, seed=args.seed,
                              out=args.out, symlinks=args.symlinks)
            print(f"{out}  (load with --data imagenet-subset --root {out})")
        elif args.command == "download":
            src = open_fastai(args.name, None, size=args.size, sha256=args.sha256)
            print(f"{src.description}: train {len(src.train)}, val {len(src.val)} images, {len(src.classes)} classes")
        elif args.command == "synthetic":
            out = make_synthetic(args.out, classes=args.classes, train_per_class=args.train, val_per_class=args.val,
                                 seed=args.seed)
            print(out)
    except (ValueError, OSError) as e:
        print(f"alexnet-book data: {e}", file=sys.stderr)
        return 1
    return 0
