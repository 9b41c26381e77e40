"""ImageNet ILSVRC-2012: the official archives (a train tar of per-class tars, a flat val tar, the devkit's ground
truth) or their extracted folders; class index = sorted wnids (§2).  Also the shipped class lists."""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..files import data_dir, project_root
from .listing import (_check_member, _class_tree, _is_image_name, _listing_path, _ListingBar, _save_listing,
                      _tar_members, scan_folder)
from .types import ImageList, Source

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
