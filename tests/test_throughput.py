"""The training-step benchmark (PAPER.md §7): FLOP/MFU arithmetic, the per-MAC ratio, the JSON report, the CLI;
and the fast LRN it depends on (§3.3): channels_last, bf16, towers, torch.compile.  No timing assertions."""
from __future__ import annotations

import json
import re
from unittest import mock

import pytest
import torch
import torch.nn.functional as F

from alexnet_book import layers, paper, throughput
from alexnet_book.commands import bench as bench_command
from alexnet_book.throughput import StepResult

torch.set_num_threads(1)


def _result(model, images_per_s, gmac, batch=8, precision="fp32", channels_last=False, compiled=False):
    return StepResult(model=model, batch_size=batch, precision=precision, channels_last=channels_last,
                      compiled=compiled, images_per_s=images_per_s, step_ms=1e3 * batch / images_per_s, tflops=0.0,
                      mfu=None, peak_memory_gb=None, gmac_per_image=gmac)


# ---------------------------------------------------------------- arithmetic

def test_training_flops_are_three_forwards_of_two_flops_per_mac():
    assert throughput.train_flops_per_image(0.724e9) == pytest.approx(4.344e9)  # PAPER.md §7: ≈4.3 GFLOP


def test_mfu_is_achieved_over_peak():
    # 1,000 images/s × 4.344 GFLOP = 4.344 TFLOP/s, on a 989 TFLOP/s part
    assert throughput.mfu(1000.0, 0.724e9, 989.0) == pytest.approx(4.344 / 989.0)
    assert throughput.mfu(1000.0, 0.724e9, None) is None


def test_per_mac_ratio():
    same_speed = throughput.per_mac_ratio(_result("paper", 100.0, 0.724), _result("torchvision", 100.0, 0.714))
    assert same_speed == pytest.approx(0.724 / 0.714)  # as fast on more MACs: better than 1
    equal_per_mac = throughput.per_mac_ratio(_result("paper", 0.714, 0.724), _result("torchvision", 0.724, 0.714))
    assert equal_per_mac == pytest.approx(1.0)
    assert throughput.per_mac_ratio(_result("paper", 45.0, 1.0), _result("torchvision", 50.0, 1.0)) == pytest.approx(0.9)


def test_summary_takes_the_fastest_paper_setting_and_its_own_twin():
    rows = [_result("paper", 10.0, 0.724), _result("torchvision", 20.0, 0.714),
            _result("paper", 30.0, 0.724, precision="bf16"), _result("torchvision", 31.0, 0.714, precision="bf16")]
    summary = throughput.summarise([vars(r) for r in rows])
    assert summary["best"]["precision"] == "bf16"
    assert summary["paper_vs_torchvision_per_mac"] == pytest.approx(30.0 * 0.724 / (31.0 * 0.714))
    assert [r["precision"] for r in summary["ratios"]] == ["fp32", "bf16"]
    assert summary["ratios"][0]["paper_vs_torchvision_per_mac"] == pytest.approx(10.0 * 0.724 / (20.0 * 0.714))
    assert throughput.summarise([])["paper_vs_torchvision_per_mac"] is None


def test_datasheet_peaks():
    assert throughput.datasheet_peak("NVIDIA H100 80GB HBM3", "bf16") == 989.0
    assert throughput.datasheet_peak("NVIDIA H100 PCIe", "bf16") == 756.0  # not the SXM part's
    assert throughput.datasheet_peak("NVIDIA H200", "fp32", tf32=True) == 494.0  # fp32 convolutions run as TF32
    assert throughput.datasheet_peak("NVIDIA H100 80GB HBM3", "fp32", tf32=False) == 67.0
    assert throughput.datasheet_peak("NVIDIA A100-SXM4-80GB", "bf16") == 312.0
    assert throughput.datasheet_peak("NVIDIA GeForce GTX 580", "bf16") is None  # measured instead


def test_measured_peak_is_positive():
    assert throughput.measured_peak(torch.device("cpu"), "fp32", seconds=0.01) > 0


