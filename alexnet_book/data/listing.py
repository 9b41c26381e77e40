"""Listing a data set before decoding (§2): ImageFolder trees, tar archives (member lists remembered under
data/cache/listings/), and the progress bar of long listings."""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import re
import tarfile
from pathlib import Path

from ..files import atomic_write_json, data_dir
from .types import HOW_TO_GET_DATA, IMAGE_SUFFIXES, ImageList, Source

LISTING_BAR_AFTER = 5000  # a listing longer than this many members shows a progress bar (archives, big folders)


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
        atomic_write_json(listing, names)


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
