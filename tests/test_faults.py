"""Faults and clashes (issue 17): processes sharing a results store or a run folder, a run reused on other data,
nonsense arguments, file modes."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def python(code: str, *args, env=None, **kwargs) -> subprocess.Popen:
    """A child Python running ``code`` with this checkout's package first on the path."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


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