# ---------------------------------------------------------------- the benchmark itself, tiny

TINY = dict(device="cpu", scale="scaled", batch_sizes=(4,), precisions=("fp32",), channels_last=(True,),
            compile=(False,), rounds=1, steps=1, peak_seconds=0.01, progress=False)


def test_bench_train_writes_a_json_report(tmp_path):
    out = tmp_path / "bench" / "train.json"
    report = throughput.bench_train(out=out, **TINY)
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(report))
    assert {r["model"] for r in saved["results"]} == {"paper", "torchvision"}
    paper_row, reference_row = saved["results"]
    assert paper_row["images_per_s"] > 0 and paper_row["channels_last"] is True
    assert paper_row["gmac_per_image"] > reference_row["gmac_per_image"]  # two towers with LRN vs one, no LRN
    assert saved["paper_vs_torchvision_per_mac"] == pytest.approx(throughput.per_mac_ratio(paper_row, reference_row))
    assert saved["best"] == paper_row and saved["device_type"] == "cpu" and saved["threads"] == 1
    assert list(out.parent.iterdir()) == [out]  # no temporary file left behind


def test_bench_train_json_is_written_atomically(tmp_path):
    out = tmp_path / "train.json"
    out.write_text('{"previous": true}')
    with mock.patch("alexnet_book.runs.os.replace", side_effect=OSError("disk gone")):
        with pytest.raises(OSError):
            throughput.bench_train(out=out, **TINY)
    assert json.loads(out.read_text()) == {"previous": True}  # the old report survives a failed write
    assert list(tmp_path.iterdir()) == [out]


def test_bench_train_rejects_unknown_precision_and_clock():
    with pytest.raises(ValueError, match="precisions"):
        throughput.bench_train(**{**TINY, "precisions": ("fp16",)})
    with pytest.raises(ValueError, match="clock"):
        throughput.bench_train(**{**TINY, "clock": "gpu"})
    with pytest.raises(ValueError, match="CPU seconds"):
        throughput.bench_train(**{**TINY, "device": "cuda", "clock": "cpu"})


def test_bench_train_cpu_clock_and_threads_are_recorded_and_restored():
    torch.set_num_threads(1)
    report = throughput.bench_train(**{**TINY, "clock": "cpu", "threads": 2})
    assert report["clock"] == "cpu" and report["threads"] == 2
    assert torch.get_num_threads() == 1  # the caller's setting is back
    assert all(r["images_per_s"] > 0 for r in report["results"])


def test_cli_quick_prints_the_ratio_last(tmp_path, capsys):
    out = tmp_path / "quick.json"
    code = bench_command.main(["train", "--quick", "--device", "cpu", "--scale", "scaled", "--batch-sizes", "4",
                               "--precisions", "fp32", "--rounds", "1", "--out", str(out)])
    printed = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and out.exists()
    assert re.fullmatch(r"paper_vs_torchvision_per_mac=\d+\.\d{3}", printed[-1])
    ratio = json.loads(out.read_text())["paper_vs_torchvision_per_mac"]
    assert printed[-1] == f"paper_vs_torchvision_per_mac={ratio:.3f}"
    assert any("90 ImageNet epochs" in line and str(paper.IMAGES_PER_SECOND_2012) in line for line in printed)


def test_report_without_results_prints_nan(capsys):
    report = {"results": [], "skipped": ["batch=4 fp32: out of memory"], "load_average": None, "device": "x",
              "device_type": "cpu", "threads": 1, "peak_tflops": {}, "peak_source": {}, "reference": "r",
              "paper_2012_images_per_s": paper.IMAGES_PER_SECOND_2012, **throughput.summarise([])}
    throughput.print_report(report)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "paper_vs_torchvision_per_mac=nan" and any("out of memory" in line for line in lines)


# ---------------------------------------------------------------- the fast LRN the benchmark leans on (§3.3)

def _reference_lrn(x, towers, size=5, alpha=1e-4, beta=0.75, k=2.0):
    return torch.cat([F.local_response_norm(h, size, alpha, beta, k) for h in x.chunk(towers, dim=1)], dim=1)


