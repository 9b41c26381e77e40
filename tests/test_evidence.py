"""The committed figures come from the evidence runs' result files (issue 16): drawn from results/, with the
results, seeds, budget and command in the manifest; missing results are reported, never drawn from elsewhere."""
from __future__ import annotations

import io
import json

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from alexnet_book import evidence, neighbours, relu_tanh, towers  # noqa: E402
from alexnet_book.commands import figures as figures_command  # noqa: E402

torch.set_num_threads(1)


def _fig1_result(layout):
    relu, tanh = [0.6, 0.4, 0.24], [0.8, 0.6, 0.5, 0.4, 0.3, 0.24]
    rows, epochs = [], []
    for seed in (0, 1, 2, 3, 4):
        for activation, curve in (("relu", relu), ("tanh", tanh)):
            rows += [dict(activation=activation, seed=seed, lr=0.004, epoch=e, train_error=err)
                     for e, err in enumerate(curve, start=1)]
        epochs.append(dict(seed=seed, relu=relu_tanh.epochs_to_error(relu), tanh=relu_tanh.epochs_to_error(tanh)))
    epochs = pd.DataFrame(epochs)
    epochs["ratio"] = epochs.tanh / epochs.relu
    tuning = pd.DataFrame([dict(activation="relu", lr=0.004, epochs_to_target=3.0, final_train_error=0.24,
                                epochs_run=3, capped=False)])
    return relu_tanh.ReluVsTanh(init="paper", target=0.25, lr={"relu": 0.004, "tanh": 0.002}, tuning=tuning,
                              curves=pd.DataFrame(rows), epochs=epochs, config_hashes=[], layout=layout)


def _specialisation_results(folder):
    """A results/specialisation_study/ as specialisation_evidence writes it, from constructed kernels."""
    g = torch.Generator().manual_seed(0)
    kernels, per_epoch, weights = [], [], {}
    for k in (16, 48):
        for seed in range(5):
            grey = torch.randn(k, 1, 5, 5, generator=g).expand(k, 3, 5, 5)
            colour = torch.randn(k, 3, 5, 5, generator=g)
            w = torch.cat([grey, colour])
            kernels.append(towers.kernel_table(w, kernels_per_tower=k, seed=seed).assign(
                tower=[1] * k + [2] * k))
            weights[f"k{k}_seed{seed}"] = w.numpy()
            for epoch in (0, 6, 12):
                row = towers.tower_specialisation(w, towers=2, n_permutations=100).as_row()
                per_epoch.append({"kernels_per_tower": k, "seed": seed, "epoch": epoch, **row})
    kernels = pd.concat(kernels, ignore_index=True)
    folder.mkdir(parents=True)
    kernels.to_csv(folder / "kernels.csv", index=False)
    pd.DataFrame(per_epoch).to_csv(folder / "per_epoch.csv", index=False)
    towers.pooled_summary(kernels, n_permutations=500).to_csv(folder / "pooled.csv", index=False)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **weights)
    (folder / "conv1_weights.npz").write_bytes(buffer.getvalue())
    (folder / "summary.json").write_text(json.dumps({"seeds": list(range(5))}))


def test_evidence_figures_are_drawn_from_results_with_their_provenance(tmp_path, capsys):
    results, out = tmp_path / "results", tmp_path / "figures"
    _fig1_result("18pct").save(results / "fig1_authors_18pct", complete=False, seeds_planned=[0, 1, 2, 3, 4, 5])
    _specialisation_results(results / "specialisation_study")
    names = evidence.draw_evidence(out, results, progress=True)
    said = capsys.readouterr().out
    assert set(names) == {"fig1_relu_vs_tanh", "fig3_specialisation_study", "fig3_conv1_filters_study"}
    assert "no results/fig1_full_paper_init" in said and "no results/fig4_study" in said  # reported, not drawn
    index = json.loads((out / "index.json").read_text())["figures"]
    fig1 = index["fig1_relu_vs_tanh"]
    assert fig1["evidence"]["results"] == ["results/fig1_authors_18pct"]
    assert fig1["evidence"]["seeds"] == {"fig1_authors_18pct": [0, 1, 2, 3, 4]}
    assert fig1["evidence"]["command"] == "alexnet-book figures --evidence"
    assert "2.0×" in fig1["caption"] and "partial: 5 of 6 seeds" in fig1["caption"]
    assert "tanh/ReLU on the 5 seed(s) with both curves: median 2.0× (2.0-2.0), not yet the result" in fig1["caption"]
    assert "nan" not in fig1["caption"]
    spec = index["fig3_specialisation_study"]
    assert spec["evidence"]["seeds"] == [0, 1, 2, 3, 4] and "pooled permutation p" in spec["caption"]
    assert "48 per tower" in spec["caption"] and "16 per tower" in spec["caption"]
    assert (out / "fig3_conv1_filters_study.png").stat().st_size > 0
    # constructed grey-vs-colour towers: the pooled test finds them
    pooled = pd.read_csv(tmp_path / "results" / "specialisation_study" / "pooled.csv")
    assert (pooled.p_pooled_chromatic < 0.01).all() and (pooled.p_pooled_grey < 0.01).all()
    assert (pooled.tower2_more_chromatic == 5).all()
    status = evidence.status(results).set_index("results")
    assert status.loc["results/fig1_authors_18pct", "present"]
    assert not status.loc["results/fig1_authors_18pct", "complete"]
    assert not status.loc["results/fig4_study", "present"]


