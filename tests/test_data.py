"""Data sets, formats, the §2 cache and bad input -- each real format built here in tiny archives."""
import functools
import hashlib
import http.server
import json
import os
import pickle
import shutil
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from alexnet_book import data, files
from alexnet_book.commands import data as data_command
from support import add_tar_member, colour_of, jpeg_bytes, write_imagenet_archives

torch.set_num_threads(1)
CIFAR = files.project_root().parent / "shared" / "data" / "cifar10-jpg.tar.gz"
IMAGENETTE = [w for w, _ in data.read_class_list("imagenette")]


@pytest.fixture(autouse=True)
def private_data_dir(tmp_path, monkeypatch):
    """Every test gets its own data/cache folder, so nothing touches the project's data/."""
    monkeypatch.setenv("ALEXNET_BOOK_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("ALEXNET_BOOK_CIFAR10", raising=False)
    return tmp_path / "data"


def write_folder(root, classes, per_class, split_names=("train", "val"), size=(20, 16)):
    for split in split_names:
        for cls in classes:
            label = sorted(classes).index(cls)  # the class index the loader must give it
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                (folder / f"{cls}_{i}.JPEG").write_bytes(jpeg_bytes(colour_of(label), size))
    return root


def labels_match_colours(arrays):
    """Each image's colour says which class it was written as (see colour_of)."""
    means = arrays.images.float().mean((1, 2))
    want = torch.tensor([colour_of(int(lab)) for lab in arrays.labels], dtype=torch.float32)
    return bool(((means - want).abs() < 6).all())


# ------------------------------------------------------------------------------------------------- ImageFolder


def test_imagefolder_loads_with_sorted_classes_and_right_labels(tmp_path):
    root = write_folder(tmp_path / "set", ["zebra", "ant", "moth"], 3)
    d = data.load_dataset("folder", root, progress=False)
    assert d.classes == ["ant", "moth", "zebra"]
    assert d.train.images.shape == (9, 36, 36, 3) and d.train.images.dtype == torch.uint8
    assert d.val.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2] and d.crop == 32
    assert labels_match_colours(d.train) and labels_match_colours(d.val)
    full = data.load_dataset("folder", root, scale="full", progress=False)
    assert full.train.images.shape == (9, 256, 256, 3) and full.crop == 224


def test_mean_image_and_pca_are_exact_on_a_known_set(tmp_path):
    """Lossless 36×36 PNGs are stored unchanged, so the mean image and the RGB PCA can be computed by hand."""
    rng = np.random.default_rng(0)
    pixels = {}
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (tmp_path / "set" / split / cls).mkdir(parents=True)
            for i in range(3):
                arr = rng.integers(0, 256, (36, 36, 3), dtype=np.uint8)
                arr[..., 1] = arr[..., 0] // 2 + 60  # correlated channels, so the PCA has structure
                Image.fromarray(arr).save(tmp_path / "set" / split / cls / f"{i}.png")
                pixels[(split, cls, i)] = arr
    d = data.load_dataset("folder", tmp_path / "set", progress=False)
    train = np.stack([pixels[("train", c, i)] for c in ("a", "b") for i in range(3)]).astype(np.float64)
    assert np.array_equal(d.train.images.numpy(), train.astype(np.uint8))
    np.testing.assert_allclose(d.mean_image.numpy(), train.mean(0), atol=1e-3)
    cov = np.cov(train.reshape(-1, 3).T, bias=True)
    vals, vecs = np.linalg.eigh(cov)
    np.testing.assert_allclose(d.pca_eigvals.numpy(), vals[::-1], rtol=1e-4)
    for k in range(3):  # same eigenvectors up to sign
        assert abs(abs(float(d.pca_eigvecs[:, k].double() @ torch.from_numpy(vecs[:, 2 - k]))) - 1) < 1e-4
    # P diag(λ) Pᵀ reproduces the covariance
    p, lam = d.pca_eigvecs.double().numpy(), d.pca_eigvals.double().numpy()
    np.testing.assert_allclose(p @ np.diag(lam) @ p.T, cov, rtol=1e-3, atol=1e-2)


def test_rescale_shorter_side_then_centre_crop():
    """§2: a 2:1 image keeps its central square; a colour band outside the square disappears."""
    arr = np.zeros((40, 80, 3), np.uint8)
    arr[:, :10] = 255  # a white band well outside the central 40×40 square (columns 20-59)
    arr[:, 30:50] = 100
    out, note = data.decode_image(arr, 20)
    assert out.shape == (20, 20, 3) and note == ""
    assert out[:, 0].max() == 0 and out[:, -1].max() == 0  # left and right edges of the square are black
    assert abs(int(out[10, 10, 0]) - 100) <= 1  # the centre band survives


def test_limit_is_balanced_over_classes(tmp_path):
    root = write_folder(tmp_path / "set", ["a", "b", "c"], 5)
    d = data.load_dataset("folder", root, limit=7, progress=False)
    assert len(d.train) == 7 and sorted(torch.bincount(d.train.labels).tolist()) == [2, 2, 3]


