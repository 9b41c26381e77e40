"""The ablation table: claims as data, the runner (reuse, resume, seeds), the exports, Tables 1 and 2, the CLI."""
from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from alexnet_book import ablations as ab
from alexnet_book import paper
from alexnet_book.runs import ResultsStore

torch.set_num_threads(1)

# What each change costs in the fake world, in error fractions: a negative delta of −100·x for the paper's choice.
PENALTY = {("activation", "tanh"): 0.05, ("towers", 1): 0.017, ("lrn", None): 0.014, ("lrn", "printed"): -0.003,
           ("lrn", "caffe"): 0.002, ("lrn_beta", 1.5): 0.001, ("pool", "non-overlapping"): 0.004,
           ("dropout", 0.0): 0.02, ("remove", "conv3"): 0.021, ("remove", "conv4"): 0.019}


def fake_errors(config) -> tuple[float, float]:
    top1 = 0.30 + 0.002 * config.seed
    for key, value in config.model_options.items():
        top1 += PENALTY.get((key, value), 0.0)
    top1 += 0.0 if config.pca_colour else 0.011
    top1 += 0.0 if config.crops_flips else 0.08
    top1 += 0.0 if config.weight_decay else 0.006
    return top1, top1 / 3


class FakeTrain:
    """train.train's contract in miniature: reuses a finished run from the store by config hash."""

    def __init__(self, fail_at: int | None = None):
        self.trained, self.calls, self.fail_at = [], 0, fail_at

    def __call__(self, config, *, progress=True, store=None, **kwargs):
        self.calls += 1
        row = store.find(config.hash()) if store is not None else None
        if row is not None:
            return SimpleNamespace(config=config, metrics=row["metrics"], reused=True)
        if self.fail_at is not None and self.calls == self.fail_at:
            raise KeyboardInterrupt
        top1, top5 = fake_errors(config)
        metrics = dict(val_top1_error=top1, val_top5_error=top5, val_top1_error_10crop=top1 - 0.015,
                       val_top5_error_10crop=top5 - 0.013, wall_s=1.0)
        self.trained.append(config.hash())
        if store is not None:
            store.add(dict(config_hash=config.hash(), config=dataclasses.asdict(config), data=config.data,
                           seed=config.seed, metrics=metrics, wall_s=1.0))
        return SimpleNamespace(config=config, metrics=metrics, reused=False)


def test_every_claim_of_the_paper_has_an_ablation_and_its_numbers_come_from_paper_py():
    covered = {a.claim for a in ab.ABLATIONS}
    assert {c.name for c in paper.CLAIMS} <= covered
    for a in ab.ABLATIONS:
        if a.claim:
            assert a.claim in paper.CLAIM
            assert a.paper_top1 == paper.CLAIM[a.claim].top1 and a.paper_top5 == paper.CLAIM[a.claim].top5
        else:
            assert a.paper_words, f"{a.name} needs the paper's words"
    # the list: LRN convention and β, weight decay, both middle conv layers, 10 crops
    for name in ("lrn_printed", "lrn_caffe", "lrn_beta", "weight_decay", "remove_conv3", "remove_conv4", "ten_crop"):
        assert name in ab.ABLATION
    assert ab.ABLATION["lrn_beta"].change == {"model_options": {"lrn_beta": paper.SEED_LRN_BETA}}
    # claims that state a number state the paper's sign: its choice lowers error
    assert all(a.paper_top1 < 0 for a in ab.ABLATIONS if a.paper_top1 is not None)


def test_select_by_name_or_claim_and_reject_unknown():
    assert [a.name for a in ab.select("lrn,dropout")] == ["lrn", "dropout"]
    assert [a.name for a in ab.select(["middle_conv"])] == ["remove_conv3", "remove_conv4"]
    with pytest.raises(ValueError, match="unknown ablation 'lrm'"):
        ab.select("lrm")
    with pytest.raises(ValueError, match="no ablation selected"):
        ab.select([])