def test_evidence_cli_draws_nothing_without_results(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(evidence, "results_dir", lambda path=None: tmp_path / "empty")
    assert figures_command.main(["--evidence", "--out", str(tmp_path / "figs")]) == 0
    assert "none (no results yet)" in capsys.readouterr().out
    assert not (tmp_path / "figs" / "index.json").exists()


def test_specialisation_evidence_cli_passes_kernels_per_tower(monkeypatch, capsys):
    seen = {}

    def fake(**kwargs):
        seen.update(kwargs)
        return {"pooled": pd.DataFrame({"kernels_per_tower": [48]})}

    monkeypatch.setattr(figures_command, "specialisation_evidence", fake)
    assert figures_command.main(["--specialisation-evidence", "quick", "--kernels-per-tower", "48", "--quiet"]) == 0
    assert seen["budget"] == "quick" and seen["kernels_per_tower"] == (48,)
    seen.clear()
    assert figures_command.main(["--specialisation-evidence", "--quiet"]) == 0
    assert seen["budget"] == "study" and "kernels_per_tower" not in seen  # the default plan: 48 then 16


def test_even_queries_cover_every_class():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    picked = neighbours._even_queries(labels, 30)
    assert len(picked) == 30 and torch.bincount(labels[picked]).tolist() == [10, 10, 10]
    with pytest.raises(StopIteration):
        next(iter([]))


def test_fig1_snapshot_reports_a_run_in_progress_without_a_ratio(tmp_path):
    """While the evidence run goes on, the snapshot reads the run folders: finished tuning picks ReLU's rate, the
    reported seeds at that rate are listed, tanh's unfinished tuning run is shown as far as it got."""
    from alexnet_book.runs import ResultsStore
    from alexnet_book.relu_tanh import fig1_config

    runs = tmp_path / "runs"

    def fake_run(activation, lr, seed, errors, finished, max_steps=None):
        epochs = {"relu": 45, "tanh": 90}[activation]
        cfg = fig1_config(activation, lr, seed, data="cifar10", limit=None, epochs=epochs, max_steps=max_steps,
                          stop_train_error=0.25, layout="18pct", out_dir=str(runs))
        folder = cfg.run_dir()
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps(__import__("dataclasses").asdict(cfg)))
        pd.DataFrame({"step": range(1, len(errors) + 1), "epoch": range(1, len(errors) + 1),
                      "train_error": errors}).to_csv(folder / "metrics.csv", index=False)
        if finished:
            ResultsStore(runs / "results.jsonl").add({"config_hash": cfg.hash(), "metrics": {}})

    fake_run("relu", 0.002, 100, [0.6, 0.4, 0.3, 0.24], True)
    fake_run("relu", 0.004, 100, [0.6, 0.35, 0.24], True)
    fake_run("relu", 0.008, 100, [0.7, 0.5, 0.4], True, max_steps=3 * 390)  # capped: could no longer win
    fake_run("relu", 0.004, 0, [0.6, 0.36, 0.24], True)
    fake_run("relu", 0.004, 1, [0.6, 0.4], False)  # still training
    fake_run("tanh", 0.002, 100, [0.8, 0.6, 0.5], False)
    out = evidence.fig1_snapshot("18pct", tmp_path / "results", out_dir=str(runs))
    assert "relu: rate 0.004 chosen on seed 100; seeds 0: median" in out["status"]
    assert "tanh: tuning on seed 100, none at 25% yet (0.002: 50.0% after 3 epochs (in progress))" in out["status"]
    back = relu_tanh.ReluVsTanh.load(tmp_path / "results" / "fig1_authors_18pct")
    assert back.epochs.seed.tolist() == [0]  # seed 1 is not finished
    assert set(back.curves.activation) == {"relu", "tanh"}  # the tanh tuning curve is shown as far as it got
    words = evidence.describe("fig1", tmp_path / "results")
    assert "0.008: not within 3 (stopped: could no longer win)" in words and "[partial: 0 of 5" in words
    names = evidence.draw_evidence(tmp_path / "figs", tmp_path / "results", progress=False)
    assert names == ["fig1_relu_vs_tanh"]
    caption = json.loads((tmp_path / "figs" / "index.json").read_text())["figures"]["fig1_relu_vs_tanh"]["caption"]
    assert "none at 25% yet" in caption and "tanh/ReLU =" not in caption
    # tanh reaches 25% at one rate while another is still being tried: the best so far, not a choice
    fake_run("tanh", 0.004, 100, [0.6, 0.4, 0.24], True)
    fake_run("tanh", 0.008, 100, [0.55, 0.38], False, max_steps=3 * 390)
    out = evidence.fig1_snapshot("18pct", tmp_path / "results", out_dir=str(runs))
    assert ("tanh: best so far 0.004 (2.9 epochs) on seed 100, still trying 0.002 (50.0% after 3 epochs), "
            "0.008 (38.0% after 2 epochs)") in out["status"]
    assert "0.008: not within 2 (still running)" in evidence.describe("fig1", tmp_path / "results")
    # a new machine: the runs folder is gone, the committed folder is not -- what it recorded as finished stays
    runs = tmp_path / "runs-new-machine"
    fake_run("tanh", 0.008, 100, [0.55, 0.38, 0.3], False, max_steps=3 * 390)
    out = evidence.fig1_snapshot("18pct", tmp_path / "results", out_dir=str(runs))
    assert "relu: rate 0.004 chosen on seed 100; seeds 0: median 2.92" in out["status"]
    assert "tanh: best so far 0.004 (2.9 epochs) on seed 100, still trying 0.008 (30.0% after 3 epochs)" \
        in out["status"]
    assert "0.002" not in out["status"]  # in progress on the old machine: not recorded, so not kept