def test_tar_gz_of_imagefolder_matches_the_folder(tmp_path):
    root = write_folder(tmp_path / "set", ["cat", "dog"], 2, split_names=("train", "test"))
    archive = tmp_path / "set.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="cifar10-jpg")  # with a top folder, like many archives
    a = data.load_dataset("folder", archive, progress=False)
    b = data.load_dataset("folder", root, progress=False)
    assert a.classes == b.classes == ["cat", "dog"]
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.val.labels, b.val.labels)


def write_cifar_batches(folder, per_batch=4):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = [int(x) for x in rng.integers(0, 10, per_batch)]
        images = np.stack([np.broadcast_to(np.array(colour_of(lab), np.uint8)[:, None, None], (3, 32, 32))
                           for lab in labels]).reshape(per_batch, -1)
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": images,
                         "filenames": [f"{i}.png" for i in range(per_batch)]}, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(data.CIFAR10_CLASSES), "num_vis": 3072}, f, protocol=2)
    return folder


def test_torchvision_cifar_batches_layout(tmp_path):
    write_cifar_batches(tmp_path / "tv" / "cifar-10-batches-py")
    d = data.load_dataset("cifar10", tmp_path / "tv", progress=False)
    assert len(d.train) == 20 and len(d.val) == 4 and d.classes == list(data.CIFAR10_CLASSES)
    assert d.train.images.shape[1:] == (36, 36, 3) and labels_match_colours(d.train)


def test_cifar_batches_never_unpickle_code(tmp_path):
    folder = write_cifar_batches(tmp_path / "cifar-10-batches-py")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with open(folder / "data_batch_3", "wb") as f:
        pickle.dump({"data": Evil(), "labels": [0]}, f)
    with pytest.raises(ValueError, match="data_batch_3.*not a CIFAR-10 batch"):
        data.load_dataset("cifar10", folder, progress=False)


# ------------------------------------------------------------------------------------------------- ImageNet


def test_imagenet_official_archives(tmp_path):
    wnids = ["n03000000", "n01000000", "n02000000"]
    val_wnids = write_imagenet_archives(tmp_path / "in", wnids)
    d = data.load_dataset("imagenet", tmp_path / "in", scale="scaled", progress=False)
    assert d.name == "imagenet" and d.classes == sorted(wnids)
    assert d.class_names == [f"{w} thing" for w in sorted(wnids)]  # the devkit's first synonym
    assert len(d.train) == 6 and labels_match_colours(d.train)
    assert d.val.labels.tolist() == [sorted(wnids).index(w) for w in val_wnids]  # ID → wnid → sorted index
    assert labels_match_colours(d.val)


def test_imagenet_extracted_folders_flat_val_and_devkit_folder(tmp_path):
    wnids = ["n03000000", "n01000000", "n02000000"]
    root = tmp_path / "in"
    val_wnids = write_imagenet_archives(root, wnids)
    for w in wnids:  # extract the train tar of tars into train/<wnid>/
        with tarfile.open(root / data.TRAIN_TAR) as outer:
            inner = tarfile.open(fileobj=outer.extractfile(f"{w}.tar"))
            inner.extractall(root / "train" / w, filter="data")
    with tarfile.open(root / data.VAL_TAR) as tar:
        tar.extractall(root / "val", filter="data")
    with tarfile.open(root / data.DEVKIT) as tar:
        tar.extractall(root, filter="data")
    for name in (data.TRAIN_TAR, data.VAL_TAR, data.DEVKIT):
        (root / name).unlink()
    d = data.load_dataset("imagenet", root, scale="scaled", progress=False)
    assert d.classes == sorted(wnids) and d.val.labels.tolist() == [sorted(wnids).index(w) for w in val_wnids]
    assert d.class_names[0] == "n01000000 thing"


def test_imagenet_val_in_class_folders_and_wrong_layouts(tmp_path):
    root = write_folder(tmp_path / "in", ["n02000000", "n01000000"], 2)
    d = data.load_dataset("imagenet", root, scale="scaled", progress=False)
    assert d.classes == ["n01000000", "n02000000"] and labels_match_colours(d.val)
    odd = write_folder(tmp_path / "odd", ["cats"], 1)
    with pytest.raises(ValueError, match="'cats' is not a wnid"):
        data.load_dataset("imagenet", odd, progress=False)
    (tmp_path / "flat" / "val").mkdir(parents=True)
    write_folder(tmp_path / "flat", ["n01000000"], 1, split_names=("train",))
    (tmp_path / "flat" / "val" / "ILSVRC2012_val_00000001.JPEG").write_bytes(jpeg_bytes([0, 0, 0]))
    with pytest.raises(FileNotFoundError, match="devkit"):
        data.load_dataset("imagenet", tmp_path / "flat", progress=False)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        data.load_dataset("imagenet", tmp_path / "nowhere", progress=False)