def test_plan_changes_exactly_one_thing_per_variant_and_every_variant_builds():
    from alexnet_book.model import build_model

    runs = ab.plan_runs("synthetic", "scaled", 1, None, (0, 1), "cpu", None, 32)
    names = [name for name, seed, _ in runs if seed == 0]
    assert names[0] == ab.BASELINE and "ten_crop" not in names  # 10 crops reuse the baseline run
    assert len(runs) == 2 * (len(ab.ABLATIONS))  # baseline + 13 trained variants, per seed
    assert len({c.hash() for _, _, c in runs}) == len(runs)  # every run distinct
    base = runs[0][2]
    assert base.model_options == {} and base.ten_crop  # the paper's recipe, as train's defaults
    lrn = next(c for n, s, c in runs if n == "lrn" and s == 0)
    assert lrn.model_options == {"lrn": None} and not lrn.ten_crop
    assert dataclasses.replace(lrn, model_options={}, ten_crop=True) == base
    wd = next(c for n, s, c in runs if n == "weight_decay")
    assert wd.weight_decay == 0.0 and base.weight_decay == paper.RECIPE["weight_decay"]
    x = torch.zeros(2, 3, 32, 32)
    for name, seed, config in runs[: len(runs) // 2]:
        model = build_model(config.model, num_classes=10, scale="scaled", **config.model_options)
        assert model(x).shape == (2, 10), name


def test_plan_rejects_bad_budgets():
    with pytest.raises(ValueError, match="budget_epochs"):
        ab.plan_runs("synthetic", "scaled", 0, None, (0,))
    with pytest.raises(ValueError, match="budget_steps"):
        ab.plan_runs("synthetic", "scaled", 1, -3, (0,))
    with pytest.raises(ValueError, match="seeds"):
        ab.plan_runs("synthetic", "scaled", 1, None, ())


def test_runner_measures_deltas_with_the_papers_sign_convention(tmp_path):
    store = ResultsStore(tmp_path / "results.jsonl")
    fake, updates = FakeTrain(), []
    table = ab.run_ablations("synthetic", "scaled", 1, None, seeds=(0, 1), device="cpu", limit=32, store=store,
                             progress=False, on_update=updates.append, train_fn=fake)
    row = table.set_index("ablation")
    assert math.isclose(row.loc["lrn", "measured_top1"], -1.4, abs_tol=1e-9)  # error(with LRN) − error(without)
    assert math.isclose(row.loc["lrn", "measured_top5"], -1.4 / 3, abs_tol=1e-9)
    assert math.isclose(row.loc["lrn", "measured_top1_std"], 0.0, abs_tol=1e-9)
    assert row.loc["lrn", "n"] == 2 and row.loc["lrn", "sign_agrees"] is True
    assert row.loc["lrn", "paper_top1"] == paper.CLAIM["lrn"].top1
    assert math.isclose(row.loc["crops_flips", "measured_top1"], -8.0, abs_tol=1e-9)
    assert math.isclose(row.loc["ten_crop", "measured_top1"], -1.5, abs_tol=1e-9)  # from the baseline's two evals
    assert row.loc["lrn_printed", "measured_top1"] > 0 and row.loc["lrn_printed", "sign_agrees"] is None
    assert list(table.columns) == list(ab.COLUMNS)
    assert (table["data"] == "synthetic").all() and (table["budget"] == "1 epoch, 32 images/split").all()
    # one update per finished run, the table filling in
    assert len(updates) == len(fake.trained) == 2 * len(ab.ABLATIONS)
    first = updates[0].set_index("ablation")["n"]  # after the first baseline only the 10-crop row can be measured
    assert first["ten_crop"] == 1 and first.drop("ten_crop").sum() == 0
    assert updates[-1]["n"].sum() == 2 * len(ab.ABLATIONS)


def test_std_over_seeds_and_a_wrong_sign_is_flagged(tmp_path):
    store = ResultsStore(tmp_path / "results.jsonl")

    def train_fn(config, **kw):  # no LRN "helps" at this budget in seed 0 and hurts in seed 1
        top1 = 0.3 + (0.01 if config.model_options.get("lrn", "authors") is None and config.seed == 1 else 0.0)
        top1 -= 0.03 if config.model_options.get("lrn", "authors") is None and config.seed == 0 else 0.0
        return SimpleNamespace(metrics=dict(val_top1_error=top1, val_top5_error=0.0), reused=False)

    table = ab.run_ablations("synthetic", "scaled", 1, seeds=(0, 1), ablations="lrn", store=store,
                             progress=False, train_fn=train_fn)
    (row,) = table.to_dict("records")
    assert math.isclose(row["measured_top1"], 1.0, abs_tol=1e-9)  # mean of +3 and −1
    assert math.isclose(row["measured_top1_std"], math.sqrt(8), abs_tol=1e-9)
    assert row["measure"] == "val" and math.isclose(row["measured_claim"], 1.0, abs_tol=1e-9)
    assert row["sign_agrees"] is False and row["n"] == 2


def test_claims_about_training_error_or_overfitting_are_judged_on_that_measure(tmp_path):
    """Weight decay "reduces the model's training error" (§5); dropout and crops fight overfitting (§4): the
    sign is judged on training error and on the val − train gap, not on validation error."""
    assert ab.ABLATION["weight_decay"].measure == "train" and ab.ABLATION["relu_vs_tanh"].measure == "train"
    assert ab.ABLATION["dropout"].measure == "gap" and ab.ABLATION["crops_flips"].measure == "gap"
    assert ab.ABLATION["weight_decay"].paper_words == paper.CLAIM["weight_decay"].other
    store = ResultsStore(tmp_path / "results.jsonl")

    def train_fn(config, **kw):
        val, train = 0.30, 0.20  # the baseline: gap 10 points
        if config.weight_decay == 0.0:
            val, train = 0.29, 0.25  # better on validation, worse in training: the claim still holds
        if config.model_options.get("dropout") == 0.0:
            val, train = 0.28, 0.05  # better on validation at this budget, but overfits: gap 23 points
        return SimpleNamespace(metrics=dict(val_top1_error=val, val_top5_error=0.1, train_error=train),
                               reused=False)

    table = ab.run_ablations("synthetic", "scaled", 1, ablations="weight_decay,dropout", store=store,
                             progress=False, train_fn=train_fn).set_index("ablation")
    assert math.isclose(table.loc["weight_decay", "measured_top1"], 1.0, abs_tol=1e-9)  # worse on val ...
    assert math.isclose(table.loc["weight_decay", "measured_claim"], -5.0, abs_tol=1e-9)  # ... lower train error
    assert table.loc["weight_decay", "sign_agrees"] is True
    assert math.isclose(table.loc["dropout", "measured_top1"], 2.0, abs_tol=1e-9)
    assert math.isclose(table.loc["dropout", "measured_claim"], 10.0 - 23.0, abs_tol=1e-9)
    assert table.loc["dropout", "sign_agrees"] is True
    shown = ab.display_table(table.reset_index()).set_index("ablation")
    assert shown.loc["dropout", "sign judged on"] == "val − train error"
    assert shown.loc["dropout", "measured Δ there"] == "−13.0"


def test_an_overfitting_claim_is_untestable_where_nothing_overfits(tmp_path):
    """Underfitting networks (training error above validation error, as after 2 epochs with dropout on) cannot
    show that dropout prevents overfitting: the sign is left open, and the table says why."""
    def train_fn(config, **kw):
        val, train = (0.35, 0.40) if config.model_options.get("dropout") == 0.0 else (0.44, 0.52)
        return SimpleNamespace(metrics=dict(val_top1_error=val, val_top5_error=0.1, train_error=train),
                               reused=False)

    table = ab.run_ablations("synthetic", "scaled", 1, ablations="dropout", store=ResultsStore(tmp_path / "r.jsonl"),
                             progress=False, train_fn=train_fn)
    (row,) = table.to_dict("records")
    assert math.isclose(row["measured_claim"], -8.0 - -5.0, abs_tol=1e-9) and row["sign_agrees"] is None
    assert ab.display_table(table)["sign agrees"].tolist() == ["untestable: no overfitting"]


def test_an_interrupted_table_picks_up_where_it_stopped(tmp_path):
    store = ResultsStore(tmp_path / "results.jsonl")
    first = FakeTrain(fail_at=4)
    with pytest.raises(KeyboardInterrupt):
        ab.run_ablations("synthetic", "scaled", 1, ablations="lrn,dropout,pca_colour,ten_crop", store=store,
                         progress=False, train_fn=first)
    assert len(first.trained) == 3
    runs = ab.plan_runs("synthetic", "scaled", 1, None, (0,), ablations="lrn,dropout,pca_colour,ten_crop")
    assert len(ab.cached_results(runs, store)) == 3  # the finished ones are in the store
    second = FakeTrain()
    table = ab.run_ablations("synthetic", "scaled", 1, ablations="lrn,dropout,pca_colour,ten_crop", store=store,
                             progress=False, train_fn=second)
    assert len(second.trained) == 1 and second.calls == 1  # only the interrupted run is trained again
    assert (table["n"] == 1).all()
    assert table.attrs["runs"] == 4 and table.attrs["runs_reused"] == 3 and table.attrs["train_wall_s"] == 4.0


def test_csv_round_trip_carries_machine_date_and_command(tmp_path):
    store = ResultsStore(tmp_path / "results.jsonl")
    table = ab.run_ablations("synthetic", "scaled", 1, ablations="lrn,lrn_beta,ten_crop", store=store,
                             progress=False, train_fn=FakeTrain())
    path = ab.save_csv(table, tmp_path / "t.csv", command="alexnet-book ablate --only lrn", configuration={"x": 1},
                       wall_s=12.3)
    text = path.read_text()
    for key in ("# command: alexnet-book ablate --only lrn", "# machine: ", "# date: ", '# configuration: {"x": 1}',
                "# wall_s: 12", "# runs: 3", "# runs_reused: 0", "# train_wall_s: 3.0"):
        assert key in text
    back = ab.load_csv(path)
    assert back.attrs["command"] == "alexnet-book ablate --only lrn"
    assert list(back["ablation"]) == ["lrn", "lrn_beta", "ten_crop"]
    assert back["measured_top1"].tolist() == pytest.approx(table["measured_top1"].tolist())
    assert back.loc[0, "sign_agrees"] is True and back.loc[1, "sign_agrees"] is None
    with pytest.raises(FileNotFoundError, match="alexnet-book ablate"):
        ab.load_csv(tmp_path / "missing.csv")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="lacks columns"):
        ab.load_csv(tmp_path / "bad.csv")


