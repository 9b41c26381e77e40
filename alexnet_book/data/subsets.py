"""ImageNet subsets: N classes × M images as a manifest or a tree of symlinks (no copying)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..files import atomic_write_json, data_dir
from .imagenet import _imagenet_names, read_class_list
from .listing import open_imagefolder
from .types import ImageList, Source

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
        atomic_write_json(out, manifest)
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
