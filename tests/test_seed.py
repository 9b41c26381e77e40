"""The seed document's listing fails for each of its recorded faults, and the checks can tell (§3.1–§3.5, §4.2).

One test per fault of /work/shared/seed/README.md: each asserts what running the seed shows, so a demonstration
that stopped showing its fault (a listing that parses, shapes that fit, β read wrong) fails here.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from alexnet_book import paper, seed
from alexnet_book.model import AlexNet

torch.set_num_threads(1)
SHARED_SEED = Path(__file__).resolve().parent.parent.parent / "shared" / "seed" / "alexnet-seed.txt"


@pytest.fixture(scope="module")
def seed_net() -> nn.Module:
    torch.manual_seed(0)
    return seed.build_seed_model()


@pytest.fixture(scope="module")
def net() -> AlexNet:
    torch.manual_seed(0)
    return AlexNet().eval()


def test_the_stored_document_is_the_shared_seed_byte_for_byte():
    if not SHARED_SEED.is_file():
        pytest.skip(f"the shared seed document is not here ({SHARED_SEED})")
    stored = Path(seed.__file__).parent / "resources" / "alexnet-seed.txt"
    assert stored.read_bytes() == SHARED_SEED.read_bytes()
    assert seed.SEED_DOCUMENT == SHARED_SEED.read_text(encoding="utf-8")


def test_the_listing_and_text_are_cut_from_the_document():
    lines = seed.SEED_DOCUMENT.splitlines()
    assert lines[seed.LISTING_FIRST_LINE - 1] == "import torch"
    assert seed.SEED_LISTING.startswith("import torch\nimport torch.nn as nn\n\nclass AlexNet(nn.Module):")
    assert seed.SEED_LISTING.endswith("        return x\n") and seed.SEED_LISTING in seed.SEED_DOCUMENT
    assert seed.SEED_TEXT.startswith("The original breakout") and "β=1.5" in seed.SEED_TEXT


# ---------------------------------------------------------------------------------------- (a) parsing

def test_the_listing_does_not_parse_because_neither_sequential_is_closed():
    with pytest.raises(SyntaxError):
        compile(seed.SEED_LISTING, "<seed>", "exec")
    assert seed.unclosed_brackets(seed.SEED_LISTING) == [("(", 8), ("(", 24)]
    listing = seed.SEED_LISTING.splitlines()
    assert [listing[n - 1].strip() for n in (8, 24)] == ["self.features = nn.Sequential(",
                                                         "self.classifier = nn.Sequential("]
    as_written = seed.compile_error(seed.SEED_LISTING, seed.LISTING_FIRST_LINE)
    assert as_written.lineno == 28  # the document's line: `self.classifier = ...` read inside the first call
    one_closed = seed.close_brackets(seed.SEED_LISTING, lines=(8,))
    assert "was never closed" in seed.compile_error(one_closed).msg
    repaired = seed.close_brackets(seed.SEED_LISTING)
    assert seed.compile_error(repaired) is None
    added = [line for line in repaired.splitlines() if line.strip() == ")"]
    assert added == ["        )", "        )"] and len(repaired.splitlines()) == len(listing) + 2
    assert seed.close_brackets(repaired) == repaired  # nothing left to close
    with pytest.raises(ValueError, match="closes nothing"):
        seed.unclosed_brackets("f(x))")
    row = seed.fault_does_not_parse()
    assert row["shown"] and "lines 12, 28" in row["seed"] and row["result"].endswith("2 lines added): compiles")


# --------------------------------------------------------------------------------------- (b) padding

@pytest.mark.parametrize("size, pools, handed", [
    (224, [(96, 26, 26), (256, 10, 10), (256, 1, 1)], (256,)),
    (227, [(96, 27, 27), (256, 11, 11), (256, 2, 2)], (1024,)),
])
def test_without_padding_the_maps_shrink_until_fc6_cannot_apply(seed_net, size, pools, handed):
    assert {m.padding for m in seed_net.modules() if isinstance(m, nn.Conv2d)} == {(0, 0)}
    trace = seed.trace_shapes(seed_net, size)
    assert list(trace["output"][trace["type"] == "MaxPool2d"]) == pools
    last = trace.iloc[-1]
    assert last["layer"] == "fc6" and last["input"] == handed and last["output"] is None
    assert f"(1x{handed[0]} and 9216x4096)" in last["error"]
    with pytest.raises(RuntimeError):
        with torch.no_grad():
            seed_net(torch.zeros(1, 3, size, size))


def test_the_corrected_network_stands_beside_the_seed(net):
    shapes = seed.seed_shapes(corrected=net)
    assert list(shapes.columns) == ["seed 224×224", "seed 227×227", "AlexNet() 224×224", "AlexNet() 227×227"]
    assert list(shapes.loc["pool5"]) == [(256, 1, 1), (256, 2, 2), (256, 6, 6), (256, 6, 6)]
    assert list(shapes.loc["fc6"])[:2] == ["fails: handed (256,)", "fails: handed (1024,)"]
    assert list(shapes.loc["fc8"]) == ["", "", (1000,), (1000,)]
    assert shapes.loc["conv1", "seed 224×224"] == (96, 54, 54)  # (224 − 11) / 4 + 1 floored


def test_the_padding_row(seed_net):
    row = seed.fault_no_padding(seed_net)
    assert row["shown"] and "pool5 256×1×1, fc6 handed 256 of 9216" in row["result"]
    assert "pool5 256×2×2, fc6 handed 1024 of 9216" in row["result"]


# ------------------------------------------------------------------------------- (c) to (e) the modules

def test_no_relu_no_dropout_so_the_classifier_is_affine(seed_net, net):
    row = seed.fault_no_relu_no_dropout(seed_net, net)
    assert row["shown"] and row["result"].startswith("0 ReLU, 0 Dropout")
    assert "the text claims ReLU and dropout" in row["seed"] and "7 ReLU, 2 Dropout" in row["paper"]


def test_lrn_follows_the_convolution_not_its_relu(seed_net, net):
    assert seed._before_lrn(seed_net) == ["Conv2d", "Conv2d"]
    assert seed._before_lrn(net) == ["ReLU", "ReLU"]
    row = seed.fault_lrn_before_relu(seed_net, net)
    assert row["shown"] and row["result"] == "seed conv1 → lrn1 → pool1; AlexNet() conv1 → relu1 → lrn1 → pool1"


def test_no_groups_so_no_towers(seed_net, net):
    assert [m.groups for m in seed_net.modules() if isinstance(m, nn.Conv2d)] == [1] * 5
    row = seed.fault_no_groups(seed_net, net)
    assert row["shown"] and "AlexNet() [1, 2, 1, 2, 2]" in row["result"] and row["result"].endswith("0 in AlexNet()")
    assert "conv parameters 3,747,200 vs 2,334,080" in row["result"]


@pytest.mark.parametrize("fault", [seed.fault_no_relu_no_dropout, seed.fault_lrn_before_relu, seed.fault_no_groups])
def test_the_module_checks_pass_the_corrected_network(net, fault):
    assert not fault(net, net)["shown"]  # each check can fail: AlexNet() in the seed's place has none


def test_the_padding_check_passes_the_corrected_network(net):
    assert not seed.fault_no_padding(net)["shown"]


# ------------------------------------------------------------------------------------ (f), (g) the text

def test_the_text_gives_beta_1_5_where_listing_and_paper_give_0_75(seed_net):
    assert seed.text_lrn() == dict(k=2.0, n=5, alpha=1e-4, beta=1.5, alpha_over_n=True)
    assert paper.SEED_LRN_BETA == seed.text_lrn()["beta"] != paper.LRN["beta"]
    row = seed.fault_text_beta(seed_net)
    assert row["shown"] and row["seed"] == "text β = 1.5; listing beta = 0.75"
    assert "a further 0.595" in row["result"]  # 2^-0.75 at small activity


def test_the_text_sums_with_alpha_over_n_where_the_paper_prints_alpha(seed_net):
    row = seed.fault_text_alpha(seed_net)
    assert row["shown"]
    assert row["result"].startswith("text 2e-05 per squared activity, printed 0.0001 (5×)")
    assert "LocalResponseNorm(alpha=0.0001)" in row["seed"]


def test_the_text_s_error_rates_agree_with_the_paper():
    numbers = seed.text_numbers()
    assert numbers["agree"].all() and list(numbers["text"]) == ["37.5% / 17.0%", "1.4% / 1.2%", "0.4% / 0.3%"]


# -------------------------------------------------------------------------------------------- the table

def test_check_seed_listing_shows_every_fault(net):
    faults = seed.check_seed_listing(corrected=net)
    assert list(faults.columns) == ["fault", "seed", "paper", "demonstrated_by", "result", "shown"]
    assert len(faults) == 7 and faults["shown"].all()
