"""Faults and clashes (issue 17): processes sharing a results store or a run folder, a run reused on other data,
nonsense arguments, file modes."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def python(code: str, *args, env=None, stderr=subprocess.PIPE) -> subprocess.Popen:
    """A child Python running ``code`` with this checkout's package first on the path."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=stderr, text=True)


# -- the results store under concurrent processes -------------------------------------------------------------------

ADD_ROWS = """
import sys, time
from pathlib import Path
from alexnet_book.runs import ResultsStore
store, who, go = ResultsStore(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
while not go.exists():
    time.sleep(0.01)
for i in range(150):
    store.add({"config_hash": f"{who}-{i}", "metrics": {"i": i}})
"""


@pytest.mark.slow
def test_two_processes_adding_rows_lose_none(tmp_path):
    path, go = tmp_path / "results.jsonl", tmp_path / "go"
    children = [python(ADD_ROWS, path, who, go) for who in ("a", "b")]
    time.sleep(1.0)  # both have imported torch and wait at the start line
    go.touch()
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
    from alexnet_book.runs import ResultsStore

    hashes = [row["config_hash"] for row in ResultsStore(path).rows()]
    assert len(hashes) == 300 and len(set(hashes)) == 300


# -- file modes -----------------------------------------------------------------------------------------------------

@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_checkpoints_and_results_get_the_umask_mode_not_0600(tmp_path, umask):
    import torch

    from alexnet_book.runs import MetricsLog, ResultsStore, save_checkpoint

    old = os.umask(umask)
    try:
        save_checkpoint(tmp_path / "checkpoint.pt", {"model": {"w": torch.zeros(2)}})
        ResultsStore(tmp_path / "results.jsonl").add({"config_hash": "abc"})
        MetricsLog(tmp_path / "metrics.csv")
    finally:
        os.umask(old)
    for name in ("checkpoint.pt", "results.jsonl", "metrics.csv"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


# -- dependency floors ----------------------------------------------------------------------------------------------

def test_dependency_floors_close_known_holes():
    tomllib = pytest.importorskip("tomllib")
    specifiers = pytest.importorskip("packaging.specifiers")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    python = specifiers.SpecifierSet(project["requires-python"])
    # tarfile's extractall(filter="data") arrived in 3.10.12 and 3.11.4
    assert [v for v in ("3.10.11", "3.10.12", "3.11.0", "3.11.3", "3.11.4", "3.12.0") if v in python] == \
           ["3.10.12", "3.11.4", "3.12.0"]
    floors = {d.split(">=")[0].strip(): d.split(">=")[1].split(",")[0].strip() for d in project["dependencies"]
              if ">=" in d}
    # torch 2.6.0 fixed CVE-2025-32434, a way round torch.load(weights_only=True); torchvision 0.21 goes with it
    assert tuple(map(int, floors["torch"].split(".")[:2])) >= (2, 6)
    assert tuple(map(int, floors["torchvision"].split(".")[:2])) >= (0, 21)
    assert "filelock" in floors
    env = (ROOT / "environment.yml").read_text()
    conda_python = next(line.split("#")[0].split("python", 1)[1].strip() for line in env.splitlines()
                        if line.strip().startswith("- python"))
    assert conda_python.startswith(">=3.11.4") or conda_python.startswith(">=3.10.12"), conda_python


# -- nonsense arguments: refused before any work, in one line, with nothing recorded --------------------------------

def one_line_refusal(capsys, rc) -> str:
    err = capsys.readouterr().err.strip()
    assert rc != 0, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """A private data folder, and data loading that fails the test if reached."""
    import alexnet_book.data as data

    monkeypatch.setenv("ALEXNET_BOOK_DATA", str(tmp_path / "data"))

    def loaded(*args, **kwargs):
        raise AssertionError("the data set was opened before the arguments were checked")

    monkeypatch.setattr(data, "load_dataset", loaded)
    monkeypatch.setattr(data, "open_source", loaded)


@pytest.mark.parametrize("args, words", [
    (["--epochs", "0"], "epochs"), (["--epochs", "-3"], "epochs"), (["--batch-size", "-64"], "batch_size"),
    (["--batch-size", "0"], "batch_size"), (["--precision", "fp16"], "fp16"), (["--max-steps", "0"], "max_steps"),
    (["--device", "gpu"], "gpu")])
def test_train_refuses_nonsense_arguments_before_any_work(tmp_path, capsys, no_data, args, words):
    from alexnet_book.cli import main

    out = tmp_path / "runs"
    err = one_line_refusal(capsys, main(["train", "--data", "synthetic", "--out-dir", str(out), *args]))
    assert err.startswith("alexnet-book train:") and words in err
    assert not out.exists()  # no results store, no run folder, no lock


def test_train_on_cuda_without_a_gpu_is_one_line(tmp_path, capsys, no_data, monkeypatch):
    import torch

    from alexnet_book.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a machine without a GPU
    out = tmp_path / "runs"
    err = one_line_refusal(capsys, main(["train", "--data", "synthetic", "--device", "cuda", "--out-dir", str(out)]))
    assert "cuda" in err and "--device cpu" in err
    assert not out.exists()


def test_evaluate_refuses_a_text_file_as_checkpoint_in_one_line(tmp_path, capsys, no_data):
    from alexnet_book.cli import main

    notes = tmp_path / "notes.txt"
    notes.write_text("my training notes\nnot a checkpoint\n")
    err = one_line_refusal(capsys, main(["evaluate", "--checkpoint", str(notes)]))
    assert "notes.txt" in err and "weights_only" not in err and "False" not in err
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    err = one_line_refusal(capsys, main(["evaluate", "--checkpoint", str(empty)]))
    assert "empty.pt" in err and "0 bytes" in err


def test_foreign_pickle_refusal_never_suggests_weights_only_false(tmp_path):
    import pickle

    from alexnet_book.runs import load_checkpoint

    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"model": 1}))
    with pytest.raises(ValueError) as info:
        load_checkpoint(path)
    text = str(info.value)
    assert "plain.pkl" in text and "weights_only" not in text and "\n" not in text and "\x1b" not in text