def test_the_committed_figures_of_figs_1_3_4_are_evidence():
    """Every committed figure that reproduces Fig. 1, 3 or 4 was drawn by the evidence command from committed
    result files (issue 16): its manifest entry names them, and they are in the repository."""
    root = evidence.results_dir().parent
    index = json.loads((root / "figures" / "index.json").read_text())["figures"]
    paper_figures = {name: e for name, e in index.items() if e.get("paper_figure") in ("Fig. 1", "Fig. 3", "Fig. 4")}
    assert paper_figures, "no committed Fig. 1/3/4"
    for name, entry in paper_figures.items():
        assert "evidence" in entry, f"{name} was not drawn from the evidence results"
        assert entry["evidence"]["command"] == evidence.EVIDENCE_COMMAND
        for source in entry["evidence"]["results"]:
            assert (root / source).exists(), f"{name}: {source} is not in the repository"


def test_the_committed_evidence_names_runs_this_code_still_configures():
    """A refactor must not rename a run: the config hashes recorded beside the committed evidence (the towers over
    seeds, Fig. 4's network) are what today's study configuration hashes to, so their runs are found and reused."""
    from pathlib import Path

    from alexnet_book.towers_study import study_config

    root = Path(__file__).resolve().parent.parent / "results"
    final = pd.read_csv(root / "specialisation_study" / "final.csv")
    assert len(final) >= 10
    for row in final.itertuples():
        assert study_config(int(row.seed), int(row.kernels_per_tower)).hash() == row.config_hash
    fig4 = json.loads((root / "fig4_study" / "summary.json").read_text())
    assert study_config(fig4["seed"], fig4["kernels_per_tower"]).hash() == fig4["config_hash"]


def test_the_towers_figure_comes_from_the_most_trained_budget_present(tmp_path):
    """results/specialisation_quick (the quick recipe, where conv1 trains) wins over the study budget's folder,
    and the manifest says which budget and folder the committed Fig. 3 came from."""
    from alexnet_book.config import recipe
    from alexnet_book.towers_study import SPECIALISATION_BUDGETS, study_config

    quick = study_config(3, 48, "quick")
    assert (quick.limit, quick.epochs, quick.seed, quick.model_options["conv1_out"]) == (None, 10, 3, 96)
    assert study_config(0, 16, "quick").hash() == recipe("quick").hash()  # the notebooks' network, reused
    with pytest.raises(ValueError, match="budget"):
        study_config(0, 16, "long")
    results, out = tmp_path / "results", tmp_path / "figures"
    _specialisation_results(results / "specialisation_study")
    assert evidence.specialisation_budget(results) == "study"
    _specialisation_results(results / SPECIALISATION_BUDGETS["quick"]["folder"])
    assert evidence.specialisation_budget(results) == "quick"
    evidence.draw_evidence(out, results, progress=False)
    spec = json.loads((out / "index.json").read_text())["figures"]["fig3_specialisation_study"]
    assert spec["evidence"]["results"] == ["results/specialisation_quick"]
    assert "50,000" in spec["evidence"]["budget"]
    assert evidence.describe("fig3", results).startswith("results/specialisation_quick (the quick recipe")
    assert set(evidence.status(results).results) >= {"results/specialisation_study", "results/specialisation_quick"}


