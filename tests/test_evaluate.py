"""Evaluation (§6, §4.1): top-k error on constructed scores, 10-crop softmax averaging, sharding, the CLI."""
import pytest
import torch
from torch import nn

from alexnet_book.data import ImageArrays
from alexnet_book.commands.evaluate import main as cli_main
from alexnet_book.devices import shard
from alexnet_book.evaluate import evaluate, ten_crop_probabilities, topk_correct, topk_errors


def test_topk_errors_on_constructed_logits():
    logits = torch.tensor([
        [9., 8, 7, 6, 5, 4, 3],  # label 0: top-1 right
        [9., 8, 7, 6, 5, 4, 3],  # label 4: 5th best -> top-1 wrong, top-5 right
        [9., 8, 7, 6, 5, 4, 3],  # label 5: 6th best -> both wrong
        [0., 0, 0, 0, 0, 0, 1],  # label 6: top-1 right
    ])
    labels = torch.tensor([0, 4, 5, 6])
    r = topk_errors(logits, labels)
    assert r == {"top1_error": 0.5, "top1_accuracy": 0.5, "top5_error": 0.25, "top5_accuracy": 0.75, "n": 4}
    assert topk_correct(logits, labels, ks=(1, 2, 5)) == {1: 2, 2: 2, 5: 3}


def test_topk_with_fewer_classes_than_k():
    logits = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    r = topk_errors(logits, torch.tensor([0, 0, 0]))
    assert r["top1_error"] == pytest.approx(2 / 3) and r["top5_error"] == 0.0


class FixedViews(nn.Module):
    """Returns preset logits for the ten views, whatever the pixels."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        assert x.shape[0] == self.logits.shape[0]
        return self.logits


def test_ten_crop_averages_softmax_not_logits():
    # nine views mildly for class 0, one view overwhelmingly for class 1
    views = torch.tensor([[1.0, 0.0]] * 9 + [[0.0, 100.0]])
    p = ten_crop_probabilities(FixedViews(views), torch.zeros(1, 10, 3, 4, 4))
    assert torch.allclose(p, torch.softmax(views, 1).mean(0, keepdim=True))
    assert p.argmax().item() == 0  # softmax averaging: class 0 (p ≈ 0.66)
    assert views.mean(0).argmax().item() == 1  # averaging logits would have said class 1


class BrightCorner(nn.Module):
    """Class 1 in proportion to the brightest pixel a patch sees, class 0 a constant 1."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        peak = x.amax(dim=(1, 2, 3))
        return torch.stack([torch.ones_like(peak), 0.1 * peak], 1)


def test_evaluate_ten_crop_vs_centre_on_images():
    # one bright pixel in the bottom-right corner: seen by 2 of the 10 patches (bottom-right and its mirror),
    # not by the centre crop.  Label 0.  Softmax averaging: 8×0.73 + 2×0 -> class 0; logit mean -> class 1.
    images = torch.zeros(3, 36, 36, 3, dtype=torch.uint8)
    images[:, 35, 35, :] = 255
    split = ImageArrays(images=images, labels=torch.zeros(3, dtype=torch.long))
    mean = torch.zeros(36, 36, 3)
    model = BrightCorner()
    centre = evaluate(model, split, mean, 32, device="cpu")
    ten = evaluate(model, split, mean, 32, ten_crop=True, device="cpu")
    assert centre["top1_error"] == 0.0 and ten["top1_error"] == 0.0 and ten["n"] == 3
    assert ten["loss"] > centre["loss"]  # the two corner views pull probability towards class 1
    # bright pixels in all four corners: 8 of the 10 patches see one, so 10 crops say class 1, the centre class 0
    for r, c in ((0, 0), (0, 35), (35, 0), (35, 35)):
        images[:, r, c, :] = 255
    assert evaluate(model, split, mean, 32, ten_crop=True, device="cpu")["top1_error"] == 1.0
    assert evaluate(model, split, mean, 32, device="cpu")["top1_error"] == 0.0