def test_a_zero_byte_image_is_named(tmp_path, capsys, monkeypatch):
    from PIL import Image

    import alexnet_book.data as data
    from alexnet_book.cli import main

    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    # alexnet-book weights predict: refused before any weights are looked for
    err = one_line_refusal(capsys, main(["weights", "predict", str(empty)]))
    assert str(empty) in err and "BytesIO" not in err
    # decoding a data set: the image is counted as undecodable, and the report names the file
    with pytest.raises(ValueError, match="empty.jpg: an empty file"):
        data.decode_image(str(empty), 36)
    with pytest.raises(ValueError) as info:
        data.decode_image(b"not an image", 36)
    assert "BytesIO" not in str(info.value)
    monkeypatch.setenv("ALEXNET_BOOK_DATA", str(tmp_path / "data"))
    root = tmp_path / "set"
    for split in ("train", "val"):
        for c, colour in (("a", (200, 40, 40)), ("b", (40, 40, 200))):
            (root / split / c).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (20, 16), colour).save(root / split / c / f"{i}.jpg")
    (root / "train" / "a" / "broken.jpg").write_bytes(b"")
    with pytest.warns(UserWarning) as caught:
        data.load_dataset("folder", root, limit=None, progress=False)
    text = " ".join(str(w.message) for w in caught)
    assert "broken.jpg" in text and "BytesIO" not in text


# -- a run folder has one owner -------------------------------------------------------------------------------------

TINY_RUN = dict(data="synthetic", model="fourlayer", scale="scaled", limit=40, epochs=2, batch_size=8, lr=0.01,
                input_scale=1 / 64, precision="fp32", ten_crop=False, log_every=1)  # 5 steps per epoch

