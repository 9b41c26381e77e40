"""Published weights (alexnet_book.weights): Caffe import in both file formats, torchvision, downloads, safety.

The real files (about 233 MiB each) cannot be downloaded here, so the tests write caffemodels themselves --
encoded byte by byte with the field numbers of BVLC's caffe.proto, independently of ``caffe_proto`` -- for a
scaled AlexNet-shaped network, and check every blob's place and the outputs against a reference forward pass
written here from plain tensor operations (Caffe's BGR input, explicit group slicing, the LRN formula).
"""
from __future__ import annotations

import dataclasses
import hashlib
import http.server
import pickle
import socket
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from alexnet_book import bvlc, pretrained, weights
from alexnet_book.commands import weights as weights_command
from alexnet_book.model import AlexNet

torch.set_num_threads(1)

# The blobs of the real bvlc_alexnet.caffemodel (Caffe's (out, in/groups, k, k) for grouped conv2/4/5).
BVLC_SHAPES = {
    "conv1": ((96, 3, 11, 11), (96,)), "conv2": ((256, 48, 5, 5), (256,)), "conv3": ((384, 256, 3, 3), (384,)),
    "conv4": ((384, 192, 3, 3), (384,)), "conv5": ((256, 192, 3, 3), (256,)), "fc6": ((4096, 9216), (4096,)),
    "fc7": ((4096, 4096), (4096,)), "fc8": ((1000, 4096), (1000,)),
}


# ------------------------------------------------------------------------- protobuf wire format, written by hand
def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def vint(number: int, n: int) -> bytes:  # wire type 0
    return tag(number, 0) + varint(n)


def f32(number: int, x: float) -> bytes:  # wire type 5
    return tag(number, 5) + struct.pack("<f", x)


def ld(number: int, payload: bytes) -> bytes:  # wire type 2: strings, messages, packed arrays
    return tag(number, 2) + varint(len(payload)) + payload


def text(number: int, s: str) -> bytes:
    return ld(number, s.encode())


def packed_floats(number: int, a: np.ndarray) -> bytes:
    return ld(number, np.ascontiguousarray(a, dtype="<f4").tobytes())


# caffe.proto, as BVLC wrote it.  BlobProto: num=1 channels=2 height=3 width=4 data=5 diff=6 shape=7;
# BlobShape: dim=1 (packed int64).
def blob_new(a: np.ndarray) -> bytes:
    return packed_floats(5, a) + ld(7, ld(1, b"".join(varint(d) for d in a.shape)))


def blob_v1(a: np.ndarray) -> bytes:
    shape = (1,) * (4 - a.ndim) + a.shape  # 2014 files hold every blob as num × channels × height × width
    return b"".join(vint(i, d) for i, d in enumerate(shape, start=1)) + packed_floats(5, a)


def conv_param(out, kernel, stride, pad, group) -> bytes:  # ConvolutionParameter
    return vint(1, out) + vint(3, pad) + vint(4, kernel) + vint(5, group) + vint(6, stride)


LRN_PARAM = vint(1, 5) + f32(2, 1e-4) + f32(3, 0.75)  # LRNParameter local_size=1 alpha=2 beta=3 (k defaults to 1)
POOL_PARAM = vint(1, 0) + vint(2, 3) + vint(3, 2)  # PoolingParameter pool=1 (MAX) kernel_size=2 stride=3


def caffe_layers(model: AlexNet):
    """The layer list of an AlexNet-shaped Caffe net: (name, type, settings key, settings, bottom, top)."""
    layers = [("data", "Data", None, b"", None, "data")]
    previous = "data"
    for s in model.specs:
        n = s.name[-1]
        layers.append((s.name, "Convolution", "conv", conv_param(s.out, s.kernel, s.stride, s.pad, s.groups),
                       previous, s.name))
        layers.append((f"relu{n}", "ReLU", None, b"", s.name, s.name))
        previous = s.name
        if s.lrn:
            layers.append((f"norm{n}", "LRN", "lrn", LRN_PARAM, previous, f"norm{n}"))
            previous = f"norm{n}"
        if s.pool:
            layers.append((f"pool{n}", "Pooling", "pool", POOL_PARAM, previous, f"pool{n}"))
            previous = f"pool{n}"
    for name in ("fc6", "fc7", "fc8"):
        out = getattr(model.classifier, name).out_features
        layers.append((name, "InnerProduct", "fc", vint(1, out), previous, name))
        if name != "fc8":
            layers.append((f"relu{name[-1]}", "ReLU", None, b"", name, name))
            layers.append((f"drop{name[-1]}", "Dropout", "drop", f32(1, 0.5), name, name))
        previous = name
    layers.append(("loss", "SoftmaxWithLoss", None, b"", "fc8", "loss"))
    return layers