def test_split_probabilities_are_what_evaluate_scores_centre_and_ten_crop():
    """``split_probabilities`` (the ensemble row's and the views check's softmax) gives, per image, the prediction
    ``evaluate`` scores: the corner-pixel net's 10-crop labels flip where its centre-crop labels do not."""
    from alexnet_book.evaluate import split_probabilities

    images = torch.zeros(4, 36, 36, 3, dtype=torch.uint8)
    for r, c in ((0, 0), (0, 35), (35, 0), (35, 35)):
        images[:2, r, c, :] = 255  # the first two images: bright corners, seen by 8 of the 10 patches
    split = ImageArrays(images=images, labels=torch.zeros(4, dtype=torch.long))
    mean = torch.zeros(36, 36, 3)
    model = BrightCorner()
    centre = split_probabilities(model, split, mean, 32, batch_size=3)
    ten = split_probabilities(model, split, mean, 32, ten_crop=True, batch_size=3)
    assert centre.shape == ten.shape == (4, 2) and torch.allclose(ten.sum(dim=1), torch.ones(4))
    assert centre.argmax(dim=1).tolist() == [0, 0, 0, 0] and ten.argmax(dim=1).tolist() == [1, 1, 0, 0]
    for probabilities, ten_crop in ((centre, False), (ten, True)):
        scored = evaluate(model, split, mean, 32, ten_crop=ten_crop, device="cpu")
        assert scored["top1_error"] == topk_errors(probabilities, split.labels)["top1_error"]


class ColourReader(nn.Module):
    """Logit j = −(mean pixel − 20 j)²: reads the class from an image's uniform grey level."""

    def __init__(self, classes):
        super().__init__()
        self.centres = nn.Parameter(20.0 * torch.arange(classes).float(), requires_grad=False)

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3))
        return -(m[:, None] - self.centres[None]) ** 2


def grey_split(levels, labels, size=36):
    images = torch.tensor(levels, dtype=torch.uint8)[:, None, None, None].expand(-1, size, size, 3).contiguous()
    return ImageArrays(images=images, labels=torch.tensor(labels))


def test_evaluate_counts_top1_and_top5_errors():
    # 8 classes; image i has grey level 20·c.  Two images lie about their label:
    # label 3 drawn as class 0 (3 is within the top 5 of class 0) and label 7 drawn as class 0 (it is not).
    levels = [0, 20, 40, 60, 80, 100, 120, 140, 0, 0]
    labels = [0, 1, 2, 3, 4, 5, 6, 7, 3, 7]
    model = ColourReader(8).train()
    r = evaluate(model, grey_split(levels, labels), torch.zeros(36, 36, 3), 32, batch_size=3, device="cpu")
    assert r["n"] == 10 and r["top1_correct"] == 8 and r["top5_correct"] == 9
    assert r["top1_error"] == pytest.approx(0.2) and r["top5_error"] == pytest.approx(0.1)
    assert r["top1_accuracy"] == pytest.approx(0.8)
    assert model.training  # evaluation leaves the mode as it found it
    # the input scale is applied before the network: halving it reads every image as a darker class
    half = evaluate(model, grey_split(levels, labels), torch.zeros(36, 36, 3), 32, device="cpu", input_scale=0.5)
    assert half["top1_error"] > 0.5


def test_shards_cover_every_sample_once():
    split = ImageArrays(images=torch.zeros(11, 4, 4, 3, dtype=torch.uint8), labels=torch.arange(11))
    for world in (1, 2, 3, 4):
        seen = torch.cat([shard(split, r, world).labels for r in range(world)])
        assert seen.tolist() == list(range(11))


def test_cli_refuses_a_foreign_checkpoint(tmp_path, capsys):
    path = tmp_path / "foreign.pt"
    path.write_bytes(b"\x00garbage")
    assert cli_main(["--checkpoint", str(path)]) == 2
    assert "foreign.pt" in capsys.readouterr().err