def test_subsets_as_manifest_and_symlinks_without_copying(tmp_path):
    wnids = IMAGENETTE + ["n09999999"]
    root = write_folder(tmp_path / "in", wnids, 3)
    source = data.open_imagenet(root)
    manifest = data.make_subset(source, 4, 2, seed=1, out=tmp_path / "sub.json")
    d = data.load_dataset("imagenet-subset", manifest, scale="scaled", progress=False)
    assert len(d.classes) == 4 and len(d.train) == 8 and len(d.val) == 12 and set(d.classes) <= set(wnids)
    again = json.loads(data.make_subset(source, 4, 2, seed=1, out=tmp_path / "again.json").read_text())
    assert again["train"]["keys"] == json.loads(manifest.read_text())["train"]["keys"]  # seeded: reproducible
    other = json.loads(data.make_subset(source, 4, 2, seed=2, out=tmp_path / "other.json").read_text())
    assert other["train"]["keys"] != again["train"]["keys"]
    named = data.make_subset(source, "imagenette", None, out=tmp_path / "nette", symlinks=True)
    links = list((named / "train").rglob("*.JPEG"))
    assert len(links) == 30 and all(p.is_symlink() for p in links)
    n = data.load_dataset("imagenet-subset", named, scale="scaled", progress=False)
    assert n.classes == sorted(IMAGENETTE) and "tench" in n.class_names
    means = n.train.images.float().mean((1, 2))
    want = torch.tensor([colour_of(sorted(wnids).index(n.classes[lab])) for lab in n.train.labels], dtype=torch.float32)
    assert ((means - want).abs() < 6).all()  # relabelled 0..9 in sorted order, pixels of the right class
    with pytest.raises(ValueError, match="n09999998"):
        data.make_subset(source, ["n09999998"], 1, out=tmp_path / "bad.json")


def test_subset_of_the_archives_uses_a_manifest(tmp_path):
    wnids = ["n03000000", "n01000000", "n02000000"]
    write_imagenet_archives(tmp_path / "in", wnids)
    source = data.open_imagenet(tmp_path / "in")
    manifest = data.make_subset(source, ["n01000000", "n03000000"], 1, out=tmp_path / "sub.json")
    d = data.load_dataset("imagenet-subset", manifest, scale="scaled", progress=False)
    assert d.classes == ["n01000000", "n03000000"] and len(d.train) == 2
    with pytest.raises(ValueError, match="symlinks need extracted"):
        data.make_subset(source, 2, 1, out=tmp_path / "links", symlinks=True)


