"""CIFAR-10: found locally (a .tar.gz, an ImageFolder or torchvision's cifar-10-batches-py) or downloaded by
torchvision; its batch files read without unpickling anything but arrays."""
from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import numpy as np

from ..files import data_dir, project_root
from .listing import open_imagefolder
from .types import HOW_TO_GET_DATA, ImageList, Source

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


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
