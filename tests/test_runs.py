"""Run records (§5): config hashes, atomic writes, checkpoints that refuse foreign files, metrics log, results store."""
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from alexnet_book import files, runs
from alexnet_book.files import atomic_write_bytes, atomic_write_text
from alexnet_book.runs import MetricsLog, ResultsStore, config_hash, load_checkpoint, save_checkpoint


@dataclass
class Config:
    lr: float = 0.01
    epochs: int = 90
    options: dict = None


def test_config_hash_is_stable_and_sensitive():
    a = config_hash({"lr": 0.01, "epochs": 90, "options": {"towers": 1, "lrn": None}})
    b = config_hash({"options": {"lrn": None, "towers": 1}, "epochs": 90, "lr": 0.01})
    assert a == b and len(a) == 12 and int(a, 16) >= 0
    assert config_hash(Config(options={"towers": 1, "lrn": None})) == a  # dataclass == its dict
    assert config_hash({"lr": 0.02, "epochs": 90, "options": {"towers": 1, "lrn": None}}) != a
    assert config_hash({"lr": 0.01, "epochs": 90, "options": {"towers": 2, "lrn": None}}) != a


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "file.txt"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert os.listdir(path.parent) == ["file.txt"]


def test_atomic_write_failure_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "file.bin"
    atomic_write_bytes(path, b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_bytes(path, b"new" * 1000)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["file.bin"]  # the temporary file was removed


def test_checkpoint_round_trip(tmp_path):
    state = {"model": {"w": torch.randn(3, 4)}, "step": 7, "rng": torch.get_rng_state(), "config": {"lr": 0.01},
             "ranks": [{"augment": torch.Generator().manual_seed(1).get_state()}]}
    save_checkpoint(tmp_path / "c.pt", state)
    back = load_checkpoint(tmp_path / "c.pt")
    assert torch.equal(back["model"]["w"], state["model"]["w"]) and back["step"] == 7
    assert torch.equal(back["ranks"][0]["augment"], state["ranks"][0]["augment"])


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"model": {"w": torch.randn(100, 100)}})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="checkpoint.pt.*delete it"):
        load_checkpoint(path)


class Foreign:  # a class a malicious or foreign pickle might carry
    def __reduce__(self):
        return (print, ("this must never run",))


def test_foreign_files_are_refused_without_unpickling(tmp_path, capsys):
    pickled = tmp_path / "evil.pt"
    torch.save({"model": Foreign()}, pickled)
    with pytest.raises(ValueError, match="evil.pt"):
        load_checkpoint(pickled)
    assert "this must never run" not in capsys.readouterr().out
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="notes.pt"):
        load_checkpoint(text)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"model": 1}))
    with pytest.raises(ValueError, match="plain.pkl"):
        load_checkpoint(plain)
    other = tmp_path / "weights.pt"
    torch.save({"state_dict": {}}, other)  # a torch file, but not ours
    with pytest.raises(ValueError, match="no 'model' entry"):
        load_checkpoint(other)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


def test_metrics_log_appends_reads_and_truncates(tmp_path):
    log = MetricsLog(tmp_path / "metrics.csv")
    log.append({"step": 1, "epoch": 0.5, "lr": 0.01, "train_loss": 2.3, "train_error": 0.9})
    log.append({"step": 2, "epoch": 1, "lr": 0.01, "train_loss": 2.1, "train_error": 0.8, "val_top1": 0.7,
                "val_top5": 0.3})
    log.append({"step": 3, "epoch": 1.5, "lr": 0.01, "train_loss": 2.0, "train_error": 0.8})
    assert len(log) == 3
    df = log.read()
    assert list(df.columns) == list(MetricsLog.COLUMNS)
    assert df.val_top1.isna().tolist() == [True, False, True] and df.train_loss.iloc[1] == 2.1
    log.truncate(2)
    assert len(MetricsLog(tmp_path / "metrics.csv")) == 2  # reopening keeps the rows
    with pytest.raises(ValueError, match="unknown metrics columns"):
        log.append({"step": 4, "loss": 1.0})


def test_results_store_find_add_table(tmp_path):
    store = ResultsStore(tmp_path / "results.jsonl")
    assert store.find("abc") is None and store.table().empty
    store.add({"config_hash": "abc", "config": {"lr": 0.01}, "data": "cifar10", "seed": 0,
               "metrics": {"val_top1_error": 0.3}, "wall_s": 10.0})
    store.add({"config_hash": "def", "config": {"lr": 0.02}, "data": "cifar10", "seed": 1,
               "metrics": {"val_top1_error": 0.4}, "wall_s": 12.0})
    store.add({"config_hash": "abc", "config": {"lr": 0.01}, "data": "cifar10", "seed": 0,
               "metrics": {"val_top1_error": 0.25}, "wall_s": 11.0})  # the same run again replaces its row
    assert store.find("abc")["metrics"]["val_top1_error"] == 0.25
    table = store.table()
    assert len(table) == 2 and list(table.columns[:4]) == ["config_hash", "config", "data", "seed"]
    assert {"val_top1_error", "wall_s", "machine", "date"} <= set(table.columns)
    assert table.set_index("config_hash").loc["def", "val_top1_error"] == 0.4
    assert "cores" in store.find("def")["machine"]
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["config_hash"] for line in lines)
    assert sorted(os.listdir(tmp_path)) == [".results.jsonl.lock", "results.jsonl"]  # no temporary files left