# ------------------------------------------------------------------------------------------------- download


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with HTTP Range support (what S3 does), recording each request's Range header."""

    requests: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        rng = self.headers.get("Range")
        type(self).requests.append(rng)
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            body = body[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    RangeHandler.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            functools.partial(RangeHandler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def write_fastai_tgz(path, stem):
    folder = path.parent / "build" / stem
    write_folder(folder, IMAGENETTE[:3], 2)
    (folder / "noisy_imagenette.csv").write_text("path,noisy_labels_0\n")
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname=stem)
    return path.read_bytes()


def test_download_verifies_md5(server, tmp_path):
    served, url = server
    payload = write_fastai_tgz(served / "imagenette2-160.tgz", "imagenette2-160")
    md5 = hashlib.md5(payload).hexdigest()
    out = files.download(f"{url}/imagenette2-160.tgz", tmp_path / "dl" / "a.tgz", md5=md5, progress=False)
    assert out.read_bytes() == payload and RangeHandler.requests == [None]


def test_download_resumes_a_partial_file_with_http_range(server, tmp_path):
    served, url = server
    payload = write_fastai_tgz(served / "x.tgz", "imagenette2-160")
    dest = tmp_path / "dl" / "x.tgz"
    dest.parent.mkdir()
    half = len(payload) // 2
    (dest.parent / "x.tgz.partial").write_bytes(payload[:half])
    files.download(f"{url}/x.tgz", dest, sha256=hashlib.sha256(payload).hexdigest(), progress=False)
    assert dest.read_bytes() == payload and RangeHandler.requests == [f"bytes={half}-"]
    assert not (dest.parent / "x.tgz.partial").exists()


def test_download_checksum_mismatch_deletes_and_names_both_digests(server, tmp_path):
    served, url = server
    payload = write_fastai_tgz(served / "x.tgz", "imagenette2-160")
    dest = tmp_path / "dl" / "x.tgz"
    with pytest.raises(ValueError, match=f"md5 {hashlib.md5(payload).hexdigest()} does not match the expected 0+"):
        files.download(f"{url}/x.tgz", dest, md5="0" * 32, progress=False)
    assert not dest.exists() and not dest.with_name("x.tgz.partial").exists()


def test_download_unreachable_server_says_so(tmp_path):
    with pytest.raises(OSError, match="cannot download"):
        files.download("http://127.0.0.1:9/nothing.tgz", tmp_path / "n.tgz", timeout=2, progress=False)


def test_imagenette_downloads_extracts_and_loads(server, tmp_path, monkeypatch):
    served, url = server
    payload = write_fastai_tgz(served / "imagenette2-160.tgz", "imagenette2-160")
    monkeypatch.setattr(data.fastai, "FASTAI_URL", url + "/{name}{size}.tgz")
    monkeypatch.setitem(data.fastai.FASTAI_MD5, "imagenette2-160.tgz", hashlib.md5(payload).hexdigest())
    src = data.open_fastai("imagenette", None, size="160")
    assert src.classes == sorted(IMAGENETTE[:3]) and src.class_names[0] == "tench"
    d = data.load_dataset("imagenette", None, scale="scaled", progress=False)  # now local: no second download
    assert len(d.train) == 6 and d.name == "imagenette" and len(RangeHandler.requests) == 1


def test_imagewoof_download_checks_the_pinned_sha256(server, tmp_path, monkeypatch):
    """Imagewoof 160/320 are pinned (FastAI.jl's sha256); an archive that differs is refused and deleted."""
    assert set(data.FASTAI_SHA256) == {"imagewoof2-160.tgz", "imagewoof2-320.tgz"}
    assert all(len(v) == 64 and int(v, 16) >= 0 for v in data.FASTAI_SHA256.values())
    served, url = server
    write_fastai_tgz(served / "imagewoof2-160.tgz", "imagewoof2-160")  # not the real archive: wrong digest
    monkeypatch.setattr(data.fastai, "FASTAI_URL", url + "/{name}{size}.tgz")
    with pytest.raises(ValueError, match="sha256 .* does not match the expected 663c22f6.*--sha256"):
        data.open_fastai("imagewoof", None, size="160")
    assert not list(files.data_dir().glob("imagewoof2-160.tgz*"))  # nothing half-downloaded is kept


# ------------------------------------------------------------------------------------------------- bad input


def test_bad_files_are_counted_skipped_or_converted_and_reported(tmp_path):
    root = write_folder(tmp_path / "set", ["a", "b"], 2)
    a = root / "train" / "a"
    good = jpeg_bytes([200, 10, 10], (64, 48))
    (a / "truncated.JPEG").write_bytes(good[: len(good) // 2])
    (a / "corrupt.JPEG").write_bytes(os.urandom(300))
    (a / "png.JPEG").write_bytes(jpeg_bytes([9, 99, 199], fmt="PNG"))
    (a / "cmyk.JPEG").write_bytes(jpeg_bytes([0, 255, 255], mode="CMYK"))
    (a / "gray.JPEG").write_bytes(jpeg_bytes([77, 77, 77], mode="L"))
    (a / "notes.txt").write_text("not an image")
    (a / ".DS_Store").write_bytes(b"\0\0")
    (a / "gone.JPEG").symlink_to(tmp_path / "does-not-exist.JPEG")  # an unreadable file
    (root / "train" / "empty").mkdir()
    (root / "val" / "empty").mkdir()
    with pytest.warns(UserWarning) as record:
        d = data.load_dataset("folder", root, progress=False)
    message = " ".join(str(w.message) for w in record)
    assert "3 train: undecodable" in message and "first undecodable" in message
    assert "2 not an image file" in message and "2 empty class folder" in message
    assert d.skipped["train: converted PNG named .jpg"] == 1
    assert d.skipped["train: converted CMYK"] == 1 and d.skipped["train: converted L"] == 1
    assert d.classes == ["a", "b", "empty"] and len(d.train) == 4 + 3  # 4 good + png, cmyk, gray
    meta = json.loads((Path(d.cache) / "meta.json").read_text())
    failed = " ".join(meta["failed"])
    assert "truncated.JPEG" in failed and "corrupt.JPEG" in failed and "gone.JPEG" in failed
    images = {tuple(img.float().mean((0, 1)).round().int().tolist()) for img in d.train.images}
    assert any(abs(r - 77) <= 2 and r == g == b for r, g, b in images)  # grayscale → equal RGB channels
    assert any(r < 40 and g > 200 and b > 200 for r, g, b in images)  # CMYK cyan → RGB cyan


def test_missing_and_wrong_layout_roots_name_the_path(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "missing")):
        data.load_dataset("folder", tmp_path / "missing", progress=False)
    (tmp_path / "wrong" / "images").mkdir(parents=True)
    with pytest.raises(ValueError, match="no train/ folder"):
        data.load_dataset("folder", tmp_path / "wrong", progress=False)
    write_folder(tmp_path / "noval", ["a"], 1, split_names=("train",))
    with pytest.raises(ValueError, match="no val/ or test/"):
        data.load_dataset("folder", tmp_path / "noval", progress=False)
    (tmp_path / "nofiles" / "train" / "a").mkdir(parents=True)
    (tmp_path / "nofiles" / "val" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match="hold no images"):
        data.load_dataset("folder", tmp_path / "nofiles", progress=False)
    assert data_command.main(["info", "--data", "folder", "--root", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing" in err and "Traceback" not in err


@pytest.mark.parametrize("evil", ["../escape.jpg", "/tmp/absolute.jpg", "train/../../up.jpg"])
def test_tar_members_escaping_the_target_are_refused_by_name(tmp_path, evil):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        add_tar_member(tar, "train/a/ok.jpg", jpeg_bytes([1, 2, 3]))
        add_tar_member(tar, evil, jpeg_bytes([1, 2, 3]))
    with pytest.raises(ValueError, match=f"member '{evil}' escapes"):
        data.load_dataset("folder", archive, progress=False)
    with pytest.raises(ValueError, match=f"member '{evil}' escapes"):
        data.extract_tar(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape.jpg").exists()


def test_tar_symlink_pointing_outside_is_refused(tmp_path):
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("train/a/link.jpg")
        info.type, info.linkname = tarfile.SYMTYPE, "../../../../etc/passwd"
        tar.addfile(info)
    with pytest.raises(ValueError, match="member 'train/a/link.jpg' escapes"):
        data.extract_tar(archive, tmp_path / "out")


# ------------------------------------------------------------------------------------------------- the cache


def test_cache_is_resumable_and_never_used_half_written(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "set", ["a", "b", "c"], 6)
    reference = data.load_dataset("folder", root, progress=False)
    monkeypatch.setenv("ALEXNET_BOOK_DATA", str(tmp_path / "other"))
    monkeypatch.setattr(data.cache, "CHUNK", 4)
    calls = []
    real = data.cache._decode_task

    def flaky(task):
        calls.append(task[3])
        if len(calls) == 10:
            raise KeyboardInterrupt  # the user stops the build in the middle of the third chunk
        return real(task)

    monkeypatch.setattr(data.cache, "_decode_task", flaky)
    with pytest.raises(KeyboardInterrupt):
        data.load_dataset("folder", root, progress=False)
    cache_root = tmp_path / "other" / "cache"
    assert not [p for p in cache_root.iterdir() if p.is_dir() and not p.name.endswith(".partial")]
    partial = next(cache_root.glob("*.partial"))
    assert json.loads((partial / "train_progress.json").read_text())["processed"] == 8
    with pytest.raises(FileNotFoundError, match="not a finished cache"):
        data.load_cache(partial)
    calls.clear()
    monkeypatch.setattr(data.cache, "_decode_task", real)
    monkeypatch.setattr(data.cache, "_decode_task", lambda t: (calls.append(t[3]), real(t))[1])
    resumed = data.load_dataset("folder", root, progress=False)
    assert len(calls) == 18 + 18 - 8  # only what was not yet recorded is decoded again
    assert torch.equal(resumed.train.images, reference.train.images)
    assert torch.equal(resumed.train.labels, reference.train.labels)
    assert torch.allclose(resumed.mean_image, reference.mean_image)
    assert not list(cache_root.glob("*.partial"))
    calls.clear()
    data.load_dataset("folder", root, progress=False)
    assert calls == []  # built once, mapped afterwards


def test_parallel_workers_give_the_same_cache(tmp_path):
    root = write_folder(tmp_path / "set", ["a", "b"], 150, size=(24, 18))
    source = data.open_source("folder", root)
    one = data.load_cache(data.build_cache(source, 36, tmp_path / "c1", workers=1, progress=False))
    two = data.load_cache(data.build_cache(source, 36, tmp_path / "c2", workers=2, progress=False))
    assert len(one.train) == 300 and torch.equal(one.train.images, two.train.images)
    assert torch.equal(one.train.labels, two.train.labels)


def test_jpeg_dataset_gives_the_cached_pixels(tmp_path):
    root = write_folder(tmp_path / "set", ["a", "b"], 2, size=(50, 30))
    d = data.load_dataset("folder", root, progress=False)
    ds = data.JpegDataset(data.open_source("folder", root).train, 36)
    image, label = ds[3]
    assert torch.equal(image, d.train.images[3]) and label == int(d.train.labels[3])


# ------------------------------------------------------------------------------------------------- defaults


def test_auto_without_any_data_falls_back_loudly_to_synthetic(monkeypatch, capsys):
    monkeypatch.setattr(data.cifar, "project_root", lambda: Path("/nonexistent-root"))
    monkeypatch.setattr(data, "download_cifar10", lambda root, timeout=5.0: None)
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        d = data.load_dataset("auto", limit=20, progress=False)
    assert d.name == "synthetic" and len(d.train) == 20 and len(d.classes) == 10
    err = capsys.readouterr().err
    assert "NO REAL DATA FOUND" in err and "ALEXNET_BOOK_CIFAR10" in err
    again = data.load_dataset("synthetic", limit=20, progress=False)  # deterministic
    assert torch.equal(again.train.images, d.train.images)


def test_env_var_points_at_cifar(tmp_path, monkeypatch):
    write_cifar_batches(tmp_path / "cifar-10-batches-py")
    monkeypatch.setenv("ALEXNET_BOOK_CIFAR10", str(tmp_path / "cifar-10-batches-py"))
    d = data.load_dataset(limit=10, progress=False)
    assert d.name == "cifar10" and "batches" in d.source
    monkeypatch.setenv("ALEXNET_BOOK_CIFAR10", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="ALEXNET_BOOK_CIFAR10"):
        data.load_dataset(progress=False)


@pytest.mark.skipif(not CIFAR.exists(), reason=f"{CIFAR} not present (the real CIFAR-10 archive; see data/README.md)")
def test_real_cifar10_from_the_shared_archive():
    d = data.load_dataset("cifar10", limit=100, progress=False)
    assert d.classes == list(data.CIFAR10_CLASSES) and len(d.train) == len(d.val) == 100
    assert d.train.images.shape == (100, 36, 36, 3) and d.crop == 32 and "cifar10-jpg.tar.gz" in d.source
    assert torch.bincount(d.train.labels).tolist() == [10] * 10
    # natural images: the first principal component is the brightness axis (all weights of one sign)
    p1 = d.pca_eigvecs[:, 0]
    assert (p1 > 0.4).all() and d.pca_eigvals[0] > 5 * d.pca_eigvals[1]


def test_cli_subset_then_cache(tmp_path, capsys):
    root = write_folder(tmp_path / "in", ["n03000000", "n01000000", "n02000000"], 3)
    out = tmp_path / "sub.json"
    assert data_command.main(["subset", "--data", "imagenet", "--root", str(root), "--classes", "2", "--images", "2",
                          "--seed", "3", "--out", str(out)]) == 0
    assert len(json.loads(out.read_text())["classes"]) == 2
    assert data_command.main(["cache", "--data", "imagenet-subset", "--root", str(out), "--scale", "scaled"]) == 0
    printed = capsys.readouterr().out
    assert "train 4, val 6 images at 36px" in printed
    assert data_command.main(["info", "--data", "imagenet-subset", "--root", str(out), "--build", "--scale",
                          "scaled", "--classes"]) == 0
    assert "PCA λ" in capsys.readouterr().out


def test_info_says_whether_the_cache_exists_and_lists_classes_without_building(tmp_path, capsys):
    root = data.make_synthetic(tmp_path / "syn", classes=3, train_per_class=4, val_per_class=2)
    args = ["info", "--data", "synthetic", "--root", str(root)]
    assert data_command.main(args + ["--classes"]) == 0
    out = capsys.readouterr().out
    source = data.open_source("synthetic", root)
    folder = data.cache_folder(source, 36)
    assert f"cache    not built for scale scaled (36px): {folder}; build it with `alexnet-book data cache" in out
    assert not folder.exists() and not folder.parent.exists()  # nothing decoded, nothing written
    rows = [line.split() for line in out.splitlines() if line.startswith("class0")]
    assert rows == [["class00", "class00", "4", "2"], ["class01", "class01", "4", "2"],
                    ["class02", "class02", "4", "2"]]  # per-class counts from the listing, without --build
    splits = data.load_dataset("synthetic", root, progress=False)
    assert Path(splits.cache) == folder  # info found the folder load_dataset builds
    assert data_command.main(args) == 0
    out = capsys.readouterr().out
    assert f"cache    built for scale scaled (36px): {folder} (train 12, val 6 images)" in out
    assert "class00 " not in out  # the class table only with --classes
    assert data_command.main(args + ["--limit", "5", "--classes"]) == 0  # another limit: another cache
    out = capsys.readouterr().out
    assert "cache    not built for scale scaled (36px), limit 5:" in out and "--limit 5` or add --build" in out
    assert [line.split()[2:] for line in out.splitlines() if line.startswith("class0")] == [
        ["2", "2"], ["2", "2"], ["1", "1"]]
    assert data_command.main(args + ["--scale", "full"]) == 0
    assert "cache    not built for scale full (256px):" in capsys.readouterr().out
    assert data_command.main(args + ["--limit", "0"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "limit must be a positive" in err


def test_info_sees_a_partly_built_cache(tmp_path, capsys):
    root = data.make_synthetic(tmp_path / "syn", classes=2, train_per_class=3, val_per_class=1)
    folder = data.cache_folder(data.open_source("synthetic", root), 36)
    (folder.parent / (folder.name + ".partial")).mkdir(parents=True)
    assert data_command.main(["info", "--data", "synthetic", "--root", str(root)]) == 0
    assert "cache    partly built for scale scaled (36px):" in capsys.readouterr().out
    assert data.cache_status(data.open_source("synthetic", root), 36) == ("partial", folder)


def test_mean_and_pca_pass_shows_a_bar_only_with_progress(tmp_path, capsys):
    root = data.make_synthetic(tmp_path / "syn", classes=2, train_per_class=5, val_per_class=2)
    data.load_dataset("synthetic", root, progress=False)
    assert capsys.readouterr().err == ""
    shutil.rmtree(files.data_dir() / "cache")
    d = data.load_dataset("synthetic", root, progress=True)
    err = capsys.readouterr().err
    assert "mean image and PCA" in err and "decoding train" in err  # (how far a bar got depends on timing)
    images = d.train.images.numpy()
    plain = data.mean_and_pca(images)
    assert capsys.readouterr().err == ""
    barred = data.mean_and_pca(images, chunk=4, progress=True)
    assert "mean image and PCA" in capsys.readouterr().err
    assert all(np.allclose(a, b) for a, b in zip(plain, barred))


def test_large_listings_show_a_bar_small_ones_do_not(tmp_path, capsys, monkeypatch):
    root = write_folder(tmp_path / "set", ["a", "b"], 4)
    archive = tmp_path / "set.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(root, arcname="top")
    data.open_source("folder", root)
    data.open_source("folder", archive)
    assert capsys.readouterr().err == ""  # 8 and 16 members: under the threshold
    monkeypatch.setattr(data.listing, "LISTING_BAR_AFTER", 5)
    data.load_dataset("folder", root, progress=False)
    assert "listing" not in capsys.readouterr().err
    data.open_source("folder", root)
    err = capsys.readouterr().err
    assert f"listing {root / 'train'}" in err and "8 files" in err
    listings = files.data_dir() / "cache" / "listings"
    shutil.rmtree(listings)  # archives are listed once and remembered: forget it, so it is listed again
    data.open_source("folder", archive)
    assert "listing set.tar" in capsys.readouterr().err
    shutil.rmtree(listings)
    with data.listing._listing_progress(False):
        data.open_source("folder", archive)
    assert "listing" not in capsys.readouterr().err


def test_the_shipped_1000_class_list_is_ilsvrc_2012_in_class_index_order():
    """data/classes/imagenet1000.txt: names without the devkit, in torchvision's class order (sorted wnids)."""
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    pairs = data.read_class_list("imagenet1000")
    wnids = [w for w, _ in pairs]
    assert len(wnids) == 1000 and wnids == sorted(set(wnids)) and all(data.WNID.match(w) for w in wnids)
    for subset in ("imagenette", "imagewoof", "imagenet100"):
        assert {w for w, _ in data.read_class_list(subset)} <= set(wnids), subset
    # the same classes torchvision's pretrained weights name, index for index (its two renamed duplicates aside)
    differ = [(n, t) for (_, n), t in zip(pairs, _IMAGENET_CATEGORIES) if n.lower() != t.lower()]
    assert differ == [("crane", "crane bird"), ("maillot", "maillot tank suit")]
    # used when there is no devkit
    assert data.imagenet._imagenet_names(["n01440764", "n99999999"], None) == ["tench", "n99999999"]


# ------------------------------------------------------------------------------------------------- faults (issue 17)

BUILD_CHILD = """
import faulthandler, signal, sys, time
faulthandler.register(signal.SIGUSR1, all_threads=True)  # the test asks where a hung build is stuck
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even if pytest was started ignoring it
from alexnet_book import data
root, cache_root, slow = sys.argv[1], sys.argv[2], sys.argv[3] == "slow"
data.cache.CHUNK = 64
real = data.cache._decode_task

def decode(task):  # the first chunk decodes at full speed, the rest slowly: a long build to stop in the middle
    if slow and task[0] >= 64:
        time.sleep(0.5)
    return real(task)

data.cache._decode_task = decode
folder = data.build_cache(data.open_source("folder", root), 36, cache_root, workers=2, progress=False)
print("BUILT", folder, flush=True)
"""


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="Ctrl-C as a terminal sends it: SIGINT to the process group")
def test_one_ctrl_c_stops_the_cache_build_promptly_and_it_resumes(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    root = write_folder(tmp_path / "set", ["a", "b"], 150, size=(24, 18))
    cache_root = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(files.project_root()), "OMP_NUM_THREADS": "1"}

    def child(mode):
        return subprocess.Popen([sys.executable, "-c", BUILD_CHILD, str(root), str(cache_root), mode], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    build = child("slow")
    deadline = time.time() + 300  # (importing torch takes a while on a busy machine)
    progress = None
    while time.time() < deadline and build.poll() is None:  # wait until the first chunk is on disk
        progress = next(cache_root.glob("*.partial/train_progress.json"), None)
        if progress is not None and json.loads(progress.read_text())["processed"] >= 64:
            break
        time.sleep(0.05)
    assert build.poll() is None and progress is not None, build.communicate()[1]
    time.sleep(0.3)  # the workers are inside the slow decoding of the next chunk
    stopped = time.time()
    os.killpg(build.pid, signal.SIGINT)  # one Ctrl-C, delivered as a terminal does: to every process of the group
    try:  # about a second on an idle machine; the old failure hung until a second Ctrl-C
        out, err = build.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.kill(build.pid, signal.SIGUSR1)  # the parent's stacks, to say where it hung
        time.sleep(2)
        os.killpg(build.pid, signal.SIGKILL)
        _, err = build.communicate()
        pytest.fail(f"one Ctrl-C did not stop the cache build: it hung\n{err[-4000:]}")
    took = time.time() - stopped
    assert build.returncode in (-signal.SIGINT, 128 + signal.SIGINT, 1) and "KeyboardInterrupt" in err, err
    assert "BUILT" not in out and took < 30, (took, err)
    assert "resumes" in err and str(progress.parent) in err  # says where the partial cache is kept
    assert err.count("Traceback") == 1, err  # the workers ignored it: only the parent reports it
    assert json.loads(progress.read_text())["processed"] >= 64  # what was recorded stays
    again = child("fast")
    try:
        out, err = again.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(again.pid, signal.SIGKILL)
        raise
    assert again.returncode == 0 and "BUILT" in out, err
    built = data.load_cache(out.split("BUILT ", 1)[1].strip())
    assert len(built.train) == 300 and labels_match_colours(built.train)
    assert not list(cache_root.glob("*.partial"))


def test_a_disk_without_room_for_the_cache_is_refused_before_it_is_mapped(tmp_path, monkeypatch, capsys,
                                                                            private_data_dir):
    root = write_folder(tmp_path / "set", ["a", "b"], 3)
    real = data.cache.shutil.disk_usage
    free = 5 * 2**20
    monkeypatch.setattr(data.cache.shutil, "disk_usage", lambda path: real(path)._replace(free=free))
    with pytest.raises(OSError) as info:
        data.load_dataset("folder", root, progress=False)
    text = str(info.value)
    need = data.DISK_MARGIN + 2 * 6 * (36 * 36 * 3 + 8)  # train and val: 6 images of 36×36×3 bytes and a label
    assert str(private_data_dir / "cache") in text and f"{need} bytes" in text and f"{free} bytes" in text
    assert "free space" in text and "ALEXNET_BOOK_DATA" in text
    assert not list((private_data_dir / "cache").glob("*.partial"))  # refused before any folder or memory map
    assert data_command.main(["cache", "--data", "folder", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not enough free disk space" in err and "Bus error" not in err
    source = data.open_source("folder", root)
    with pytest.raises(OSError, match="pass another cache_root"):  # the caller chose the folder: say that
        data.build_cache(source, 36, tmp_path / "mine", progress=False)
    monkeypatch.setattr(data.cache.shutil, "disk_usage", real)
    assert len(data.load_dataset("folder", root, progress=False).train) == 6  # with room, the same call builds


def test_a_replaced_image_gets_a_new_cache_key_and_its_own_pixels(tmp_path):
    root = write_folder(tmp_path / "set", ["a", "b"], 2)
    first = data.load_dataset("folder", root, progress=False)
    key = data.dataset_identity("folder", root)["cache_key"]
    assert data.load_dataset("folder", root, progress=False).cache == first.cache  # unchanged folder: same key
    assert data.dataset_identity("folder", root)["cache_key"] == key == Path(first.cache).name
    replaced = root / "train" / "a" / "a_0.JPEG"  # the first training image (class a, sorted first)
    before = replaced.stat()
    replaced.write_bytes(jpeg_bytes([250, 250, 250], (40, 32)))
    os.utime(replaced, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
    assert replaced.stat().st_size != before.st_size
    second = data.load_dataset("folder", root, progress=False)
    assert second.cache != first.cache and data.dataset_identity("folder", root)["cache_key"] != key
    assert second.train.images[0].float().mean() > 240 > first.train.images[0].float().mean() + 50
    assert torch.equal(second.train.images[1:], first.train.images[1:])
    assert torch.equal(second.train.labels, first.train.labels)


def test_an_unreadable_class_folder_is_named_as_unreadable_with_the_fix(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "set", ["a", "b"], 2)
    locked = root / "train" / "b"
    if os.name == "posix" and os.geteuid() == 0:  # root lists any folder: make listing this one fail as for a user
        real = os.scandir

        def scandir(path="."):
            if Path(path) == locked:
                raise PermissionError(13, "Permission denied", str(path))
            return real(path)

        monkeypatch.setattr(os, "scandir", scandir)
    else:
        locked.chmod(0)
    try:
        with pytest.raises(PermissionError) as info:
            data.load_dataset("folder", root, progress=False)
    finally:
        locked.chmod(0o755)
    text = str(info.value)
    assert str(locked) in text and "not readable" in text and f"chmod -R a+rX {locked}" in text
    assert "empty" not in text


WAIT_CHILD = """
import multiprocessing, os, signal, sys, threading, time
from alexnet_book.data.cache import _results
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # the kernel must hand SIGINT to the other thread


class Never:  # a pool job whose workers never answer
    def get(self, timeout=None):
        threading.Event().wait(timeout)
        raise multiprocessing.TimeoutError


def ctrl_c():
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGINT)


threading.Thread(target=ctrl_c, daemon=True).start()
try:
    _results(Never())
except KeyboardInterrupt:
    print("INTERRUPTED", flush=True)
"""


def test_a_ctrl_c_taken_by_another_thread_still_stops_the_wait_for_decoded_chunks():
    """The cache build waits for its workers in short timed waits: a Ctrl-C that the kernel hands to a thread
    other than the main one (tqdm's monitor, a pool thread) still ends the wait, even if no result ever comes."""
    import signal
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(files.project_root())}
    child = subprocess.Popen([sys.executable, "-c", WAIT_CHILD], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT,
                                                                                                  signal.SIG_DFL))
    try:
        out, err = child.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        pytest.fail("the wait for decoded chunks did not notice the Ctrl-C")
    assert "INTERRUPTED" in out, err