def write_caffemodel(path: Path, model: AlexNet, blobs: dict, fmt: str) -> Path:
    """A caffemodel as Caffe writes it: fmt "layer" (LayerParameter, 2015+) or "layers" (V1LayerParameter, 2014)."""
    out = bytearray()
    if fmt == "layer":
        out += text(1, "AlexNet")  # NetParameter name=1
        # LayerParameter: name=1 type=2 bottom=3 top=4 param=6 blobs=7 dropout_param=108
        # convolution_param=106 inner_product_param=117 lrn_param=118 pooling_param=121
        numbers = {"conv": 106, "fc": 117, "lrn": 118, "pool": 121, "drop": 108}
        for name, kind, key, settings, bottom, top in caffe_layers(model):
            body = text(1, name) + text(2, kind) + (text(3, bottom) if bottom else b"") + text(4, top)
            if name in blobs:
                body += ld(6, f32(3, 1.0)) + ld(6, f32(3, 2.0))  # ParamSpec lr_mult=3 (skipped by the reader)
                body += b"".join(ld(7, blob_new(a)) for a in blobs[name])
            if key:
                body += ld(numbers[key], settings)
            out += ld(100, body)  # NetParameter layer=100
    else:
        out += text(1, "AlexNet") + text(3, "data") + vint(4, 10) + vint(4, 3)  # name=1 input=3 input_dim=4
        # V1LayerParameter: bottom=2 top=3 name=4 type=5 blobs=6 blobs_lr=7 convolution_param=10
        # dropout_param=12 inner_product_param=17 lrn_param=18 pooling_param=19; LayerType enum numbers:
        types = {"Data": 5, "Convolution": 4, "ReLU": 18, "LRN": 15, "Pooling": 17, "InnerProduct": 14,
                 "Dropout": 6, "SoftmaxWithLoss": 21}
        numbers = {"conv": 10, "fc": 17, "lrn": 18, "pool": 19, "drop": 12}
        for name, kind, key, settings, bottom, top in caffe_layers(model):
            body = (text(2, bottom) if bottom else b"") + text(3, top) + text(4, name) + vint(5, types[kind])
            if name in blobs:
                body += b"".join(ld(6, blob_v1(a)) for a in blobs[name]) + f32(7, 1.0) + f32(7, 2.0)
            if key:
                body += ld(numbers[key], settings)
            out += ld(2, body)  # NetParameter layers=2
    path.write_bytes(bytes(out))
    return path