@pytest.mark.parametrize("towers", [1, 2])
def test_fast_lrn_channels_last_matches_torch_and_stays_channels_last(towers):
    x0 = (torch.randn(2, 12, 5, 4, dtype=torch.float64) * 30).contiguous(memory_format=torch.channels_last)
    x, r = x0.clone().requires_grad_(), x0.clone().requires_grad_()
    y = layers.LocalResponseNorm(towers=towers)(x)
    expected = _reference_lrn(r, towers)
    upstream = torch.randn_like(expected)
    (y * upstream).sum().backward()
    (expected * upstream).sum().backward()
    torch.testing.assert_close(y, expected, atol=1e-10, rtol=1e-7)
    torch.testing.assert_close(x.grad, r.grad, atol=1e-10, rtol=1e-7)
    assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()
    assert x.grad.is_contiguous(memory_format=torch.channels_last)


def test_fast_lrn_channels_last_window_stops_at_the_tower_boundary():
    a = (torch.randn(1, 96, 3, 3) * 30).abs().contiguous(memory_format=torch.channels_last)
    bumped = a.clone()
    bumped[:, 47] += 50.0  # the last map of tower 1
    lrn = layers.LocalResponseNorm(towers=2)
    change = (lrn(bumped) - lrn(a)).abs()
    assert change[:, 48:].max() == 0.0 and change[:, 45].max() > 0


def test_fast_lrn_keeps_bf16_under_autocast():
    x = (torch.rand(2, 8, 5, 5) * 30).bfloat16().contiguous(memory_format=torch.channels_last).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layers.LocalResponseNorm(towers=2)(x)
    y.float().sum().backward()
    assert y.dtype == torch.bfloat16 and x.grad.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), _reference_lrn(x.detach().float(), 2), atol=0.05, rtol=0.02)


def test_fast_lrn_float32_gradient_and_other_dimensions():
    x0 = torch.randn(3, 7, 11) * 20  # (N, C, L), as F.local_response_norm accepts
    x, r = x0.clone().requires_grad_(), x0.clone().requires_grad_()
    y = layers.fast_local_response_norm(x, 5, 1e-3, 0.75, 1.0)
    expected = F.local_response_norm(r, 5, 1e-3, 0.75, 1.0)
    y.square().sum().backward()
    expected.square().sum().backward()
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(x.grad, r.grad, atol=1e-4, rtol=1e-4)


def test_fast_lrn_runs_on_the_meta_device():
    """Shape-only passes (meta tensors, used to size a network without memory) go through the fast path."""
    x = torch.empty(2, 8, 5, 5, device="meta", requires_grad=True)
    y = layers.LocalResponseNorm(towers=2)(x)
    y.sum().backward()
    assert y.shape == x.shape and x.grad.shape == x.shape


def test_fast_lrn_rejects_what_it_cannot_normalise():
    with pytest.raises(ValueError, match="towers"):
        layers.fast_local_response_norm(torch.randn(1, 5, 2, 2), 5, 1e-4, 0.75, 2.0, towers=2)
    with pytest.raises(ValueError, match="3 dimensions"):
        layers.fast_local_response_norm(torch.randn(4, 5), 5, 1e-4, 0.75, 2.0)


def test_fast_lrn_under_torch_compile_uses_the_plain_formula():
    """Compiled, the module runs ``local_response_norm`` (which the compiler fuses) and gives the same values."""
    torch._dynamo.reset()
    x = (torch.rand(2, 8, 5, 5, dtype=torch.float64) * 30).requires_grad_()
    with mock.patch.object(layers, "local_response_norm", wraps=layers.local_response_norm) as plain:
        y = torch.compile(layers.LocalResponseNorm(towers=2), backend="aot_eager")(x)
    assert plain.called
    expected = _reference_lrn(x, 2)
    torch.testing.assert_close(y, expected)
    torch.testing.assert_close(torch.autograd.grad(y.sum(), x)[0], torch.autograd.grad(expected.sum(), x)[0])
