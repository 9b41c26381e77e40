"""The colour index and the two-tower specialisation statistics (Fig. 3, §6.1) on constructed kernels."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from alexnet_book.model import AlexNet, TorchvisionAlexNet, TwoDeviceAlexNet
from alexnet_book.towers import (GREY_THRESHOLD, SpecialisationTracker, chromatic_score, colour_index,
                                 conv1_kernels, grey_share, pooled_test, power, summarise_seeds,
                                 tower_specialisation)

torch.set_num_threads(1)


def grey_kernels(n, k=5, seed=0):
    """Kernels whose R, G and B weights are equal at every pixel: luminance only."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, k, k, generator=g).expand(n, 3, k, k).clone()


def colour_kernels(n, k=5, seed=1):
    """Kernels whose R, G, B weights sum to zero at every pixel: purely colour-opponent."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, 3, k, k, generator=g)
    return w - w.mean(dim=1, keepdim=True)


def mixed_kernels(n, colour_share, k=5, seed=2):
    """Grey kernels plus a colour-opponent part of a given amplitude."""
    return grey_kernels(n, k, seed) + colour_share * colour_kernels(n, k, seed + 10)


def test_colour_index_extremes():
    assert torch.allclose(colour_index(grey_kernels(8)), torch.zeros(8), atol=1e-6)
    assert torch.allclose(colour_index(colour_kernels(8)), torch.ones(8), atol=1e-6)
    # a uniform red blob is colour: after removing its mean it is (2/3, -1/3, -1/3), sum zero per pixel
    red = torch.zeros(3, 5, 5)
    red[0] = 1.0
    assert colour_index(red).item() == pytest.approx(1.0, abs=1e-6)
    # a uniform offset is brightness: removing the mean leaves nothing, the index is 0
    assert colour_index(torch.ones(3, 5, 5)).item() == 0.0


def test_colour_index_of_random_kernels_is_two_thirds():
    w = torch.randn(4000, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    assert colour_index(w).mean().item() == pytest.approx(2 / 3, abs=0.01)


def test_colour_index_is_monotone_in_colour_share_and_scale_free():
    shares = [0.0, 0.3, 1.0, 3.0]
    means = [colour_index(mixed_kernels(32, s)).mean().item() for s in shares]
    assert means == sorted(means) and means[0] < 1e-6 and means[-1] > 0.8
    w = mixed_kernels(6, 0.5)
    assert torch.allclose(colour_index(w), colour_index(7.5 * w + 3.0), atol=1e-5)


def _blob(k=5, sigma=1.0):
    r = torch.arange(k, dtype=torch.float32) - (k - 1) / 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    return torch.exp(-(xx ** 2 + yy ** 2) / (2 * sigma ** 2)), xx


def test_chromatic_score_separates_grey_single_hue_opponent_and_noise():
    blob, xx = _blob()
    grey_edge = torch.stack([torch.sign(xx) * blob] * 3)                  # a luminance edge: colour-agnostic
    red_blob = torch.stack([blob, 0 * blob, 0 * blob])                    # one hue: colour-specific
    yellow_blob = torch.stack([blob, blob, 0 * blob])
    opponent = torch.stack([blob, -blob, 0 * blob])                       # red vs green
    noise = torch.randn(2000, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    scores = {name: chromatic_score(w).item() for name, w in
              [("grey", grey_edge), ("red", red_blob), ("yellow", yellow_blob), ("opponent", opponent)]}
    noise_scores = chromatic_score(noise)
    assert scores["grey"] == pytest.approx(0.0, abs=1e-6) and scores["opponent"] == pytest.approx(1.0, abs=1e-6)
    assert scores["red"] > 0.75 and scores["yellow"] > 0.45      # a single hue scores high ...
    assert 0.1 < noise_scores.mean().item() < 0.25               # ... noise low-to-middling ...
    assert (noise_scores < scores["yellow"]).float().mean() > 0.99  # ... and below a single-hue blob
    pale = torch.stack([blob, 0.8 * blob, 0.8 * blob])           # a washed-out hue is nearly grey
    assert chromatic_score(pale).item() < 0.05
    # the colour index cannot tell these apart: a red blob and noise both sit near 2/3 or above
    assert colour_index(red_blob).item() > colour_index(noise).mean().item()
    assert abs(colour_index(noise).mean().item() - 2 / 3) < 0.02
    # scale-free and offset-free, like the colour index
    assert chromatic_score(5 * red_blob + 2).item() == pytest.approx(scores["red"], abs=1e-5)


def test_random_kernels_are_almost_never_near_grey():
    for k in (5, 11):
        w = torch.randn(5000, 3, k, k, generator=torch.Generator().manual_seed(k))
        assert grey_share(colour_index(w).numpy()) < 1e-3
    assert grey_share(colour_index(grey_kernels(10)).numpy()) == 1.0
    assert grey_share([0.1, 0.2, GREY_THRESHOLD, 0.9]) == 0.5


def test_grey_tower_against_hue_tower_is_found_by_both_measures():
    blob, _ = _blob()
    g = torch.Generator().manual_seed(3)
    saturated = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1]], dtype=torch.float32)
    hues = saturated.repeat(4, 1)[:, :, None, None]
    hue_blobs = hues * blob + 0.05 * torch.randn(24, 3, 5, 5, generator=g)   # one hue each, a little noise
    result = tower_specialisation(torch.cat([grey_kernels(24), hue_blobs]), towers=2, n_permutations=2000)
    assert result.significant and result.colour_tower == 2
    assert result.grey == (1.0, 0.0) and result.p_grey < 0.01
    assert result.chromatic_mean[1] > 0.5 > result.chromatic_mean[0]


def test_pooled_test_is_blind_to_tower_numbering_and_calibrated():
    rng = np.random.default_rng(0)
    pairs = [(rng.normal(0, 1, 16), rng.normal(0.8, 1, 16)) for _ in range(5)]
    flipped = [(b, a) if i % 2 else (a, b) for i, (a, b) in enumerate(pairs)]  # GPUs renumbered in some runs
    assert pooled_test(pairs, n_permutations=2000) == pytest.approx(pooled_test(flipped, n_permutations=2000),
                                                                    abs=0.01)
    assert pooled_test(pairs, n_permutations=2000) < 0.01
    # under the null the p-values are roughly uniform: about 5% below 0.05
    ps = [pooled_test([(rng.normal(0, 1, 16), rng.normal(0, 1, 16)) for _ in range(3)], n_permutations=200,
                      seed=i) for i in range(200)]
    assert 0.01 <= np.mean(np.array(ps) < 0.05) <= 0.11


def test_power_grows_with_effect_kernels_and_runs():
    at = dict(simulations=150, n_permutations=200)
    assert power(16, 0.0, **at) < 0.12                     # the level, within Monte Carlo error
    assert power(16, 0.5, **at) < power(48, 0.5, **at) < power(16, 0.5, runs=5, **at) + 0.2
    assert power(48, 1.5, **at) > 0.95
    assert power(16, 0.5, runs=5, **at) > power(16, 0.5, **at)


def test_grey_vs_colour_towers_are_told_apart_and_order_swap_flips_sign():
    w = torch.cat([grey_kernels(24), colour_kernels(24)])
    result = tower_specialisation(w, towers=2, n_permutations=2000)
    assert result.significant and result.p_permutation < 0.01
    assert result.cliffs_delta == pytest.approx(1.0)  # every tower-2 kernel more colourful than every tower-1
    assert result.colour_tower == 2 and result.sign == 1 and result.cohens_d > 2
    swapped = tower_specialisation(torch.cat([colour_kernels(24), grey_kernels(24)]), towers=2, n_permutations=2000)
    assert swapped.colour_tower == 1 and swapped.sign == -1
    assert swapped.effect == pytest.approx(result.effect)
    assert swapped.cohens_d == pytest.approx(-result.cohens_d)
    assert swapped.p_mann_whitney == pytest.approx(result.p_mann_whitney)


def test_partial_specialisation_statistic_flips_exactly_when_towers_swap():
    a, b = mixed_kernels(20, 0.4, seed=3), mixed_kernels(20, 0.8, seed=4)
    ab = tower_specialisation(torch.cat([a, b]), towers=2, n_permutations=500)
    ba = tower_specialisation(torch.cat([b, a]), towers=2, n_permutations=500)
    assert 0 < ab.effect < 1 and ab.cliffs_delta == pytest.approx(-ba.cliffs_delta)
    assert ab.mann_whitney_u + ba.mann_whitney_u == pytest.approx(20 * 20)


def test_identical_towers_show_no_difference():
    a = mixed_kernels(24, 0.6, seed=5)
    result = tower_specialisation(torch.cat([a, a.clone()]), towers=2, n_permutations=2000)
    assert result.cliffs_delta == 0 and not result.significant and result.colour_tower is None
    assert result.p_permutation > 0.5
    # two random halves drawn alike: not significant either (for this fixed seed)
    w = torch.randn(96, 3, 11, 11, generator=torch.Generator().manual_seed(7))
    assert not tower_specialisation(w, towers=2, n_permutations=1000).significant


def test_conv1_kernels_for_every_network():
    two = AlexNet(10, scale="scaled")
    w, towers = conv1_kernels(two)
    assert w.shape == (32, 3, 5, 5) and towers == 2
    w, towers = conv1_kernels(AlexNet(10, scale="scaled", towers=1))
    assert w.shape == (16, 3, 5, 5) and towers == 1
    w, towers = conv1_kernels(TorchvisionAlexNet(10))
    assert w.shape == (64, 3, 11, 11) and towers == 1
    assert torch.equal(conv1_kernels(two.state_dict())[0], two.features.conv1.weight.detach())
    with pytest.raises(ValueError, match="shape"):
        conv1_kernels(torch.zeros(4, 1, 3, 3))


def test_conv1_kernels_of_the_two_device_network():
    two = AlexNet(10, scale="scaled")
    try:
        split = TwoDeviceAlexNet(10, scale="scaled", devices=("cpu", "cpu"))
    except TypeError as err:  # model.py's constructor, not this module
        pytest.skip(f"TwoDeviceAlexNet cannot be built here: {err}")
    split.load_grouped_state_dict(two.state_dict())
    w2, towers = conv1_kernels(split)
    assert towers == 2 and torch.equal(w2, two.features.conv1.weight.detach())


def test_one_tower_network_needs_an_explicit_control_split():
    net = AlexNet(10, scale="scaled", towers=1)
    with pytest.raises(ValueError, match="one tower"):
        tower_specialisation(net)
    assert tower_specialisation(net, towers=2, n_permutations=200).median[0] == pytest.approx(2 / 3, abs=0.1)


def test_tracker_records_one_row_per_event_and_summary():
    net = AlexNet(10, scale="scaled")
    tracker = SpecialisationTracker(model=net, n_permutations=200, extra={"seed": 3})
    tracker({"epoch": 1, "step": 10})
    with torch.no_grad():  # make tower 2 pure colour: the tracker must see it in the next epoch
        net.features.conv1.weight[16:] = colour_kernels(16)
        net.features.conv1.weight[:16] = grey_kernels(16)
    tracker({"epoch": 2, "step": 20, "model": net})
    table = tracker.table()
    assert list(table.epoch) == [1, 2] and set(table.seed) == {3}
    assert table.effect.iloc[1] == pytest.approx(1.0) and table.colour_tower.iloc[1] == 2
    final = table.assign(colour_tower=[None, 2])
    summary = summarise_seeds(final)
    assert summary["runs"] == 2 and summary["colour_towers"][1] == 2
    assert np.isclose(summary["median_effect"], table.effect.median())


def test_initial_network_is_where_train_starts(tmp_path):
    """Epoch 0 of the record must be the very network train() starts from (a zero learning rate keeps it)."""
    from alexnet_book.figure_networks import towers_config
    from alexnet_book.towers import initial_network
    from alexnet_book.train import train

    config = towers_config("smoke", lr=0.0, max_steps=1, out_dir=str(tmp_path), seed=3)
    start = initial_network(config).features.conv1.weight.detach()
    state = torch.get_rng_state()
    initial_network(config)
    assert torch.equal(state, torch.get_rng_state())  # the global generator is left alone
    trained = train(config, progress=False).model.features.conv1.weight.detach().cpu()
    assert torch.equal(start, trained)


def test_specialisation_verdict_needs_structure_a_large_effect_or_the_power_to_rule_one_out():
    """Fig. 3's verdict from constructed conv1 layers: one grey tower and one colour tower agree; two mixed towers
    alike disagree when the test had the power; kernels still at their random initialisation say nothing."""
    from alexnet_book import towers

    g = torch.Generator().manual_seed(0)

    def grey(n):  # luminance edges: R = G = B
        return torch.randn(n, 1, 5, 5, generator=g).expand(n, 3, 5, 5).clone()

    def hue(n):  # single-hue blobs: one channel
        w = torch.zeros(n, 3, 5, 5)
        for i in range(n):
            w[i, i % 3] = torch.randn(5, 5, generator=g).abs()
        return w

    def table(make_tower1, make_tower2, seeds=5, k=16):
        rows = [towers.kernel_table(torch.cat([make_tower1(k), make_tower2(k)]), kernels_per_tower=k, seed=s)
                .assign(tower=[1] * k + [2] * k) for s in range(seeds)]
        import pandas as pd
        return towers.pooled_summary(pd.concat(rows, ignore_index=True), n_permutations=500).iloc[0].to_dict()

    def mixed(n):
        return torch.cat([grey(n // 2), hue(n - n // 2)])

    split = table(grey, hue)
    assert split["structured_share"] > 0.9 and split["median_effect"] >= towers.LARGE_EFFECT
    assert towers.specialisation_verdict(split, power_large=0.98) == "agrees"
    alike = table(mixed, mixed)
    assert alike["structured_share"] > 0.9
    assert towers.specialisation_verdict(alike, power_large=0.98) == "disagrees"
    assert towers.specialisation_verdict(alike, power_large=0.55) == "inconclusive"  # one run of 16: too weak
    untrained = table(lambda n: torch.randn(n, 3, 5, 5, generator=g), lambda n: torch.randn(n, 3, 5, 5, generator=g))
    assert untrained["structured_share"] < towers.MIN_STRUCTURED_SHARE
    assert towers.specialisation_verdict(untrained, power_large=1.0) == "inconclusive"
    # the same split with the towers' numbering swapped in some runs is still found ("modulo a renumbering")
    rows = []
    import pandas as pd
    for s in range(5):
        a, b = (grey, hue) if s % 2 else (hue, grey)
        rows.append(towers.kernel_table(torch.cat([a(16), b(16)]), kernels_per_tower=16, seed=s)
                    .assign(tower=[1] * 16 + [2] * 16))
    swapped = towers.pooled_summary(pd.concat(rows, ignore_index=True), n_permutations=500).iloc[0].to_dict()
    assert towers.specialisation_verdict(swapped, power_large=0.98) == "agrees"
