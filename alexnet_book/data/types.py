"""What a split is before decoding, and what a data set is after: ImageList, Source, ImageArrays, DataSplits (§2),
with the stored and crop sides of each track."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .. import paper

# Stored side and crop side of each track (§2, §4.1).  The scaled track is the CIFAR-sized analogue of 256/224.
# "native" keeps CIFAR-10's own 32×32 pixels (stored 32, no resampling; the crop is the whole image): the input
# of the authors' CIFAR-10 nets (Fig. 1, cuda-convnet's examples).
SCALES = {"full": (paper.PREPROCESS["rescale"], paper.PREPROCESS["crop"]), "scaled": (36, 32), "native": (32, 32)}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".gif", ".tif", ".tiff", ".webp")
FULL_BY_DEFAULT = ("imagenet", "imagenet-subset", "imagenette", "imagewoof")  # sets stored at 256 by default
HOW_TO_GET_DATA = ("see data/README.md: put cifar10-jpg.tar.gz next to the project (../shared/data/) or set "
                   "ALEXNET_BOOK_CIFAR10=/path/to/it, or go online once so torchvision can download CIFAR-10")


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