def test_results_store_names_a_corrupt_line(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"config_hash": "abc"}\n{broken\n')
    with pytest.raises(ValueError, match="results.jsonl: line 2"):
        ResultsStore(path).find("abc")


# --- one runs folder for every entry point -----------------------------------------------------------------------
ROOT = Path(__file__).resolve().parent.parent


def test_every_entry_point_resolves_the_same_runs_folder(tmp_path, monkeypatch):
    from alexnet_book import ablations, figure_networks
    from alexnet_book.commands import train
    from alexnet_book.files import project_root

    monkeypatch.delenv(runs.RUNS_ENV, raising=False)
    expected = project_root() / "runs"
    # the CLI from the project root, the notebooks from notebooks/, a script from anywhere
    for cwd in (ROOT, ROOT / "notebooks", tmp_path):
        monkeypatch.chdir(cwd)
        assert runs.runs_dir() == runs.runs_dir("runs") == expected
        cli = train.config_from_args(train.build_parser().parse_args(["--recipe", "quick"]))  # alexnet-book train
        assert cli.out_dir == "runs" and cli.run_dir().parent == expected  # the dataclass default is unchanged
        assert ablations.runner._store(None, cli.out_dir).path == expected / "results.jsonl"  # alexnet-book ablate
        assert figure_networks.trained_config("quick").run_dir().parent == expected  # notebooks 05 and 08
        assert ResultsStore().path == expected / "results.jsonl"
    assert not (tmp_path / "runs").exists()
    monkeypatch.setenv(runs.RUNS_ENV, str(tmp_path / "elsewhere"))
    assert train.TrainConfig().run_dir().parent == tmp_path / "elsewhere" == runs.runs_dir()
    assert runs.runs_dir(tmp_path / "mine") == tmp_path / "mine"  # a folder given explicitly is kept


def test_notebooks_open_the_store_through_runs_dir():
    """Notebooks that open the results store themselves call runs_dir(); none builds a runs path of its own
    (the others train through TrainConfig's default, resolved above)."""
    import ast

    import nbformat

    from alexnet_book.book.notebooks import _code

    callers = set()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            for node in ast.walk(ast.parse(_code(cell.source))):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "runs_dir":
                    callers.add(path.stem)
                runs_literal = lambda n: isinstance(n, ast.Constant) and str(n.value).strip("./") == "runs"
                assert not (isinstance(node, ast.BinOp) and runs_literal(node.right)), f"{path.name}: .../'runs'"
                assert not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Path"
                            and any(runs_literal(a) for a in node.args)), f"{path.name}: Path('runs')"
                assert not (isinstance(node, ast.keyword) and node.arg == "out_dir" and runs_literal(node.value))
    assert {"04_training", "06_ablations"} <= callers


@pytest.mark.parametrize("flags, units, bf16", [
    ({"avx2", "avx512f", "avx512_bf16", "amx_bf16"}, "AMX-BF16", True),
    ({"avx2", "avx512f", "avx512_bf16"}, "AVX512-BF16", True),
    ({"avx2", "avx512f"}, "AVX512", False),
    ({"fma", "avx", "avx2"}, "AVX2", False),
    (set(), "", False),
])
def test_machine_names_the_vector_units_that_decide_what_auto_precision_means(monkeypatch, flags, units, bf16):
    """Two CPUs sold as "AMD EPYC" can be AVX2-only (precision "auto" trains in fp32) or have AVX512-BF16 (auto
    trains in bf16): the machine line of every result says which, so a re-run's different digits are explained."""
    from alexnet_book import devices

    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset(flags))
    assert devices.cpu_vector_units() == units
    assert devices.cpu_has_bf16() is bf16
    assert (devices.pick_precision("auto", torch.device("cpu")) == torch.bfloat16) is bf16
    text = files.machine()
    assert (f"cores, {units})" if units else "cores)") in text  # a GPU, if any, is named after the CPU


def test_cpu_flags_read_this_machines_cpuinfo():
    from alexnet_book import devices

    flags = devices.cpu_flags()
    assert isinstance(flags, frozenset)
    if Path("/proc/cpuinfo").exists() and "flags" in Path("/proc/cpuinfo").read_text():
        assert flags and all(f == f.strip() and f for f in flags)  # split into single flags, no ':' or blanks
        assert ":" not in "".join(flags)
