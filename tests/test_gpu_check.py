"""The GPU check (gpu_check/): the dry run writes the JSON and Markdown with every section; a failing step is
recorded and the next one runs; the projections' arithmetic; the on-device resize."""
import json

import numpy as np
import pytest
import torch

from alexnet_book import data, gpu_check
from alexnet_book.commands import gpu_check as gpu_check_command
from alexnet_book.gpu_check import run as check_run


def test_dry_run_writes_json_and_markdown_with_every_section(tmp_path):
    report = gpu_check.run_check(dry_run=True, out=tmp_path, quiet=True)
    written = json.loads((tmp_path / "gpu_check_cpu.json").read_text())
    text = (tmp_path / "gpu_check_cpu.md").read_text()
    assert written["dry_run"] and written["card_slug"] == "cpu" and not written["errors"], written["errors"]
    assert set(written["steps"]) == set(gpu_check.STEPS)
    for name in gpu_check.STEPS:
        assert written["steps"][name]["status"] == "ok", (name, written["steps"][name].get("traceback"))
        assert gpu_check.TITLES[name] in text
    steps = written["steps"]
    assert {r["model"] for r in steps["bench"]["results"]} == {"paper", "torchvision"}
    assert all(r["images_per_s"] > 0 and r["mfu"] is not None for r in steps["bench"]["results"])
    runs = {r["name"]: r for r in steps["end_to_end"]["runs"]}
    assert runs["imagenet-like"]["data_on_device"] and not runs["imagenet-like-host-path"]["data_on_device"]
    assert any(name.startswith("cifar10-") for name in runs)
    assert steps["scaled"]["images_per_s"] > 0 and steps["scaled"]["cpu_study_minutes_on_card"] > 0
    tower = steps["two_tower"]
    assert {"cliffs_delta", "p_mann_whitney", "colour_tower"} <= set(tower["specialisation"])
    assert (tmp_path / tower["figure"]).stat().st_size > 1000 and tower["figure"] in text
    p = written["projections"]
    assert [r["hours_one_card"] > 0 for r in p["rows"]] == [True, True]
    assert len(p["targets"]) == 3 and all(t["met"] is None for t in p["targets"])  # a dry run judges nothing
    assert "Dry run" in text and "### Projections" in text and "linear scaling assumed" in text
    assert report["wall_s"] == written["wall_s"]


def test_a_failing_step_is_recorded_and_the_next_runs(tmp_path, monkeypatch):
    calls = []

    def fake(name, fail=False):
        def step(ctx, until):
            calls.append(name)
            if fail:
                raise RuntimeError("CUDA out of memory (pretend)")
            return {"made": name}
        return step

    monkeypatch.setattr(check_run, "STEP_FUNCTIONS", {n: fake(n, fail=n == "end_to_end") for n in gpu_check.STEPS})
    monkeypatch.setattr(check_run, "peaks", lambda device, plan: {"fp32": {"tflops": 1.0, "source": "test"}})
    report = gpu_check.run_check(dry_run=True, out=tmp_path, quiet=True)
    assert calls == list(gpu_check.STEPS)
    assert report["steps"]["end_to_end"]["status"] == "failed"
    assert "out of memory" in report["steps"]["end_to_end"]["error"]
    assert report["steps"]["two_tower"]["status"] == "ok" and report["errors"] == [
        "end_to_end: RuntimeError: CUDA out of memory (pretend)"]
    text = (tmp_path / "gpu_check_cpu.md").read_text()
    assert "Status: **failed**" in text and gpu_check.TITLES["two_tower"] in text
    assert gpu_check_command.main(["--dry-run", "--out", str(tmp_path), "--quiet"]) == 1  # errors: exit status 1


def test_projections_and_targets_from_measured_numbers():
    assert gpu_check.hours_for_epochs(None) is None
    one = gpu_check.hours_for_epochs(16_016)
    assert one == pytest.approx(2.0, rel=1e-3) and gpu_check.hours_for_epochs(16_016, cards=8) == pytest.approx(0.25,
                                                                                                               rel=1e-3)
    report = {"dry_run": False, "steps": {
        "bench": {"best": {"images_per_s": 40_000.0}, "best_bf16": {"mfu": 0.35}},
        "end_to_end": {"best": {"images_per_s": 31_000.0}}}}
    p = gpu_check.projections(report)
    met = {t["target"].split(",")[0].split(" ")[0]: t["met"] for t in p["targets"]}
    assert [t["met"] for t in p["targets"]] == [False, True, True], met
    assert p["rows"][1]["hours_eight_cards"] == pytest.approx(p["rows"][1]["hours_one_card"] / 8)
    assert p["needed_images_per_s_for_2h"] == pytest.approx(90 * 1_281_167 / 7200)
    empty = gpu_check.projections({"dry_run": False, "steps": {}})
    assert all(t["met"] is None for t in empty["targets"])


def test_card_slugs():
    assert gpu_check.card_slug("NVIDIA H200", "cuda") == "h200"
    assert gpu_check.card_slug("NVIDIA H100 80GB HBM3", "cuda") == "h100"
    assert gpu_check.card_slug("NVIDIA H100 PCIe", "cuda") == "h100-pcie"
    assert gpu_check.card_slug("NVIDIA GeForce RTX 4090", "cuda") == "nvidia-geforce-rtx-4090"
    assert gpu_check.card_slug("AMD EPYC", "cpu") == "cpu"


def test_resize_on_device_is_the_cache_builders_resize_within_a_grey_level():
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    for size in (36, 256):
        got = gpu_check.resize_on_device(torch.from_numpy(small), size, torch.device("cpu"))
        want = np.stack([data.decode._centre_square_resize(a, size) for a in small])
        assert got.shape == (3, size, size, 3) and got.dtype == torch.uint8
        assert np.abs(got.numpy().astype(int) - want.astype(int)).max() <= 1