def test_markdown_latex_and_figure(tmp_path, monkeypatch):
    monkeypatch.setenv("ALEXNET_BOOK_FIGURES", str(tmp_path / "figures"))
    store = ResultsStore(tmp_path / "results.jsonl")
    table = ab.run_ablations("synthetic", "scaled", 1, ablations="lrn,relu_vs_tanh,remove_conv3", store=store,
                             progress=False, train_fn=FakeTrain())
    md = ab.to_markdown(table)
    lines = md.strip().splitlines()
    assert len(lines) == 2 + 3 and lines[0].startswith("| ablation |")
    assert "−1.4 / −1.2" in md and "| −1.4 |" in md  # the paper's and the measured delta for LRN
    assert "6x faster" in md  # the paper's words where it gives no delta
    tex = ab.to_latex(table)
    assert r"\begin{tabular}" in tex and r"relu\_vs\_tanh" in tex and r"\S{}3.3" in tex
    assert tex.count(r"\\") == 1 + 3
    paths = ab.export(table, tmp_path / "out" / "abl.csv", command="x")
    names = {p.name for p in paths}
    assert {"abl.csv", "abl.md", "abl.tex", "ablations_abl.png", "ablations_abl.svg"} <= names
    paths = ab.export(table, tmp_path / "out" / "ablations_quick.csv", command="x")
    assert "ablations_quick.png" in {p.name for p in paths}  # not ablations_ablations_quick
    index = json.loads((tmp_path / "figures" / "index.json").read_text())
    assert {"ablations_abl", "ablations_quick"} <= set(index["figures"])