TRAIN_CHILD = """
import json, sys, time
from pathlib import Path
from alexnet_book.config import TrainConfig
from alexnet_book.train import train
config, release = TrainConfig(**json.loads(sys.argv[1])), Path(sys.argv[2])

def hold(event):  # after its first epoch the run waits (at most 5 minutes) for the test to let it go on
    deadline = time.time() + 300
    while event["epoch"] == 1 and not release.exists() and time.time() < deadline:
        time.sleep(0.05)

result = train(config, progress=False, callback=hold)
print("REUSED" if result.reused else "TRAINED", flush=True)
"""


@pytest.mark.slow
def test_two_identical_runs_in_one_out_dir_train_once(tmp_path):
    import json

    import pandas as pd

    from alexnet_book.runs import ResultsStore
    from alexnet_book.config import TrainConfig

    fields = {**TINY_RUN, "out_dir": str(tmp_path / "runs")}
    config = TrainConfig(**fields)
    env = {"ALEXNET_BOOK_DATA": str(tmp_path / "data")}
    release, err_file = tmp_path / "release", tmp_path / "second.err"
    first = python(TRAIN_CHILD, json.dumps(fields), release, env=env)
    deadline = time.time() + 240
    while not (config.run_dir() / "metrics.csv").exists():  # the first run is training now
        assert first.poll() is None, first.communicate()[1]
        assert time.time() < deadline, "the first run never started training"
        time.sleep(0.1)
    with open(err_file, "w") as err:
        second = python(TRAIN_CHILD, json.dumps(fields), tmp_path, env=env, stderr=err)  # never held
    deadline = time.time() + 240
    while "waiting" not in err_file.read_text() and second.poll() is None and time.time() < deadline:
        time.sleep(0.1)  # until the second run waits for the first (or, unlocked, trains beside it and ends)
    release.touch()
    out1, err1 = first.communicate(timeout=300)
    out2, _ = second.communicate(timeout=300)
    err2 = err_file.read_text()
    assert first.returncode == 0 and second.returncode == 0, err1 + err2
    assert out1.split() == ["TRAINED"] and out2.split() == ["REUSED"], err2
    assert f"process {first.pid} " in err2 and config.run_dir().name in err2  # who owns the folder, said once
    log = pd.read_csv(config.run_dir() / "metrics.csv")
    steps = log[log.val_top1.isna()].step  # one row per step, then one per epoch with the validation
    assert steps.tolist() == list(range(1, 11)) and log.val_top1.notna().sum() == 2
    assert log.step.is_monotonic_increasing
    rows = [r for r in ResultsStore(tmp_path / "runs" / "results.jsonl").rows() if r["config_hash"] == config.hash()]
    assert len(rows) == 1


# -- the data a run was trained on is part of its identity ----------------------------------------------------------

def write_cifar_like_archive(path, colour_shift: int) -> None:
    """A CIFAR-10-format archive as the book reads it: cifar10-jpg/{train,test}/<class>/*.jpg (4 + 2 per class)."""
    import io
    import tarfile

    from PIL import Image

    from alexnet_book.data import CIFAR10_CLASSES

    with tarfile.open(path, "w:gz") as tar:
        for split, n in (("train", 4), ("test", 2)):
            for c, name in enumerate(CIFAR10_CLASSES):
                for i in range(n):
                    buffer = io.BytesIO()
                    colour = ((25 * c + colour_shift) % 256, (80 + colour_shift) % 256, (200 - 15 * c) % 256)
                    Image.new("RGB", (32, 32), colour).save(buffer, format="JPEG")
                    info = tarfile.TarInfo(f"cifar10-jpg/{split}/{name}/{i:04d}.jpg")
                    info.size = len(buffer.getvalue())
                    tar.addfile(info, io.BytesIO(buffer.getvalue()))