def random_blobs(model: AlexNet, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Seeded blobs in Caffe's layout for each conv/fc layer of the model (conv1 reads BGR)."""
    rng = np.random.default_rng(seed)
    blobs = {}
    for s in model.specs:
        conv = getattr(model.features, s.name)
        shape = (s.out, conv.in_channels // s.groups, s.kernel, s.kernel)
        blobs[s.name] = (rng.normal(0, 0.05, shape).astype(np.float32), rng.normal(0, 0.1, s.out).astype(np.float32))
    for name in ("fc6", "fc7", "fc8"):
        fc = getattr(model.classifier, name)
        blobs[name] = (rng.normal(0, 0.05, (fc.out_features, fc.in_features)).astype(np.float32),
                       rng.normal(0, 0.1, fc.out_features).astype(np.float32))
    return blobs


def caffe_forward(blobs, model: AlexNet, x_bgr: torch.Tensor) -> torch.Tensor:
    """What Caffe computes for bvlc_alexnet-style layers, in float64, from plain operations."""
    def conv(x, name, stride, pad, groups):
        w, b = (torch.from_numpy(a).double() for a in blobs[name])
        # each group: its slice of output kernels reads only its slice of input maps
        xs, ws, bs = x.chunk(groups, 1), w.chunk(groups, 0), b.chunk(groups, 0)
        return torch.cat([F.conv2d(xi, wi, bi, stride, pad) for xi, wi, bi in zip(xs, ws, bs)], 1)

    def lrn(a, n=5, alpha=1e-4, beta=0.75, k=1.0):
        # Caffe: b_i = a_i / (k + alpha/n · Σ_{j=i-2}^{i+2} a_j²)^beta, the window clipped at 0 and C-1
        out = torch.empty_like(a)
        c = a.shape[1]
        for i in range(c):
            lo, hi = max(0, i - n // 2), min(c - 1, i + n // 2)
            out[:, i] = a[:, i] / (k + alpha / n * (a[:, lo:hi + 1] ** 2).sum(1)) ** beta
        return out

    x = x_bgr.double()
    for s in model.specs:
        x = torch.relu(conv(x, s.name, s.stride, s.pad, s.groups))
        if s.lrn:
            x = lrn(x)
        if s.pool:
            x = F.max_pool2d(x, 3, 2)
    x = x.flatten(1)
    for name in ("fc6", "fc7", "fc8"):
        w, b = (torch.from_numpy(a).double() for a in blobs[name])
        x = x @ w.T + b
        if name != "fc8":
            x = torch.relu(x)
    return x


def scaled_bvlc_like(num_classes: int = 10) -> AlexNet:
    return AlexNet(num_classes, scale="scaled", lrn="caffe", lrn_across_towers=True, init="default")


# --------------------------------------------------------------------------------------------------- BVLC import
@pytest.mark.parametrize("fmt", ["layer", "layers"])
def test_every_blob_lands_in_its_module(tmp_path, fmt):
    model = scaled_bvlc_like()
    blobs = random_blobs(model, seed=1)
    path = write_caffemodel(tmp_path / f"net-{fmt}.caffemodel", model, blobs, fmt)
    loaded = bvlc.load_bvlc(path, model)
    assert loaded is model and not model.training
    w1 = model.features.conv1.weight.detach().numpy()
    # conv1: Caffe's input channel 0 is blue, ours is red -- the kernel's channel axis is reversed
    np.testing.assert_array_equal(w1[:, 0], blobs["conv1"][0][:, 2])
    np.testing.assert_array_equal(w1[:, 2], blobs["conv1"][0][:, 0])
    np.testing.assert_array_equal(w1[:, 1], blobs["conv1"][0][:, 1])
    for name, (w, b) in blobs.items():
        module = getattr(model.features if name.startswith("conv") else model.classifier, name)
        if name != "conv1":  # grouped conv2/4/5 keep Caffe's (out, in/groups, k, k) layout unchanged
            np.testing.assert_array_equal(module.weight.detach().numpy(), w)
        np.testing.assert_array_equal(module.bias.detach().numpy(), b)
    assert model.features.conv2.groups == 2 and model.features.conv2.weight.shape[1] == 16


@pytest.mark.parametrize("fmt", ["layer", "layers"])
def test_outputs_equal_caffe_computation(tmp_path, fmt):
    model = scaled_bvlc_like()
    blobs = random_blobs(model, seed=2)
    bvlc.load_bvlc(write_caffemodel(tmp_path / "net.caffemodel", model, blobs, fmt), model)
    g = torch.Generator().manual_seed(0)
    x_rgb = torch.rand(2, 3, 32, 32, generator=g) * 255 - torch.tensor(bvlc.BVLC_MEAN_RGB).view(1, 3, 1, 1)
    with torch.no_grad():
        ours = model(x_rgb).double()
    reference = caffe_forward(blobs, model, x_rgb.flip(1))  # Caffe is fed the same image as BGR
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-4 * reference.abs().max().item())
    # the check can fail: the same blobs without the LRN (or read as RGB) compute something else
    unflipped = caffe_forward(blobs, model, x_rgb)
    assert (unflipped - reference).abs().max() > 1e-2 * reference.abs().max()


def test_architecture_mismatch_is_reported(tmp_path):
    model = scaled_bvlc_like()
    path = write_caffemodel(tmp_path / "net.caffemodel", model, random_blobs(model), "layer")
    per_tower = AlexNet(10, scale="scaled", lrn="caffe", lrn_across_towers=False, init="default")
    with pytest.raises(ValueError, match="norm1"):
        bvlc.load_bvlc(path, per_tower)  # cuda-convnet's per-tower LRN is not Caffe's
    with pytest.raises(ValueError, match="norm1"):
        bvlc.load_bvlc(path, AlexNet(10, scale="scaled", lrn="authors", lrn_across_towers=True, init="default"))
    with pytest.raises(ValueError, match="conv2"):
        bvlc.load_bvlc(path, AlexNet(10, scale="scaled", towers=1, lrn="caffe", init="default"))
    with pytest.raises(ValueError, match="fc8"):
        bvlc.load_bvlc(path, scaled_bvlc_like(num_classes=7))


def test_full_network_matches_bvlc_blobs_and_227_input():
    model = bvlc.bvlc_model()
    assert bvlc.caffe_blob_shapes(model) == BVLC_SHAPES
    assert sum(np.prod(s) for pair in BVLC_SHAPES.values() for s in pair) == 60_965_224
    x = torch.zeros(1, 3, 227, 227)
    assert model.features.pad(x) is x  # Caffe's 227 crop needs no extra pixels: conv1 → 55×55
    with torch.no_grad():
        assert model.features(x).shape == (1, 256, 6, 6)


def test_bvlc_transform_is_rgb_0_255_minus_mean():
    from PIL import Image

    colour = (200, 100, 50)
    x = bvlc.bvlc_transform()(Image.new("RGB", (300, 400), colour))
    assert x.shape == (3, 227, 227) and x.dtype == torch.float32
    expected = torch.tensor(colour, dtype=torch.float32) - torch.tensor(bvlc.BVLC_MEAN_RGB, dtype=torch.float32)
    torch.testing.assert_close(x[:, 113, 113], expected)
    assert bvlc.BVLC_MEAN_RGB == tuple(reversed(bvlc.BVLC_MEAN_BGR))


def test_truncated_or_garbage_caffemodel_is_refused(tmp_path):
    model = scaled_bvlc_like()
    good = write_caffemodel(tmp_path / "good.caffemodel", model, random_blobs(model), "layer").read_bytes()
    cut = tmp_path / "cut.caffemodel"
    cut.write_bytes(good[: len(good) // 2])  # ends in the middle of fc6's blob
    with pytest.raises(ValueError, match="cut.caffemodel"):
        bvlc.read_caffemodel(cut)
    with pytest.raises(ValueError, match="cut.caffemodel"):
        bvlc.load_bvlc(cut, scaled_bvlc_like())
    junk = tmp_path / "junk.caffemodel"
    junk.write_bytes(np.random.default_rng(0).bytes(len(good)))
    with pytest.raises(ValueError, match="junk.caffemodel"):
        bvlc.load_bvlc(junk, scaled_bvlc_like())
    # a whole but small file cannot fill the full network: the size check speaks before parsing
    with pytest.raises(ValueError, match="truncated"):
        bvlc.load_bvlc(tmp_path / "good.caffemodel")
    with pytest.raises(FileNotFoundError, match="curl"):
        bvlc.load_bvlc(tmp_path / "absent.caffemodel")


def test_load_pretrained_bvlc_finds_the_file_and_says_how_to_feed_it(tmp_path, monkeypatch):
    # a 1000-class scaled network stands in for the 233 MiB original
    monkeypatch.setattr(bvlc, "bvlc_model", lambda: scaled_bvlc_like(num_classes=1000))
    monkeypatch.setenv("ALEXNET_BOOK_WEIGHTS", str(tmp_path))
    stand_in = scaled_bvlc_like(num_classes=1000)
    blobs = random_blobs(stand_in, seed=4)
    write_caffemodel(tmp_path / "bvlc_alexnet.caffemodel", stand_in, blobs, "layers")
    model, info = pretrained.load_pretrained("bvlc")
    np.testing.assert_array_equal(model.features.conv1.weight.detach().numpy(), blobs["conv1"][0][:, ::-1])
    assert info["source"] == "bvlc" and info["path"] == str(tmp_path / "bvlc_alexnet.caffemodel")
    assert info["preprocessing"]["mean"] == bvlc.BVLC_MEAN_RGB and info["preprocessing"]["scale"] == 255
    assert info["preprocessing"]["crop"] == 227 and len(info["class_names"]) == 1000
    assert info["reference"]["top1_accuracy"] == pytest.approx(57.1)


def test_info_describes_a_caffemodel(tmp_path, capsys):
    from alexnet_book.cli import main

    model = scaled_bvlc_like()
    path = write_caffemodel(tmp_path / "v1.caffemodel", model, random_blobs(model), "layers")
    assert main(["weights", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "V1 `layers` format" in out and "conv2" in out and "64×16×5×5" in out
    assert "fits bvlc_model()" in out and ": no" in out  # scaled shapes, not bvlc_alexnet's
    assert "not the published bvlc_alexnet.caffemodel" in out


# --------------------------------------------------------------------------------------------------- torchvision
@pytest.fixture(scope="module")
def torchvision_file(tmp_path_factory):
    """torchvision's alexnet (random weights) and its state dict saved as torchvision publishes it."""
    import torchvision

    torch.manual_seed(0)
    reference = torchvision.models.alexnet(weights=None).eval()
    path = tmp_path_factory.mktemp("tv") / "alexnet-owt-7be5be79.pth"
    torch.save(reference.state_dict(), path)
    return reference, path


def test_torchvision_state_dict_gives_torchvision_logits(torchvision_file):
    reference, path = torchvision_file
    model = weights.load_torchvision(path)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=0, atol=1e-6)
    model2, info = pretrained.load_pretrained(path)
    assert info["source"] == "torchvision" and info["preprocessing"]["crop"] == 224
    assert info["class_names"][0] == "tench" and len(info["class_names"]) == 1000
    with torch.no_grad():
        torch.testing.assert_close(model2(x), reference(x), rtol=0, atol=1e-6)


def test_predict_top5_on_an_image_file(tmp_path, torchvision_file):
    from PIL import Image

    model, info = pretrained.load_pretrained(torchvision_file[1])
    image = tmp_path / "cat.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(image)
    top = weights.predict_top5(model, image, info["transform"], info["class_names"])
    assert len(top) == 5 and all(name in info["class_names"] for name, _ in top)
    probs = [p for _, p in top]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    with torch.no_grad():  # the same numbers by hand
        expected = torch.softmax(model(info["transform"](Image.open(image).convert("RGB"))[None]), 1)[0]
    assert top[0] == (info["class_names"][int(expected.argmax())], pytest.approx(float(expected.max()), rel=1e-5))


def test_our_checkpoint_loads_through_load_pretrained(tmp_path):
    from alexnet_book import runs

    torch.manual_seed(2)
    net = AlexNet(10, scale="scaled", towers=1, remove="conv4", lrn="authors").eval()
    path = tmp_path / "checkpoint.pt"
    runs.save_checkpoint(path, {"model": net.state_dict(), "config": {"model": "alexnet", "model_options": {}},
                                "class_names": [f"c{i}" for i in range(10)]})
    model, info = pretrained.load_pretrained(path)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x))
    assert info["source"] == "checkpoint" and info["class_names"][3] == "c3" and info["input_size"] == 32


def test_missing_published_files_raise_file_not_found_with_steps(tmp_path, monkeypatch):
    monkeypatch.setenv("ALEXNET_BOOK_WEIGHTS", str(tmp_path / "w"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    for source in ("bvlc", "torchvision"):
        with pytest.raises(FileNotFoundError, match="curl"):
            pretrained.load_pretrained(source)
    with pytest.raises(FileNotFoundError, match="alexnet-book weights fetch"):
        weights.load_torchvision()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickle_posing_as_weights_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    legacy = tmp_path / "alexnet-owt-7be5be79.pth"
    legacy.write_bytes(pickle.dumps({"features.0.weight": Payload()}))
    zipped = tmp_path / "zipped.pth"
    torch.save({"features.0.weight": Payload()}, zipped)
    for path in (legacy, zipped):
        with pytest.raises(ValueError, match=path.name):
            weights.load_torchvision(path)
        with pytest.raises(ValueError, match=path.name):
            pretrained.load_pretrained(path)
        with pytest.raises(ValueError, match="refused"):
            weights_command.describe(path)
    assert not marker.exists()
    pickle.loads(legacy.read_bytes())  # the payload is live: unpickled naively it does run
    assert marker.exists()


def test_truncated_pth_is_refused(tmp_path):
    path = tmp_path / "alexnet.pth"
    torch.save({"features.0.weight": torch.randn(64, 3, 11, 11)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="alexnet.pth"):
        weights.load_torchvision(path)


# ------------------------------------------------------------------------------------------------------ downloads
class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves server.payload at any path, honouring "Range: bytes=N-" unless server.ranges is False."""

    def do_GET(self):
        server = self.server
        asked = self.headers.get("Range")
        server.log.append(asked)
        data, start = server.payload, 0
        if asked and server.ranges:
            start = int(asked.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.break_once:  # promise the whole body, send half, hang up
            server.break_once = False
            self.wfile.write(body[: len(body) // 2])
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    httpd.payload = np.random.default_rng(3).bytes(300_000)
    httpd.log, httpd.ranges, httpd.break_once = [], True, False
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def spec_for(httpd, digest=None, algorithm="sha1") -> weights.WeightsFile:
    digest = digest or hashlib.new(algorithm, httpd.payload).hexdigest()
    return weights.WeightsFile("test", f"http://127.0.0.1:{httpd.server_address[1]}/tiny.bin", "tiny.bin",
                               algorithm, digest)


def test_fetch_downloads_and_verifies(server, tmp_path):
    path = weights.fetch(spec_for(server), tmp_path, progress=False)
    assert path == tmp_path / "tiny.bin" and path.read_bytes() == server.payload
    assert not (tmp_path / "tiny.bin.part").exists()
    weights.fetch(spec_for(server), tmp_path, progress=False)  # already there and verified: no request
    assert server.log == [None]
    # an 8-digit SHA-256 prefix, as torchvision publishes
    prefix = hashlib.sha256(server.payload).hexdigest()[:8]
    assert weights.fetch(spec_for(server, prefix, "sha256"), tmp_path / "tv", progress=False).is_file()


def test_fetch_resumes_a_broken_download(server, tmp_path):
    server.break_once = True
    with pytest.raises(ConnectionError, match="again to resume"):
        weights.fetch(spec_for(server), tmp_path, progress=False)
    part = tmp_path / "tiny.bin.part"
    half = len(server.payload) // 2
    assert part.stat().st_size == half
    path = weights.fetch(spec_for(server), tmp_path, progress=False)
    assert server.log == [None, f"bytes={half}-"]  # the second request asked only for the rest
    assert path.read_bytes() == server.payload


def test_fetch_restarts_when_the_server_ignores_range(server, tmp_path):
    server.ranges = False
    (tmp_path / "tiny.bin.part").write_bytes(b"stale bytes")
    path = weights.fetch(spec_for(server), tmp_path, progress=False)
    assert path.read_bytes() == server.payload and server.log == ["bytes=11-"]


def test_fetch_finishes_a_whole_part_file(server, tmp_path):
    (tmp_path / "tiny.bin.part").write_bytes(server.payload)
    assert weights.fetch(spec_for(server), tmp_path, progress=False).read_bytes() == server.payload
    assert server.log == [f"bytes={len(server.payload)}-"]  # answered 416: nothing left to send


def test_fetch_rejects_a_wrong_checksum(server, tmp_path):
    wrong = hashlib.sha1(b"another file").hexdigest()
    with pytest.raises(ValueError, match="checksum mismatch"):
        weights.fetch(spec_for(server, wrong), tmp_path, progress=False)
    assert not (tmp_path / "tiny.bin").exists() and not (tmp_path / "tiny.bin.part").exists()


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("url", [f"http://127.0.0.1:{closed_port()}/bvlc_alexnet.caffemodel",
                                 "http://192.0.2.1:9/bvlc_alexnet.caffemodel"])  # TEST-NET-1: never routed
def test_offline_fetch_fails_at_once_with_manual_steps(tmp_path, monkeypatch, url):
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    spec = dataclasses.replace(weights.WEIGHTS["bvlc"], url=url)
    start = time.perf_counter()
    with pytest.raises(ConnectionError) as error:
        weights.fetch(spec, tmp_path, timeout=1.0, progress=False)
    assert time.perf_counter() - start < 5
    message = str(error.value)
    assert url in message and "curl" in message and str(tmp_path / "bvlc_alexnet.caffemodel") in message


def test_cli_fetch_offline_prints_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(weights.WEIGHTS, "bvlc", dataclasses.replace(
        weights.WEIGHTS["bvlc"], url=f"http://127.0.0.1:{closed_port()}/bvlc_alexnet.caffemodel"))
    assert weights_command.main(["fetch", "bvlc", "--dest", str(tmp_path), "--timeout", "1", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("alexnet-book weights: cannot reach") and "Traceback" not in err