def test_specialisation_evidence_is_written_after_every_run_and_resumes_from_the_folder(monkeypatch, tmp_path):
    """A long towers run keeps each finished run in results/ (the runs folder may not outlive the machine), and a
    later call takes those runs from there untrained; the committed Fig. 3 waits until every planned run is in."""
    import alexnet_book.train as T
    from alexnet_book import towers_study
    from alexnet_book.towers import initial_network

    trained, stop_after = [], [None]

    def fake_train(cfg, **_):
        if stop_after[0] is not None and len(trained) == stop_after[0]:
            raise KeyboardInterrupt  # the machine went away mid-run
        trained.append((cfg.seed, cfg.model_options.get("conv1_out", 32)))
        return type("Result", (), {"model": initial_network(cfg), "reused": False, "metrics": {}})()

    monkeypatch.setattr(T, "train", fake_train)
    results = tmp_path / "results"
    kwargs = dict(seeds=(0, 1), kernels_per_tower=(16,), progress=False, budget="quick")
    stop_after[0] = 1
    with pytest.raises(KeyboardInterrupt):
        towers_study.specialisation_evidence(results, **kwargs)
    folder = results / "specialisation_quick"
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["runs_done"], summary["runs_planned"], summary["complete"]) == (1, 2, False)
    _specialisation_results(results / "specialisation_study")
    assert evidence.specialisation_budget(results) == "study"  # the partial quick budget is not drawn yet
    assert "1 of 2 runs measured so far" in evidence.describe("fig3", results)
    stop_after[0] = None
    out = towers_study.specialisation_evidence(results, **kwargs)
    assert trained == [(0, 32), (1, 32)]  # seed 0 was not trained again
    assert out["final"].source.tolist() == ["recorded", "trained"]
    assert json.loads((folder / "summary.json").read_text())["complete"]
    assert evidence.specialisation_budget(results) == "quick"
    # networks at their initialisation have nothing to specialise: the group is judged inconclusive, not negative
    assert pd.read_csv(folder / "pooled.csv").verdict.tolist() == ["inconclusive"]
    again = towers_study.specialisation_evidence(results, **kwargs)
    assert trained == [(0, 32), (1, 32)] and (again["final"].source == "recorded").all()
    pd.testing.assert_frame_equal(again["kernels"], out["kernels"])
    # a later plan of other kernels per tower (the CLI's --kernels-per-tower) keeps the runs already in the folder
    other = towers_study.specialisation_evidence(results, **{**kwargs, "seeds": (0,), "kernels_per_tower": (4,)})
    assert trained[-1] == (0, 8) and len(trained) == 3
    assert sorted(map(tuple, other["final"][["kernels_per_tower", "seed"]].values.tolist())) == [(4, 0), (16, 0), (16, 1)]
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["runs_done"], summary["runs_planned"], summary["runs_beyond_plan"]) == (1, 1, 2)
    assert summary["complete"] and summary["command"].endswith("quick --kernels-per-tower 4")
    # a group still being measured (4 per tower: seed 1 cut short) is left out of the figure; the complete one is drawn
    stop_after[0] = len(trained)
    with pytest.raises(KeyboardInterrupt):
        towers_study.specialisation_evidence(results, **{**kwargs, "kernels_per_tower": (16, 4)})
    assert not json.loads((folder / "summary.json").read_text())["complete"]
    assert evidence.specialisation_budget(results) == "quick" and evidence.complete_kernel_counts(folder) == [16]
    text = evidence.describe("fig3", results)
    assert "4 per tower: 1 of 2 seeds measured so far, not drawn" in text
    out = tmp_path / "figs"
    evidence.draw_evidence(out, results, progress=False)
    entry = json.loads((out / "index.json").read_text())["figures"]["fig3_specialisation_study"]
    assert "16 per tower, 2 seeds" in entry["caption"] and "4 per tower, 1 seeds" not in entry["caption"]
    assert "4 per tower: 1 of 2 seeds measured so far" in entry["caption"]
    # a plan that trains a new group before reaching the recorded ones keeps those in the folder from the first
    # write on: stopped after one new run, the folder still holds every earlier run
    stop_after[0] = len(trained) + 1
    with pytest.raises(KeyboardInterrupt):
        towers_study.specialisation_evidence(results, **{**kwargs, "kernels_per_tower": (8, 16)})
    held = pd.read_csv(folder / "final.csv")
    assert sorted(map(tuple, held[["kernels_per_tower", "seed"]].values.tolist())) == [
        (4, 0), (8, 0), (16, 0), (16, 1)]