def test_paper_tables_hold_the_papers_numbers_reproductions_and_your_runs(tmp_path):
    from alexnet_book.train import TrainConfig

    store = ResultsStore(tmp_path / "results.jsonl")
    base = TrainConfig(data="cifar10", scale="scaled", epochs=3)
    variant = ab.variant_config(base, ab.ABLATION["lrn"])
    for config, top1 in ((base, 0.25), (variant, 0.27)):
        store.add(dict(config_hash=config.hash(), config=dataclasses.asdict(config), data="cifar10", seed=0,
                       metrics=dict(val_top1_error=top1, val_top5_error=0.02, val_top1_error_10crop=top1 - 0.01,
                                    val_top5_error_10crop=0.015)))
    tables = ab.paper_tables(store)
    t1, t2 = tables["table1"], tables["table2"]
    paper1 = t1[t1.source == "paper"]
    assert paper1[["top-1 (%)", "top-5 (%)"]].loc[paper1.model == "CNN"].values.tolist() == [[37.5, 17.0]]
    assert [m for m, *_ in paper.TABLE1] == [m for m in paper1.model if "10-patch" not in m]
    assert len(t2[t2.source == "paper"]) == len(paper.TABLE2)
    assert len(t1[t1.source == "reproduction"]) + len(t2[t2.source == "reproduction"]) == len(paper.REPRODUCTIONS)
    mine1, mine2 = t1[t1.source == "your run"], t2[t2.source == "your run"]
    assert len(mine1) == len(mine2) == 1  # only the paper's recipe, not the LRN-less variant
    assert mine2["top-1 val (%)"].tolist() == [25.0] and mine1["top-1 (%)"].tolist() == [24.0]
    assert len(ab.paper_tables(store, runs="all")["table2"].query("source == 'your run'")) == 2
    assert len(ab.paper_tables(tmp_path / "none.jsonl")["table1"]) == len(paper.TABLE1) + 1 + 1


