"""`alexnet-book bench data --folder DIR`: the input-pipeline benchmark on the reader's own images, which it only
reads.  Tiny and short; no timing assertions."""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from alexnet_book import bench
from alexnet_book.commands import bench as bench_command

torch.set_num_threads(1)


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """Temporary folders go here (outside the reader's folder), so the test can see they are cleaned up."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def snapshot(folder: Path) -> dict:
    """Every file and folder under ``folder`` with its size and modification time."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.stat()
            found[str(path.relative_to(folder))] = (st.st_size if path.is_file() else None, st.st_mtime_ns)
    st = folder.stat()
    found["."] = (None, st.st_mtime_ns)
    return found


def test_bench_data_on_a_readers_folder_reads_it_only(tmp_path, scratch, capsys):
    mine = bench.make_jpegs(tmp_path / "mine", 6, classes=2)  # an ImageFolder root: mine/train/class0/...
    before = snapshot(mine)
    code = bench_command.main(["data", "--folder", str(mine), "--images", "4", "--seconds", "0.01"])
    out = capsys.readouterr().out
    assert code == 0
    assert snapshot(mine) == before  # same files, sizes and modification times: nothing written into it
    assert not list(scratch.glob("alexnet-bench-*"))  # the cache went to a temporary folder, removed afterwards
    assert f"4 images from {mine} (median 500×375)" in out
    assert re.search(r"^jpeg_vs_reference=\d+\.\d\d cache_vs_reference=\d+\.\d\d$", out, re.M)  # the summary
    assert re.search(r"paper pipeline from the uint8 cache +\d+ images/s per core", out)


def test_list_images_takes_a_split_or_a_flat_folder(tmp_path):
    for i in range(3):
        (tmp_path / "flat").mkdir(exist_ok=True)
        Image.new("RGB", (20, 10), (i * 50, 0, 0)).save(tmp_path / "flat" / f"{i}.jpg")
    (tmp_path / "flat" / "notes.txt").write_text("not an image")
    listing, classes = bench.list_images(tmp_path / "flat")
    assert classes == ["."] and [Path(k).name for k in listing.keys] == ["0.jpg", "1.jpg", "2.jpg"]
    for cls in ("b", "a"):
        (tmp_path / "split" / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (20, 10)).save(tmp_path / "split" / cls / f"{i}.JPEG")
    listing, classes = bench.list_images(tmp_path / "split", images=4)
    assert classes == ["a", "b"] and listing.labels == [0, 0, 1, 1]


def test_bench_data_refuses_a_missing_or_empty_folder_in_one_line(tmp_path, scratch, capsys):
    assert bench_command.main(["data", "--folder", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing: no such folder" in err and "Traceback" not in err
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    assert bench_command.main(["data", "--folder", str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'empty'}: no images" in err
    assert not list(scratch.glob("alexnet-bench-*"))


def test_bench_data_never_puts_its_scratch_inside_the_readers_folder(tmp_path):
    mine = bench.make_jpegs(tmp_path / "mine", 2, classes=1)
    with pytest.raises(ValueError, match="must not write"):
        bench.bench_data(images=2, seconds=0.01, jpegs=mine, folder=mine / "scratch")
    assert not (mine / "scratch").exists()
