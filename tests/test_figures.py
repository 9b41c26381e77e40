"""Figures: export with a manifest (issue 6, item 6), Fig. 3 grid, Fig. 4 neighbours, Fig. 1, plots."""
from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from alexnet_book import figures  # noqa: E402

torch.set_num_threads(1)


def _figure():
    with figures.book_style():
        fig, ax = plt.subplots()
        ax.plot([0, 1, 2], [0, 1, 4], label="a line")
        ax.legend()
    return fig


def test_save_figure_writes_three_formats_and_manifest(tmp_path):
    fig = _figure()
    paths = figures.save_figure(fig, "demo", caption="A demo", paper_figure="Fig. 3", notebook="05_x.ipynb",
                                data="cifar10", config_hash="abc123", figures_dir=tmp_path)
    plt.close(fig)
    assert sorted(p.suffix for p in paths) == [".pdf", ".png", ".svg"]
    assert (tmp_path / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "demo.pdf").read_bytes()[:4] == b"%PDF"
    assert b"<svg" in (tmp_path / "demo.svg").read_bytes()
    from PIL import Image
    with Image.open(tmp_path / "demo.png") as im:  # ≥ 200 dpi: a 6.4-inch-wide figure is > 1000 px
        assert im.size[0] > 1000
        assert round(im.info["dpi"][0]) >= 200
    index = json.loads((tmp_path / "index.json").read_text())
    entry = index["figures"]["demo"]
    assert entry["caption"] == "A demo" and entry["paper_figure"] == "Fig. 3"
    assert entry["notebook"] == "05_x.ipynb" and entry["data"] == "cifar10" and entry["config_hash"] == "abc123"
    assert entry["files"] == ["demo.pdf", "demo.png", "demo.svg"]
    assert entry["date"] and entry["library_version"]
    assert not list(tmp_path.glob(".*tmp"))  # no temp files left behind


def test_save_figure_is_deterministic_and_keeps_entries(tmp_path):
    figures.save_figure(_figure(), "one", caption="first", figures_dir=tmp_path)
    first = {p.name: p.read_bytes() for p in tmp_path.glob("one.*")}
    figures.save_figure(_figure(), "one", caption="first", figures_dir=tmp_path)
    second = {p.name: p.read_bytes() for p in tmp_path.glob("one.*")}
    assert first == second  # no dates or random ids inside PNG, SVG or PDF
    figures.save_figure(_figure(), "two", caption="second", figures_dir=tmp_path)
    index = figures.read_index(tmp_path)
    assert set(index["figures"]) == {"one", "two"}
    plt.close("all")


def test_save_figure_rejects_paths_as_names(tmp_path):
    with pytest.raises(ValueError, match="plain file stem"):
        figures.save_figure(_figure(), "../evil", caption="x", figures_dir=tmp_path)
    plt.close("all")


def test_figures_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ALEXNET_BOOK_FIGURES", str(tmp_path / "elsewhere"))
    assert figures.figures_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("ALEXNET_BOOK_FIGURES")
    assert figures.figures_dir().name == "figures"