def test_cli_train_then_evaluate_a_checkpoint(tmp_path, capsys):
    from alexnet_book.commands.train import main as train_main

    torch.set_num_threads(1)
    assert train_main(["--data", "synthetic", "--limit", "20", "--epochs", "1", "--batch-size", "8", "--model",
                       "fourlayer", "--precision", "fp32", "--input-scale", "0.02", "--out-dir", str(tmp_path),
                       "--quiet"]) == 0
    trained = capsys.readouterr().out
    checkpoint = next(tmp_path.glob("synthetic-fourlayer-*/checkpoint.pt"))
    assert cli_main(["--checkpoint", str(checkpoint), "--ten-crop", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    centre = [line for line in out.splitlines() if line.startswith("centre crop")][0]
    ten = [line for line in out.splitlines() if line.startswith("10 crops")][0]
    # the evaluation reproduces the training run's own final numbers
    top1 = float(centre.split("top-1 error")[1].split("%")[0])
    assert f"top-1 error {top1:.2f}%" in trained
    assert "n=20" in ten


def test_cli_ten_crop_scores_as_the_run_did(tmp_path, capsys, monkeypatch):
    """`evaluate --ten-crop` reproduces train's own 10-crop numbers: the same precision (the run's bf16 here,
    not fp32), input scale, memory format and batch size, and says so beside the recorded ones."""
    import json

    import alexnet_book.commands.evaluate as evaluate_module
    import alexnet_book.commands.train as train_command
    import alexnet_book.train as train_module

    calls = {"train": [], "cli": []}

    def spy(who, real):
        def wrapped(model, *args, **kwargs):
            if kwargs.get("ten_crop"):
                weight = next(p for p in model.parameters() if p.dim() == 4)
                calls[who].append({"precision": kwargs.get("precision"), "input_scale": kwargs.get("input_scale"),
                                   "batch_size": kwargs.get("batch_size"),
                                   "nhwc": weight.is_contiguous(memory_format=torch.channels_last)})
            return real(model, *args, **kwargs)
        return wrapped

    monkeypatch.setattr(train_module, "evaluate", spy("train", evaluate))
    monkeypatch.setattr(evaluate_module, "evaluate", spy("cli", evaluate))
    torch.set_num_threads(1)
    assert train_command.main(["--data", "synthetic", "--limit", "20", "--epochs", "1", "--batch-size", "8",
                                  "--model", "fourlayer", "--precision", "bf16", "--input-scale", "0.02",
                                  "--out-dir", str(tmp_path), "--quiet"]) == 0
    capsys.readouterr()
    row = json.loads((tmp_path / "results.jsonl").read_text().splitlines()[-1])
    assert row["precision"] == "bf16"
    for name in ("checkpoint.pt", "model-*.pt"):
        calls["cli"].clear()
        checkpoint = next(tmp_path.glob(f"synthetic-fourlayer-*/{name}"))
        assert cli_main(["--checkpoint", str(checkpoint), "--ten-crop", "--device", "cpu"]) == 0
        out = capsys.readouterr().out
        assert "bf16 autocast" in out.splitlines()[0]
        assert calls["cli"] == calls["train"] and calls["train"][0]["precision"] == torch.bfloat16
        assert calls["train"][0]["input_scale"] == 0.02
        ten = next(line for line in out.splitlines() if line.startswith("10 crops"))
        top1 = float(ten.split("top-1 error")[1].split("%")[0])
        top5 = float(ten.split("top-5 error")[1].split("%")[0])
        assert top1 == round(100 * row["metrics"]["val_top1_error_10crop"], 2)
        assert top5 == round(100 * row["metrics"]["val_top5_error_10crop"], 2)
        assert "the run recorded" in out and "differs" not in out


def test_why_different_names_the_setting_that_differs():
    from types import SimpleNamespace

    from alexnet_book.commands.evaluate import why_different
    from alexnet_book.config import TrainConfig

    args = SimpleNamespace(data=None, root=None, limit=None, batch_size=None)
    line = why_different(args, TrainConfig(), {"precision": "bf16", "device": "cuda:0"}, torch.device("cpu"),
                         None, None)
    assert "bf16" in line and "fp32" in line and "cuda:0" in line and "\n" not in line
    args.limit = 10
    assert "--limit" in why_different(args, TrainConfig(), {}, torch.device("cpu"), None, None)
