"""Helpers several test files share (imported as ``from support import ...``; tests/ is on sys.path, see
conftest.py).  Fixtures built on them live in conftest.py."""
import io
import tarfile

import numpy as np
import torch
from PIL import Image

from alexnet_book.config import TrainConfig
from alexnet_book import data
from alexnet_book.data import DataSplits, ImageArrays
from alexnet_book.train import train

S, C = 36, 32  # the scaled track: stored 36, crop 32


def fake_splits(n_train=64, n_val=41, classes=4, size=36, crop=32, seed=0) -> DataSplits:
    """A tiny in-memory data set: each class a colour plus noise, stored 36 px for 32 px crops."""
    g = torch.Generator().manual_seed(seed)
    colours = torch.tensor([[200, 40, 40], [40, 200, 40], [40, 40, 200], [200, 200, 40]])

    def split(n):
        labels = torch.arange(n) % classes
        noise = torch.randint(-50, 50, (n, size, size, 3), generator=g)
        images = (colours[labels % 4][:, None, None, :] + noise).clamp(0, 255).to(torch.uint8)
        return ImageArrays(images=images, labels=labels.long())

    train_split, val_split = split(n_train), split(n_val)
    names = [f"class{i}" for i in range(classes)]
    return DataSplits(name="synthetic", train=train_split, val=val_split, classes=names, class_names=names,
                      mean_image=train_split.images.float().mean(0), pca_eigvals=torch.tensor([900.0, 90.0, 9.0]),
                      pca_eigvecs=torch.linalg.qr(torch.randn(3, 3, generator=g))[0], crop=crop, source="fake")


def tiny_config(out_dir, **changes) -> TrainConfig:
    """The scaled AlexNet (dropout, LRN, towers) on fake data, fp32 and deterministic, 4 steps per epoch."""
    fields = dict(data="synthetic", model="alexnet", scale="scaled", epochs=3, batch_size=16, lr=0.01,
                  input_scale=1 / 64, precision="fp32", deterministic=True, log_every=1, checkpoint_every=3,
                  ten_crop=True, out_dir=str(out_dir))
    return TrainConfig(**{**fields, **changes})


def quiet(config, **kwargs):
    """``train`` without progress output, on ``fake_splits()`` unless ``splits=`` is given."""
    return train(config, progress=False, splits=kwargs.pop("splits", None) or fake_splits(), **kwargs)


def random_basis(seed=0):
    """A random orthonormal 3×3 basis (PCA eigenvectors for the colour-noise tests)."""
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q.float()


# -- files in the real formats (JPEGs, tar members, ImageNet's archives and devkit) ----------------------------

def jpeg_bytes(colour, size=(20, 16), mode="RGB", fmt="JPEG"):
    img = Image.new("RGB", size, tuple(colour))
    if mode != "RGB":
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, fmt, quality=95)
    return buf.getvalue()


def colour_of(label):
    return [(40 * label + 30) % 256, (90 * label + 60) % 256, (150 * label + 10) % 256]


def add_tar_member(tar, name, payload):
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def write_devkit(path, wnids, val_wnids):
    """ILSVRC2012_devkit_t12.tar.gz with data/meta.mat (ids NOT in sorted order, plus a non-leaf) + ground truth."""
    import scipy.io

    order = list(reversed(wnids))  # ILSVRC2012_ID order differs from the sorted-wnid class index
    dtype = [("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("gloss", "O"), ("num_children", "O"),
             ("children", "O"), ("wordnet_height", "O"), ("num_train_images", "O")]
    rows = [(i + 1, w, f"{w} thing, other name", "gloss", 0, np.zeros(0), 0, 2) for i, w in enumerate(order)]
    rows.append((len(order) + 1, "n00001740", "entity", "root", len(order), np.arange(1, len(order) + 1), 5, 0))
    synsets = np.array(rows, dtype=dtype)
    meta = io.BytesIO()
    scipy.io.savemat(meta, {"synsets": synsets})
    truth = "\n".join(str(order.index(w) + 1) for w in val_wnids) + "\n"
    with tarfile.open(path, "w:gz") as tar:
        add_tar_member(tar, "ILSVRC2012_devkit_t12/data/meta.mat", meta.getvalue())
        add_tar_member(tar, "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt", truth.encode())


def write_imagenet_archives(root, wnids, per_class=2):
    """The official layout: a train tar of per-class tars, a flat val tar, the devkit."""
    root.mkdir(parents=True, exist_ok=True)
    ordered = sorted(wnids)
    with tarfile.open(root / data.TRAIN_TAR, "w") as outer:
        for w in wnids:
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as t:
                for i in range(per_class):
                    add_tar_member(t, f"{w}_{i}.JPEG", jpeg_bytes(colour_of(ordered.index(w))))
            add_tar_member(outer, f"{w}.tar", inner.getvalue())
    val_wnids = [wnids[(3 * i + 1) % len(wnids)] for i in range(len(wnids) + 2)]
    with tarfile.open(root / data.VAL_TAR, "w") as tar:
        for i, w in enumerate(val_wnids):
            add_tar_member(tar, f"ILSVRC2012_val_{i + 1:08d}.JPEG", jpeg_bytes(colour_of(ordered.index(w))))
    write_devkit(root / data.DEVKIT, wnids, val_wnids)
    return val_wnids
