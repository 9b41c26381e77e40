"""Imagenette / Imagewoof (fast.ai): download with checksum and resume, or a local path; tar extraction that
refuses members escaping the target folder."""
from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from ..files import data_dir, digest, download
from .imagenet import read_class_list
from .listing import _check_member, open_imagefolder
from .types import Source

FASTAI_URL = "https://s3.amazonaws.com/fast-ai-imageclas/{name}{size}.tgz"
FASTAI_SIZES = ("160", "320", "full")  # the shorter side of the published archives
# md5 of each archive as torchvision.datasets.Imagenette checks them; Imagewoof's sha256 as FluxML's FastAI.jl
# registers its DataDeps (FastAI.jl, src/datasets/.../imagewoof: 160 and 320 px; the full-size archive has no
# published checksum: its sha256 is printed after download so a user can pin it with --sha256).
FASTAI_MD5 = {"imagenette2.tgz": "fe2fc210e6bb7c5664d602c3cd71e612",
              "imagenette2-320.tgz": "3df6f0d01a2c9592104656642f5e78a3",
              "imagenette2-160.tgz": "e793b78cc4c9e9a4ccc0c1155377a412"}
FASTAI_SHA256 = {"imagewoof2-160.tgz": "663c22f69c2802d85e2a67103c017e047096702ffddf9149a14011b7002539bf",
                 "imagewoof2-320.tgz": "4e4905ed7643120daaf9bf3b2ef7f3a7e8396d9bdaf254a38c6f01f618b4973d"}


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
                         sha256=sha256 or FASTAI_SHA256.get(archive.name),
                         again="download it again (an archive re-published upstream: pass its checksum with --sha256)")
                print(f"{archive.name} sha256 {digest(archive, 'sha256')}")
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