def test_cli_help_list_and_a_run_writing_the_csv(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_:
        ab.cli_main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for option in ("--quick", "--full", "--smoke", "--data", "--scale", "--epochs", "--steps", "--limit", "--seeds",
                   "--only", "--device", "--store", "--out", "--list"):
        assert option in text
    assert ab.cli_main(["--list"]) == 0
    assert "two_towers" in capsys.readouterr().out

    import alexnet_book.train as train_module

    monkeypatch.setattr(train_module, "train", FakeTrain())
    monkeypatch.setenv("ALEXNET_BOOK_FIGURES", str(tmp_path / "figures"))
    out = tmp_path / "results" / "abl.csv"
    code = ab.cli_main(["--smoke", "--only", "lrn,dropout", "--seeds", "0", "1", "--store",
                        str(tmp_path / "r.jsonl"), "--out", str(out), "--no-progress"])
    assert code == 0
    table = ab.load_csv(out)
    assert table.attrs["command"].startswith("alexnet-book ablate --smoke --only lrn,dropout")
    assert list(table["n"]) == [2, 2]
    assert ab.cli_main(["--only", "nonsense", "--store", str(tmp_path / "r.jsonl")]) == 2
    assert "unknown ablation 'nonsense'" in capsys.readouterr().err


def test_the_real_trainer_runs_a_tiny_table_on_synthetic_data(tmp_path, monkeypatch):
    """The whole path with train.train: two variants, two steps each, on the synthetic set; then reused."""
    monkeypatch.setenv("ALEXNET_BOOK_DATA", str(tmp_path / "data"))
    store = ResultsStore(tmp_path / "results.jsonl")
    kwargs = dict(data="synthetic", scale="scaled", budget_epochs=1, budget_steps=2, seeds=(0,), device="cpu",
                  ablations="lrn,ten_crop", limit=40, store=store, progress=False,
                  base={"out_dir": str(tmp_path / "runs"), "batch_size": 8})
    table = ab.run_ablations(**kwargs)
    assert (table["n"] == 1).all()
    assert table["measured_top1"].notna().all()
    assert len(store.rows()) == 2
    again = ab.run_ablations(**kwargs)
    assert again["measured_top1"].tolist() == table["measured_top1"].tolist()


def test_the_committed_quick_table_was_made_by_the_command_and_matches_the_claims():
    path = ab.results_dir() / "ablations_quick.csv"
    if not path.exists():
        pytest.skip(f"{path} not committed yet; produce it with `alexnet-book ablate --quick --out {path}`")
    table = ab.load_csv(path)
    assert table.attrs["command"].startswith("alexnet-book ablate --quick")
    assert table.attrs["machine"] and table.attrs["date"] and float(table.attrs["wall_s"]) > 0
    assert list(table["ablation"]) == [a.name for a in ab.ABLATIONS]  # the whole table
    assert (table["n"] >= 1).all() and (table["data"] == "cifar10").all()
    for row in table.itertuples():  # the paper's numbers in the file are paper.py's
        a = ab.ABLATION[row.ablation]
        assert (math.isnan(row.paper_top1) and a.paper_top1 is None) or row.paper_top1 == a.paper_top1