def test_a_finished_run_is_not_reused_for_other_data(tmp_path, monkeypatch, capsys):
    import torch

    from alexnet_book.commands import train as train_command
    from alexnet_book.runs import ResultsStore, load_checkpoint

    torch.set_num_threads(1)
    monkeypatch.setenv("ALEXNET_BOOK_DATA", str(tmp_path / "data"))
    first, other = tmp_path / "first.tar.gz", tmp_path / "other.tar.gz"
    write_cifar_like_archive(first, 0)
    write_cifar_like_archive(other, 100)
    out = tmp_path / "runs"
    args = ["--data", "cifar10", "--model", "fourlayer", "--scale", "scaled", "--epochs", "1", "--batch-size", "8",
            "--input-scale", "0.015625", "--precision", "fp32", "--no-ten-crop", "--out-dir", str(out), "--quiet"]
    store = ResultsStore(out / "results.jsonl")

    monkeypatch.setenv("ALEXNET_BOOK_CIFAR10", str(first))  # root unset: the set comes from the environment
    assert train_command.main(args) == 0
    capsys.readouterr()
    [row] = store.rows()
    assert "first.tar.gz" in row["data_identity"]["source"] and row["data_identity"]["cache_key"]
    assert load_checkpoint(row["model_path"])["data_identity"] == row["data_identity"]
    assert train_command.main(args) == 0 and "(reused)" in capsys.readouterr().out  # the same data: reused

    monkeypatch.setenv("ALEXNET_BOOK_CIFAR10", str(other))  # same configuration and hash, other data
    err = one_line_refusal(capsys, train_command.main(args))
    assert "first.tar.gz" in err and "other.tar.gz" in err and "--root" in err
    assert store.rows() == [row]  # nothing recorded
    store.path.unlink()  # without the finished row, the checkpoint would be continued: refused too
    err = one_line_refusal(capsys, train_command.main(args))
    assert "checkpoint.pt" in err and "first.tar.gz" in err and "other.tar.gz" in err
    assert train_command.main(args + ["--no-reuse"]) == 0  # asked to: trains again in its place, on the other data
    [row] = store.rows()
    assert "other.tar.gz" in row["data_identity"]["source"]


def test_a_recopied_archive_keeps_its_cache_and_its_runs(tmp_path, monkeypatch):
    """The cache key follows the archive's content, not its modification time (a share mounted afresh each
    session copies the same file again); an identity recorded under another key is still the same data when
    both caches hold the same pixels and labels."""
    import os
    import shutil

    from alexnet_book import data

    monkeypatch.setenv("ALEXNET_BOOK_DATA", str(tmp_path / "data"))
    archive = tmp_path / "cifar.tar.gz"
    write_cifar_like_archive(archive, 0)
    first = data.load_dataset("cifar10", archive, progress=False)
    key = data.data_identity(first)["cache_key"]
    os.utime(archive, ns=(1_000_000_000, 1_000_000_000))  # the same bytes, another modification time
    assert data.dataset_identity("cifar10", archive)["cache_key"] == key
    write_cifar_like_archive(archive, 100)  # other bytes at the same path: another cache
    other = data.load_dataset("cifar10", archive, progress=False)
    assert data.data_identity(other)["cache_key"] != key
    assert not data.same_data(data.data_identity(first), data.data_identity(other))
    # a run recorded under an older key (say, one that hashed the modification time) whose cache is still here
    caches = tmp_path / "data" / "cache"
    shutil.copytree(caches / key, caches / "cifar10-36px-40-0ldkey0000")
    old = {"source": first.source, "cache_key": "cifar10-36px-40-0ldkey0000"}
    assert data.same_data(old, data.data_identity(first))
    assert not data.same_data(old, data.data_identity(other))
    assert not data.same_data({**old, "cache_key": "gone"}, data.data_identity(first))  # nothing to compare with
