"""The ablation table: claims as data, the runner (reuse, resume, seeds), the exports, Tables 1 and 2, the CLI."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from alexnet_book import ablations as ab
from alexnet_book import mechanisms, paper
from alexnet_book.commands import ablate
from alexnet_book.devices import cpu_has_bf16
from alexnet_book.runs import ResultsStore

torch.set_num_threads(1)

# What each change costs in the fake world, in error fractions: a negative delta of −100·x for the paper's choice.
# runs per seed besides the baseline: every row that trains, and the own "with" run of rows that have one
PER_SEED_RUNS = sum(1 + bool(a.base_change) for a in ab.ABLATIONS if a.trains)
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

    def __init__(self, fail_at: int | None = None, precision: str | None = None, machine: str = ""):
        self.trained, self.calls, self.fail_at = [], 0, fail_at
        self.numerics = dict(precision=precision, machine=machine) if precision else {}

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
                           seed=config.seed, metrics=metrics, wall_s=1.0, **self.numerics))
        return SimpleNamespace(config=config, metrics=metrics, reused=False)


def committed_table(name: str, how: str = ""):
    """A committed results/<name>.csv, loaded as the notebook loads it; the test skips while it is not committed."""
    path = ab.results_dir() / f"{name}.csv"
    if not path.exists():
        pytest.skip(f"{path} not committed yet" + (f"; produce it with `{how}`" if how else ""))
    return ab.load_csv(path)


def committed_beside(name: str, suffix: str, what: str):
    """A check committed beside results/<name>.csv (<name>_<suffix>.csv), without its # header."""
    import io

    import pandas as pd

    path = ab.results_dir() / f"{name}_{suffix}.csv"
    assert path.exists(), f"{what} is committed beside the table"
    return pd.read_csv(io.StringIO("".join(l for l in path.read_text().splitlines(True) if not l.startswith("#"))))


def lrn_checks(name: str):
    """The LRN activity check committed beside results/<name>.csv (<name>_lrn.csv)."""
    return committed_beside(name, "lrn", "the LRN check of the trained baselines")


def per_seed(name: str):
    """The per-run numbers committed beside results/<name>.csv (<name>_seeds.csv)."""
    return committed_beside(name, "seeds", "each run's own numbers")


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
    assert "ensemble" not in names and "dropout_iterations" not in names  # read other rows' runs
    assert names.count("lrn_fourlayer:with") == 1  # a row with its own "with" run
    assert len(runs) == 2 * (1 + PER_SEED_RUNS)  # baseline + the trained variants (+ own "with" runs), per seed
    assert len({c.hash() for _, _, c in runs}) == len(runs)  # every run distinct
    base = runs[0][2]
    assert base.model_options == {} and base.ten_crop  # the paper's recipe, as train's defaults
    lrn = next(c for n, s, c in runs if n == "lrn" and s == 0)
    assert lrn.model_options == {"lrn": None} and not lrn.ten_crop
    assert dataclasses.replace(lrn, model_options={}, ten_crop=True) == base
    four_with = next(c for n, s, c in runs if n == "lrn_fourlayer:with" and s == 0)
    four_without = next(c for n, s, c in runs if n == "lrn_fourlayer" and s == 0)
    assert four_with.model == four_without.model == "fourlayer"
    assert four_with.model_options["lrn"] == "authors" and four_without.model_options["lrn"] is None
    assert dataclasses.replace(four_without, model_options=four_with.model_options) == four_with
    wd = next(c for n, s, c in runs if n == "weight_decay")
    assert wd.weight_decay == 0.0 and base.weight_decay == paper.RECIPE["weight_decay"]
    x = torch.zeros(2, 3, 32, 32)
    for name, seed, config in runs[: len(runs) // 2]:
        options = dict(config.model_options)
        if config.model == "fourlayer":
            options = {k: v for k, v in options.items() if k in ("lrn", "init")}
        model = build_model(config.model, num_classes=10, scale="scaled", **options)
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
    assert len(updates) == len(fake.trained) == 2 * (1 + PER_SEED_RUNS)
    first = updates[0].set_index("ablation")["n"]  # after the first baseline only the 10-crop row can be measured
    assert first["ten_crop"] == 1 and first.drop("ten_crop").sum() == 0
    last = updates[-1].set_index("ablation")["n"]
    # every row measured on both seeds, except the two that need what the fake trainer does not make: per-epoch
    # training curves (dropout_iterations) and saved networks (ensemble)
    assert (last.drop(["dropout_iterations", "ensemble"]) == 2).all()
    assert last["dropout_iterations"] == 0 and last["ensemble"] == 0


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
    # +3 and −1: a mean of +1 with a spread that holds zero -- inconclusive, not a disagreement
    assert row["verdict"] == "inconclusive" and row["sign_agrees"] is None and row["n"] == 2


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

    table = ab.run_ablations("synthetic", "scaled", 1, ablations="weight_decay,dropout", store=store, seeds=(0, 1, 2),
                             progress=False, train_fn=train_fn).set_index("ablation")
    assert math.isclose(table.loc["weight_decay", "measured_top1"], 1.0, abs_tol=1e-9)  # worse on val ...
    assert math.isclose(table.loc["weight_decay", "measured_claim"], -5.0, abs_tol=1e-9)  # ... lower train error
    assert table.loc["weight_decay", "sign_agrees"] is True
    assert math.isclose(table.loc["dropout", "measured_top1"], 2.0, abs_tol=1e-9)
    assert math.isclose(table.loc["dropout", "measured_claim"], 10.0 - 23.0, abs_tol=1e-9)
    assert table.loc["dropout", "sign_agrees"] is True
    shown = ab.display_table(table.reset_index()).set_index("ablation")
    assert shown.loc["dropout", "sign judged on"] == "val − train error"
    assert shown.loc["dropout", "measured Δ there"] == "−13.0 ± 0.0"
    assert shown.loc["dropout", "verdict"] == "agrees"


def test_an_overfitting_claim_is_untestable_where_nothing_overfits(tmp_path):
    """Underfitting networks (training error above validation error, as after 2 epochs with dropout on) cannot
    show that dropout prevents overfitting: the sign is left open, and the table says why."""
    def train_fn(config, **kw):
        val, train = (0.35, 0.40) if config.model_options.get("dropout") == 0.0 else (0.44, 0.52)
        return SimpleNamespace(metrics=dict(val_top1_error=val, val_top5_error=0.1, train_error=train),
                               reused=False)

    table = ab.run_ablations("synthetic", "scaled", 1, ablations="dropout", store=ResultsStore(tmp_path / "r.jsonl"),
                             progress=False, train_fn=train_fn, seeds=(0, 1, 2))
    (row,) = table.to_dict("records")
    assert math.isclose(row["measured_claim"], -8.0 - -5.0, abs_tol=1e-9) and row["sign_agrees"] is None
    assert row["verdict"] == "inconclusive" and row["testable"] is False
    assert ab.display_table(table)["verdict"].tolist() == ["inconclusive: nothing overfits without it"]


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
                             progress=False, train_fn=FakeTrain(), seeds=(0, 1))
    path = ab.save_csv(table, tmp_path / "t.csv", command="alexnet-book ablate --only lrn", configuration={"x": 1},
                       wall_s=12.3)
    text = path.read_text()
    for key in ("# command: alexnet-book ablate --only lrn", "# machine: ", "# date: ", '# configuration: {"x": 1}',
                "# wall_s: 12", "# runs: 6", "# runs_reused: 0", "# train_wall_s: 6.0"):
        assert key in text
    back = ab.load_csv(path)
    assert back.attrs["command"] == "alexnet-book ablate --only lrn"
    assert list(back["ablation"]) == ["lrn", "lrn_beta", "ten_crop"]
    assert back["measured_top1"].tolist() == pytest.approx(table["measured_top1"].tolist())
    assert back.loc[0, "sign_agrees"] is True and back.loc[1, "sign_agrees"] is None
    assert back["verdict"].tolist() == table["verdict"].tolist() == ["agrees", "", "agrees"]
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
    from alexnet_book.config import TrainConfig

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
    # the reader's CIFAR-10 runs are not rows of the ILSVRC tables, and carry no top-5 (10 classes)
    assert set(t1.source) == set(t2.source) == {"paper", "reproduction"}
    mine = tables["yours"]
    assert len(mine) == 1  # only the paper's recipe, not the LRN-less variant
    assert mine["top-1 centre (%)"].tolist() == [25.0] and mine["top-1 10 crops (%)"].tolist() == [24.0]
    assert mine["top-5 centre (%)"].isna().all() and mine["data"].tolist() == ["cifar10"]
    assert len(ab.paper_tables(store, runs="all")["yours"]) == 2
    assert len(ab.paper_tables(tmp_path / "none.jsonl")["table1"]) == len(paper.TABLE1) + 1 + 1


def test_cli_help_list_and_a_run_writing_the_csv(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_:
        ablate.main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for option in ("--quick", "--full", "--smoke", "--data", "--scale", "--epochs", "--steps", "--limit", "--seeds",
                   "--only", "--device", "--store", "--out", "--list"):
        assert option in text
    assert ablate.main(["--list"]) == 0
    assert "two_towers" in capsys.readouterr().out

    import alexnet_book.train as train_module

    monkeypatch.setattr(train_module, "train", FakeTrain())
    monkeypatch.setenv("ALEXNET_BOOK_FIGURES", str(tmp_path / "figures"))
    out = tmp_path / "results" / "abl.csv"
    code = ablate.main(["--smoke", "--only", "lrn,dropout", "--seeds", "0", "1", "--store",
                        str(tmp_path / "r.jsonl"), "--out", str(out), "--no-progress"])
    assert code == 0
    table = ab.load_csv(out)
    assert table.attrs["command"].startswith("alexnet-book ablate --smoke --only lrn,dropout")
    assert list(table["n"]) == [2, 2]
    assert ablate.main(["--only", "nonsense", "--store", str(tmp_path / "r.jsonl")]) == 2
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
    # the numerics the runs trained in ("auto": bf16 only on a CPU with native bf16), fresh and reused alike
    numerics = "bf16" if cpu_has_bf16() else "fp32"
    assert table.attrs["precision"] == again.attrs["precision"] == f"{numerics} (2 runs)"


def test_a_table_says_what_numerics_its_runs_trained_in_and_flags_a_mix(tmp_path):
    """precision="auto" is bf16 on one CPU and fp32 on another: the table's header says which, and a table whose
    baselines were reused from a store filled on another machine says MIXED, naming both machines."""
    store = ResultsStore(tmp_path / "results.jsonl")
    kwargs = dict(ablations="lrn,pca_colour", store=store, progress=False, seeds=(0,))
    ab.run_ablations("synthetic", "scaled", 1, **{**kwargs, "ablations": "lrn"},
                     train_fn=FakeTrain(precision="bf16", machine="Linux x86_64, AMD EPYC (2 cores, AVX512-BF16)"))
    table = ab.run_ablations("synthetic", "scaled", 1, **kwargs,
                             train_fn=FakeTrain(precision="fp32", machine="Linux x86_64, AMD EPYC (2 cores, AVX2)"))
    assert table.attrs["runs_reused"] == 2  # the baseline and no-LRN runs come from the bf16 machine
    text = table.attrs["precision"]
    assert text.startswith("bf16 (2 runs), fp32 (1 run); MIXED")
    assert "AVX512-BF16" in text and "AVX2" in text
    back = ab.load_csv(ab.save_csv(table, tmp_path / "t.csv"))
    assert back.attrs["precision"] == text
    one = ab.run_ablations("synthetic", "scaled", 1, **{**kwargs, "ablations": "lrn"}, train_fn=FakeTrain())
    assert one.attrs["precision"] == "bf16 (2 runs)"  # one kind: no warning
    assert ab.precision_text([]) == ""
    plain = ab.run_ablations("synthetic", "scaled", 1, ablations="lrn", store=ResultsStore(tmp_path / "old.jsonl"),
                             progress=False, train_fn=FakeTrain())
    assert "precision" not in plain.attrs  # rows stored without it (older stores): nothing is claimed


def test_the_committed_quick_table_was_made_by_the_command_and_matches_the_claims():
    table = committed_table("ablations_quick", "alexnet-book ablate --quick --out results/ablations_quick.csv")
    assert table.attrs["command"].startswith("alexnet-book ablate --quick")
    assert table.attrs["machine"] and table.attrs["date"] and float(table.attrs["wall_s"]) > 0
    assert set(table["ablation"]) <= set(ab.ABLATION) and len(table) >= 14
    claims = table[[ab.ABLATION[name].expect_lower and bool(ab.ABLATION[name].claim) for name in table["ablation"]]]
    measured = claims[claims["n"] > 0]
    assert len(measured) >= 12 and (measured["n"] == 1).all()
    assert (measured["verdict"] == "inconclusive").all()  # one seed: nothing can be told apart from noise
    shown = ab.display_table(table).set_index("ablation")["verdict"]
    assert not shown.str.contains("not run yet").any()  # every row ran, or says why it cannot in one seed
    assert table.attrs["precision"] and "2 epochs" in set(table["budget"])
    # LRN is a normaliser in the trained baseline (not a constant rescale, as in the quick table of 27 Nov)
    checks = lrn_checks("ablations_quick")
    assert (checks.query("network == 'baseline' and layer == 'features.lrn1'")["state"] == "normalises").all()
    assert (table.loc[table["n"] > 0, "data"] == "cifar10").all()
    for row in table.itertuples():  # the paper's numbers in the file are paper.py's
        a = ab.ABLATION[row.ablation]
        assert (math.isnan(row.paper_top1) and a.paper_top1 is None) or row.paper_top1 == a.paper_top1


def test_verdicts_from_the_mean_and_its_uncertainty():
    """agrees / disagrees / inconclusive from the 95% t-interval of the per-seed deltas, never from a sign."""
    assert ab.verdict([-1.0, -1.2, -0.9]) == "agrees"  # the paper's direction, well outside the noise
    assert ab.verdict([1.0, 1.2, 0.9]) == "disagrees"
    assert ab.verdict([-0.006, 0.3, -0.31]) == "inconclusive"  # a tie is not agreement
    assert ab.verdict([-1.0, -1.0, -1.0]) == "agrees"  # no spread at all
    assert ab.verdict([-2.0]) == "inconclusive"  # one seed: no uncertainty to judge by
    assert ab.verdict([-1.0, 1.0, -1.0]) == "inconclusive"
    assert ab.verdict([0.0, 0.0, 0.0]) == "inconclusive"
    assert ab.verdict([-1.0, -1.2, -0.9], testable=False) == "inconclusive"
    assert ab.verdict([1.0, 1.2, 0.9], expect_lower=False) == "agrees"
    # the bar: |mean| must exceed t(0.975, n−1)·sd/√n -- 4.30 at n = 3, so a 2-SE difference is not enough
    assert ab.t_critical(3) == pytest.approx(4.303, abs=1e-3)
    assert ab.verdict([-1.0, -2.0, -3.0]) == "inconclusive"  # mean −2, SE 0.58: t = 3.5 < 4.3
    assert ab.verdict([-1.5, -2.0, -2.5]) == "agrees"  # mean −2, SE 0.29: t = 6.9


def test_iterations_to_converge_and_ensembles_from_constructed_runs():
    curve_with = [[1, 0.8], [2, 0.6], [3, 0.5], [4, 0.4]]  # with dropout: reaches 0.4 at epoch 4
    curve_without = [[1, 0.7], [2, 0.4], [3, 0.2], [4, 0.1]]  # without: at epoch 2
    assert ab.epochs_to(curve_with, 0.4) == 4 and ab.epochs_to(curve_without, 0.4) == 2
    assert ab.epochs_to(curve_without, 0.55) == pytest.approx(1.5)  # interpolated between epochs
    assert ab.iterations_ratio({"train_eval_curve": curve_with}, {"train_eval_curve": curve_without}) == 2.0
    results = {}
    for seed, slower in enumerate((2.0, 1.8, 2.2)):
        stretched = [[e * slower, y] for e, y in curve_without]
        results[(ab.BASELINE, seed)] = {"train_eval_curve": stretched}
        results[("dropout", seed)] = {"train_eval_curve": curve_without}
    row = ab.ablation_table(results, "dropout_iterations", seeds=(0, 1, 2)).iloc[0]
    assert row["n"] == 3 and row["measured_claim"] == pytest.approx(2.0) and row["verdict"] == "agrees"
    ensembles = {("ensemble", 0): [dict(delta_top1=-0.02, delta_top5=-0.01), dict(delta_top1=-0.025, delta_top5=0.0)],
                 ("ensemble", 1): [dict(delta_top1=-0.018, delta_top5=-0.005)]}
    row = ab.ablation_table(ensembles, "ensemble", seeds=(0, 1, 2)).iloc[0]
    assert row["n"] == 3 and row["measured_top1"] == pytest.approx(-2.1) and row["verdict"] == "agrees"


def test_the_study_preset_covers_every_claim_with_three_seeds():
    study = ab.PRESETS["study"]
    assert len(study["seeds"]) >= 3 and study["recipe"] == "study"
    assert {ab.ABLATION[name].claim for name in study["ablations"]} == {c.name for c in paper.CLAIMS}
    from alexnet_book.config import recipe

    config = recipe("study")
    assert config.lrn_follows_input_scale and config.model_options == {"pool_rounding": "ceil"}
    assert config.train_eval_size > 0  # overfitting measured in eval mode


def test_the_committed_study_table_is_evidence_every_row_n3_with_a_verdict():
    table = committed_table("ablations_study", "alexnet-book ablate --study")
    assert table.attrs["command"].startswith("alexnet-book ablate --study")
    assert table.attrs["machine"] and table.attrs["date"] and float(table.attrs["wall_s"]) > 0
    assert list(table["ablation"]) == list(ab.PRESETS["study"]["ablations"])
    assert (table["n"] >= 3).all() and (table["data"] == "cifar10").all()
    assert set(table["verdict"]) <= set(ab.VERDICTS)
    for row in table.itertuples():  # the paper's numbers in the file are paper.py's
        a = ab.ABLATION[row.ablation]
        assert (math.isnan(row.paper_top1) and a.paper_top1 is None) or row.paper_top1 == a.paper_top1
    checks = lrn_checks("ablations_study")
    assert len(checks) == 2 * len(ab.PRESETS["study"]["seeds"])
    assert (checks["state"] != "constant").all()  # no LRN layer of a compared network is a mere rescale
    assert (checks.query("layer == 'features.lrn1'")["state"] == "normalises").all()


def test_a_stored_run_on_other_data_is_neither_reused_nor_listed(tmp_path, monkeypatch):
    """The table's store lookup checks the data identity as train() does: a finished run recorded on another
    archive under the same name is refused in one line, and left out of cached_results."""
    import alexnet_book.data as D

    store = ResultsStore(tmp_path / "results.jsonl")
    runs = ab.plan_runs("synthetic", "scaled", 1, seeds=(0,), ablations="lrn", limit=16)
    name, seed, config = runs[0]
    here = D.dataset_identity("synthetic", scale="scaled", limit=16)
    store.add(dict(config_hash=config.hash(), metrics=dict(val_top1_error=0.3, val_top5_error=0.1),
                   data_identity={"source": "cifar10 /elsewhere/other.tar.gz", "cache_key": "other-key"}))
    assert ab.cached_results(runs, store) == {}
    with pytest.raises(ValueError, match="other.tar.gz"):
        ab.run_ablations("synthetic", "scaled", 1, seeds=(0,), ablations="lrn", limit=16, store=store,
                         progress=False, train_fn=lambda c, **k: pytest.fail("must not train"))
    store.path.unlink()
    store.add(dict(config_hash=config.hash(), metrics=dict(val_top1_error=0.3, val_top5_error=0.1),
                   data_identity=here))
    assert set(ab.cached_results(runs, store)) == {(name, seed)}


def test_table2_ensembles_open_the_real_trainers_saved_baselines(tmp_path, monkeypatch):
    """The ensemble row reads two trained baselines back from disk (checkpoints.load_run) and averages them."""
    monkeypatch.setenv("ALEXNET_BOOK_DATA", str(tmp_path / "data"))
    table = ab.run_ablations(data="synthetic", scale="scaled", budget_epochs=1, budget_steps=2, seeds=(0, 1),
                             device="cpu", ablations="ensemble", limit=40, progress=False,
                             store=ResultsStore(tmp_path / "results.jsonl"),
                             base={"out_dir": str(tmp_path / "runs"), "batch_size": 8})
    row = table.set_index("ablation").loc["ensemble"]
    assert row["n"] == 1 and row["measured_top1"] == row["measured_top1"]  # one pair of seeds, a number


def test_power_what_a_row_of_seeds_could_detect():
    """detectable = (t_.975 + t_.8)·sd/√n; seeds_needed inverts it; both say whether a row was a test at all."""
    assert ab.detectable_effect(1.0, 3) == pytest.approx((4.3027 + 1.0607) / math.sqrt(3), abs=1e-3)
    assert ab.detectable_effect(2.0, 3) == pytest.approx(2 * ab.detectable_effect(1.0, 3))  # linear in the spread
    assert ab.detectable_effect(1.0, 10) < ab.detectable_effect(1.0, 5) < ab.detectable_effect(1.0, 3)
    assert math.isnan(ab.detectable_effect(1.0, 1)) and math.isnan(ab.detectable_effect(math.nan, 5))
    n = ab.seeds_needed(-1.0, 1.7)  # sign does not matter; the spread of the committed pca_colour row
    assert ab.detectable_effect(1.7, n) <= 1.0 < ab.detectable_effect(1.7, n - 1)
    assert 20 <= n <= 30
    assert ab.seeds_needed(2.0, 1.0) < ab.seeds_needed(1.0, 1.0)  # smaller effects need more seeds
    assert ab.seeds_needed(0.01, 5.0) is None  # not within 1,000 seeds
    assert ab.seeds_needed(math.nan, 1.0) is None and ab.seeds_needed(1.0, 0.0) == 2
    # a verdict from the seeds a row says it needs: simulated, the 80% holds roughly (approximation, not exact)
    import numpy as np

    rng = np.random.default_rng(0)
    n = ab.seeds_needed(-1.0, 1.0)
    found = sum(ab.verdict(list(rng.normal(-1.0, 1.0, n))) == "agrees" for _ in range(400)) / 400
    assert 0.7 <= found <= 0.9


def test_the_size_of_a_measured_effect_against_the_papers():
    # n = 10, sd = 1: the 95% half-width is 2.262/√10 = 0.715
    assert ab.size_against_paper(-2.0, 1.0, 10, -2.0) == "as the paper's"
    assert ab.size_against_paper(-0.5, 1.0, 10, -2.0) == "smaller than the paper's"  # holds zero, not −2
    assert ab.size_against_paper(-1.0, 1.0, 10, -2.0) == "smaller than the paper's"  # between zero and −2
    assert ab.size_against_paper(-4.0, 1.0, 10, -2.0) == "larger than the paper's"
    assert ab.size_against_paper(+1.5, 1.0, 10, -2.0) == "opposite to the paper's"
    assert ab.size_against_paper(-0.5, 3.0, 10, -1.0) == "cannot tell"  # holds both: never read as agreement
    assert ab.size_against_paper(2.0, 1.0, 10, 2.0) == "as the paper's"  # a positive claim, measured along it
    assert ab.size_against_paper(-2.0, 1.0, 1, -2.0) == "" and ab.size_against_paper(-2.0, 1.0, 10, math.nan) == ""


def test_tables_carry_the_power_columns_and_an_old_csv_gets_them_on_reading(tmp_path):
    store = ResultsStore(tmp_path / "results.jsonl")
    table = ab.run_ablations("synthetic", "scaled", 1, ablations="lrn,overlapping_pool,ten_crop", store=store,
                             progress=False, train_fn=FakeTrain(), seeds=(0, 1, 2))
    assert list(table.columns) == list(ab.COLUMNS) and set(ab.POWER_COLUMNS) <= set(table.columns)
    lrn = table.set_index("ablation").loc["lrn"]
    assert lrn["detectable"] == pytest.approx(ab.detectable_effect(lrn["measured_claim_std"], 3))
    for row in table.itertuples():  # sized only where the paper claims a validation-error delta
        a = ab.ABLATION[row.ablation]
        sized = a.kind == "delta" and row.measure == "val" and not math.isnan(row.paper_top1)
        assert (row.size in ab.SIZE_WORDS) if sized else (row.size == "" and math.isnan(row.seeds_needed or math.nan))
    assert lrn["size"] in ab.SIZE_WORDS and lrn["seeds_needed"] >= 2
    path = ab.save_csv(table, tmp_path / "t.csv", command="alexnet-book ablate", configuration={})
    # an older CSV (before the power columns) is read with them recomputed from its own numbers
    lines = path.read_text().splitlines(True)
    header = next(i for i, l in enumerate(lines) if not l.startswith("#"))
    import csv
    import io

    rows = list(csv.reader(io.StringIO("".join(lines[header:]))))
    keep = [i for i, c in enumerate(rows[0]) if c not in ab.POWER_COLUMNS]
    old = io.StringIO()
    csv.writer(old, lineterminator="\n").writerows([[r[i] for i in keep] for r in rows])
    (tmp_path / "old.csv").write_text("".join(lines[:header]) + old.getvalue())
    back = ab.load_csv(tmp_path / "old.csv")
    assert list(back.columns) == list(ab.COLUMNS)
    assert back["detectable"].tolist() == pytest.approx(table["detectable"].tolist(), nan_ok=True, rel=1e-3)
    assert back["size"].tolist() == table["size"].tolist()


def test_an_inconclusive_row_says_what_its_seeds_could_detect():
    results = {}
    for seed, (base, without) in enumerate(((0.40, 0.41), (0.42, 0.40), (0.41, 0.415))):  # a tie within noise
        results[(ab.BASELINE, seed)] = dict(val_top1_error=base, val_top5_error=0.1)
        results[("pca_colour", seed)] = dict(val_top1_error=without, val_top5_error=0.1)
    table = ab.ablation_table(results, "pca_colour", seeds=(0, 1, 2))
    row = table.iloc[0]
    assert row["verdict"] == "inconclusive" and row["size"] == "cannot tell"
    shown = ab.display_table(table).iloc[0]
    assert shown["verdict"].startswith("inconclusive: 3 seeds detect ≥ ")
    assert f"needs ≈ {int(row['seeds_needed'])}" in shown["verdict"] and "80% power" in shown["verdict"]
    assert shown["size here"] == "cannot tell"


def test_a_row_that_cannot_be_measured_in_the_tables_setting_says_why_not_that_it_is_pending():
    """One seed has no pair of baselines to average, and runs without the probe's eval-mode curve give no epochs
    ratio: the quick table must say so rather than "not run yet" (which reads as 'wait for it')."""
    import json

    results = {(ab.BASELINE, 0): dict(val_top1_error=0.40, val_top5_error=0.1, train_error=0.5),
               ("dropout", 0): dict(val_top1_error=0.45, val_top5_error=0.1, train_error=0.45)}
    table = ab.ablation_table(results, ["dropout", "dropout_iterations", "ensemble", "lrn"], seeds=(0,))
    table.attrs["configuration"] = json.dumps({"seeds": [0]})
    shown = ab.display_table(table).set_index("ablation")["verdict"]
    assert shown["ensemble"] == "not measurable with 1 seed: it averages two seeds' baselines"
    assert shown["dropout_iterations"].startswith("not measurable here: dropout's runs record no eval-mode")
    assert shown["lrn"] == "not run yet"  # trainable, just not trained
    table.attrs["configuration"] = json.dumps({"seeds": [0, 1]})  # two seeds asked for: the pairs are pending
    assert ab.display_table(table).set_index("ablation")["verdict"]["ensemble"] == "not run yet"
    del table.attrs["configuration"]  # a table without its header (the live panel) does not guess
    assert ab.display_table(table).set_index("ablation")["verdict"]["ensemble"] == "not run yet"


def test_the_chart_labels_a_row_without_a_top1_delta_by_why():
    """The chart has no bar for an epochs ratio (it is measured, in epochs) nor for a row that cannot be measured
    in one seed: it says which, not "not run yet" for both."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = [[1, 0.5], [2, 0.3]]
    results = {(ab.BASELINE, 0): dict(val_top1_error=0.40, val_top5_error=0.1, train_eval_curve=curve),
               ("dropout", 0): dict(val_top1_error=0.45, val_top5_error=0.1, train_eval_curve=[[1, 0.3], [2, 0.2]])}
    table = ab.ablation_table(results, ["dropout_iterations", "ensemble", "lrn"], seeds=(0,))
    table.attrs["configuration"] = json.dumps({"seeds": [0]})
    fig = ab.plot_ablations(table)
    notes = {t.get_text().strip() for t in fig.axes[0].texts}
    plt.close(fig)
    assert {"measured in epochs, not top-1", "not measurable with 1 seed", "not run yet"} <= notes


@pytest.mark.parametrize("name, seeds, rows", [
    ("ablations_study_5seeds", 5, ["lrn", "two_towers"]),
    ("ablations_study_10seeds", 10, ["pca_colour", "remove_conv3", "remove_conv4"]),
])
def test_the_committed_seed_extensions_are_evidence(name, seeds, rows):
    """The 5- and 10-seed tables: made by the command, every row with all its seeds, a verdict, the power columns,
    and the LRN check of each seed's trained baseline beside them (lrn1 normalising)."""
    table = committed_table(name)
    assert table.attrs["command"].startswith(f"alexnet-book ablate --study --seeds {' '.join(map(str, range(seeds)))}")
    assert list(table["ablation"]) == rows and (table["n"] == seeds).all()
    assert set(table["verdict"]) <= set(ab.VERDICTS) and (table["verdict"] != "").all()
    for row in table.itertuples():
        assert row.detectable == pytest.approx(ab.detectable_effect(row.measured_claim_std, seeds))
        assert row.size in ab.SIZE_WORDS
        if row.verdict == "disagrees":  # a disagreement is the whole interval on the other side of zero
            assert row.size == "opposite to the paper's"
    checks = lrn_checks(name)
    assert sorted(set(checks["seed"])) == list(range(seeds))
    assert (checks.query("layer == 'features.lrn1'")["state"] == "normalises").all()


def test_removing_a_layer_is_testable_only_where_the_layer_adds_fitting_capacity():
    """§7's "depth is important" can show only where the network with the layer fits its training images better
    (its capacity is used at this budget); where it fits no better the row is inconclusive and says why -- a
    disagreement in validation error is then not read as evidence against the paper."""
    def results(train_with, train_without, val_with=(0.40, 0.41, 0.405), val_without=(0.39, 0.395, 0.39)):
        out = {}
        for seed in range(3):
            out[(ab.BASELINE, seed)] = dict(val_top1_error=val_with[seed], val_top5_error=0.1,
                                            train_eval_error=train_with[seed], train_error=0.9)
            out[("remove_conv3", seed)] = dict(val_top1_error=val_without[seed], val_top5_error=0.1,
                                               train_eval_error=train_without[seed], train_error=0.9)
        return out

    # the layer does not help fitting (equal training errors): untestable, whatever validation says
    table = ab.ablation_table(results((0.30, 0.31, 0.30), (0.30, 0.30, 0.31)), "remove_conv3", seeds=(0, 1, 2))
    row = table.iloc[0]
    assert row["testable"] is False and row["verdict"] == "inconclusive"
    assert row["train_delta"] == pytest.approx(0.0, abs=1e-9)  # the eval-mode error, not the running one
    shown = ab.display_table(table)["verdict"].iloc[0]
    assert shown.startswith("inconclusive: with it the network fits its training images no better here")
    # the layer fits better (−5 points in every seed): the validation delta is judged, and here disagrees
    table = ab.ablation_table(results((0.25, 0.26, 0.25), (0.30, 0.31, 0.30)), "remove_conv3", seeds=(0, 1, 2))
    row = table.iloc[0]
    assert row["testable"] is True and row["verdict"] == "disagrees"
    assert row["train_delta"] == pytest.approx(-5.0)
    # runs without an eval-mode training error fall back to the running one; a table without any keeps its verdict
    old = {k: {m: v for m, v in r.items() if m != "train_eval_error"} for k, r in
           results((0.25, 0.26, 0.25), (0.30, 0.31, 0.30)).items()}
    row = ab.ablation_table(old, "remove_conv3", seeds=(0, 1, 2)).iloc[0]
    assert row["train_delta"] == pytest.approx(0.0) and row["testable"] is False
    assert ab.ABLATION["remove_conv4"].needs == "capacity" and ab.ABLATION["lrn"].needs is None


def test_pca_colour_is_testable_only_where_the_noise_hurts_the_networks_trained_without_it(tmp_path):
    """§4.1's "over 1%" can show only where the noise asks something of the network: the networks trained without
    it must err more on PCA-jittered images (their rise's interval above zero).  Where they are not moved the row
    is inconclusive and says why, whatever the validation delta; without the check (older tables, networks not on
    disk) the verdict is the validation one.  The rise is kept in the table (``mechanism``) and survives its CSV."""
    def results(rises):
        out = {}
        for seed in range(3):
            out[(ab.BASELINE, seed)] = dict(val_top1_error=0.30 - 0.001 * seed, val_top5_error=0.1)
            out[("pca_colour", seed)] = dict(val_top1_error=0.32 + 0.001 * seed, val_top5_error=0.1)
            if rises is not None:
                out[("colour", seed)] = rises[seed]
        return out

    table = ab.ablation_table(results((0.004, 0.005, 0.0045)), "pca_colour", seeds=(0, 1, 2))
    row = table.iloc[0]
    assert row["testable"] is True and row["verdict"] == "agrees"
    assert row["mechanism"] == pytest.approx(0.45) and row["mechanism_std"] == pytest.approx(0.05)
    table = ab.ablation_table(results((0.002, -0.003, 0.001)), "pca_colour", seeds=(0, 1, 2))
    row = table.iloc[0]
    assert row["testable"] is False and row["verdict"] == "inconclusive" and row["measured_top1"] < -1.5
    shown = ab.display_table(table)["verdict"].iloc[0]
    assert shown == ("inconclusive: the networks trained without it are not shown hurt by the noise here "
                     "(validation error rise on PCA-jittered images +0.0 ± 0.3)")
    ab.save_csv(table, tmp_path / "t.csv")
    again = ab.load_csv(tmp_path / "t.csv").iloc[0]
    assert again["mechanism"] == pytest.approx(row["mechanism"]) and again["testable"] is False
    row = ab.ablation_table(results(None), "pca_colour", seeds=(0, 1, 2)).iloc[0]
    assert row["testable"] is None and row["verdict"] == "agrees" and math.isnan(row["mechanism"])
    assert ab.ABLATION["pca_colour"].needs == "colour"


def test_the_colour_check_scores_the_saved_networks_and_decides_the_table(tmp_path, monkeypatch, capsys):
    """`ablate --out` with the PCA colour row scores each seed's saved network trained without the noise and its
    baseline (``trained_colour``) on the same jittered validation images, writes <stem>_colour.csv, prints its
    line, and the table's ``mechanism`` is the mean rise of the networks without the noise -- the number its
    verdict's precondition was judged on."""
    import io

    import pandas as pd

    monkeypatch.setenv("ALEXNET_BOOK_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("ALEXNET_BOOK_FIGURES", str(tmp_path / "figures"))
    out = tmp_path / "results" / "pca.csv"
    code = ablate.main(["--smoke", "--only", "pca_colour", "--seeds", "0", "1", "--store", str(tmp_path / "r.jsonl"),
                        "--runs", str(tmp_path / "runs"), "--set", 'precision="fp32"', "--out", str(out),
                        "--no-progress", "--no-figure", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    text = out.with_name("pca_colour.csv").read_text()
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert header[0].startswith("# command: alexnet-book ablate --smoke --only pca_colour")
    colour = pd.read_csv(io.StringIO("".join(l for l in text.splitlines(True) if not l.startswith("#"))))
    assert sorted(zip(colour["seed"], colour["network"])) == [(0, "baseline"), (0, "without"), (1, "baseline"),
                                                               (1, "without")]
    assert set(colour["ablation"]) == {"pca_colour"} and (colour["images"] == 120).all()  # 128, balanced over 10
    assert (colour["rise"] - (colour["jittered_error"] - colour["clean_error"])).abs().max() < 2e-4
    (summary,) = ab.colour_summary(colour)
    line = ab.colour_text(summary)
    assert line in printed and f"# {line}" in header
    assert line.startswith("pca_colour, 120 validation images: the networks trained without the noise err ")
    table = ab.load_csv(out)
    without = colour[colour["network"] == "without"]["rise"]
    assert table.iloc[0]["mechanism"] == pytest.approx(without.mean(), abs=1e-3)
    # each network was scored on its own validation images: its clean error is the store's, to the image
    stored = pd.read_csv(out.with_name("pca_seeds.csv"), comment="#")
    for r in colour.itertuples():
        run = "pca_colour" if r.network == "without" else ab.BASELINE
        expected = stored.query("run == @run and seed == @r.seed")["val_top1_error"].item()
        assert r.clean_error == pytest.approx(expected, abs=0.8)  # bf16 vs fp32 scoring aside: the same images


def test_the_views_check_compares_the_predictions_the_no_training_rows_average(tmp_path, monkeypatch, capsys):
    """`ablate --out` with the 10-crop and ensemble rows scores the saved baselines (``trained_views``): per seed
    the 10-crop average against the centre crop, per pair of seeds the two networks against each other; writes
    <stem>_views.csv and prints one line per row; the ensemble deltas are the table's own pairs."""
    import io
    from itertools import combinations

    import pandas as pd

    monkeypatch.setenv("ALEXNET_BOOK_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("ALEXNET_BOOK_FIGURES", str(tmp_path / "figures"))
    out = tmp_path / "results" / "views.csv"
    store, runs_dir = tmp_path / "r.jsonl", tmp_path / "runs"
    argv = ["--smoke", "--only", "ten_crop,ensemble", "--seeds", "0", "1", "2", "--store", str(store),
            "--runs", str(runs_dir), "--set", 'precision="fp32"', "--out", str(out), "--no-progress", "--no-figure",
            "--quiet"]
    code = ablate.main(argv)
    assert code == 0
    printed = capsys.readouterr().out
    text = out.with_name("views_views.csv").read_text()
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert header[0].startswith("# command: alexnet-book ablate --smoke --only ten_crop,ensemble")
    views = pd.read_csv(io.StringIO("".join(l for l in text.splitlines(True) if not l.startswith("#"))),
                        dtype={"seeds": str})
    assert list(zip(views["row"], views["seeds"])) == [("ten_crop", "0"), ("ten_crop", "1"), ("ten_crop", "2"),
                                                       ("ensemble", "0-1"), ("ensemble", "0-2"), ("ensemble", "1-2")]
    assert (views["images"] == 120).all() and (views["one_right"] <= views["changed"] + 1e-9).all()
    for summary in ab.views_summary(views):
        line = ab.views_text(summary)
        assert line in printed and f"# {line}" in header
    # recomputed here from the saved networks: the share of labels that differ, pair by pair
    args = ablate.build_parser().parse_args(argv)
    settings, _ = ablate.settings_from(args)
    plan = ab.plan_runs(**{k: v for k, v in settings.items() if k != "recipe"}, ablations="ensemble",
                        base=ablate.base_from(args), recipe=settings["recipe"])
    from alexnet_book.evaluate import split_probabilities
    from alexnet_book.runs import ResultsStore

    labels = {seed: split_probabilities(net, data.val, data.mean_image, data.crop).argmax(dim=1)
              for seed, _, net, data in ab.baseline_networks(plan, ResultsStore(store))}
    assert sorted(labels) == [0, 1, 2]
    for i, j in combinations(range(3), 2):
        changed = 100 * float((labels[i] != labels[j]).float().mean())
        assert views[views["seeds"] == f"{i}-{j}"]["changed"].item() == pytest.approx(changed, abs=1e-3)
    table = ab.load_csv(out).set_index("ablation")
    ensemble = views[views["row"] == "ensemble"]["delta"]
    assert table.loc["ensemble", "measured_top1"] == pytest.approx(ensemble.mean(), abs=1e-3)


@pytest.mark.parametrize("name, layer, limit", [("ablations_depth_20k", "remove_conv3", 20000),
                                                ("ablations_depth_20k_conv4", "remove_conv4", 20000),
                                                ("ablations_depth_50k_conv4", "remove_conv4", 50000)])
def test_the_committed_depth_runs_with_more_data_record_the_capacity_check(name, layer, limit):
    table = committed_table(name)
    assert table.attrs["command"].startswith(f"alexnet-book ablate --study --limit {limit} --seeds 0 1 2")
    assert f"--only {layer} --out results/{name}.csv" in table.attrs["command"]
    assert f"{limit} images/split" in table.loc[0, "budget"] and list(table["ablation"]) == [layer]
    row = table.iloc[0]
    assert int(table.attrs["runs"]) == 2 * row["n"]  # every seed's baseline and variant, none missing
    checks = lrn_checks(name)  # the baselines compared are the paper's network with LRN at work
    assert sorted(set(checks["seed"])) == list(range(int(row["n"])))
    assert (checks.query("layer == 'features.lrn1'")["state"] == "normalises").all()
    if "precision" in table.attrs:  # recorded since 2 Dec 2026: one kind of numerics for the whole table
        assert table.attrs["precision"] in (f"fp32 ({table.attrs['runs']} runs)", f"bf16 ({table.attrs['runs']} runs)")
        assert ("AVX" in table.attrs["machine"]) or ("AMX" in table.attrs["machine"])
    assert row["n"] >= 3 and not math.isnan(row["train_delta"]) and row["testable"] in (True, False)
    # the verdict follows the capacity rule from the file's own numbers
    half = ab.t_critical(int(row["n"])) * row["train_delta_std"] / math.sqrt(row["n"])
    assert row["testable"] == (row["train_delta"] + half < 0)
    if not row["testable"]:
        assert row["verdict"] == "inconclusive"


@pytest.mark.parametrize("name, row_name", [("ablations_pca_50k", "pca_colour"), ("ablations_lrn_50k", "lrn")])
def test_the_committed_50k_pca_and_lrn_tables_are_the_planned_runs_judged_by_the_rule(name, row_name):
    """The plan committed before the runs (docs/ablations.md, 8c47785): all 50,000 images, seeds 0-4 and no
    others, the baselines those of the 50k conv4 table (the same runs, so the same numbers), the verdict the 95%
    t rule on the file's own numbers; LRN at work in every baseline; for PCA colour the mechanism check beside it,
    the table's ``mechanism`` the mean rise of its networks without the noise and ``testable`` its interval."""
    command = (f"alexnet-book ablate --study --limit 50000 --seeds 0 1 2 3 4 --only {row_name} "
               f"--out results/{name}.csv")
    table = committed_table(name, command)
    assert table.attrs["command"] == command
    assert list(table["ablation"]) == [row_name] and "50000 images/split" in table.loc[0, "budget"]
    row = table.iloc[0]
    assert row["n"] == 5 and int(table.attrs["runs"]) == 10
    assert table.attrs["precision"] == "bf16 (10 runs)"
    runs = per_seed(name)
    assert sorted(set(runs["run"])) == sorted([ab.BASELINE, row_name]) and sorted(set(runs["seed"])) == list(range(5))
    base = ab.BASELINE
    conv4 = per_seed("ablations_depth_50k_conv4").query("run == @base").set_index("seed")["val_top1_error"]
    mine = runs.query("run == @base").set_index("seed")["val_top1_error"]
    assert (mine - conv4).abs().max() < 1e-6  # the same five baseline networks, reused
    errors = runs.pivot(index="seed", columns="run", values="val_top1_error")
    deltas = errors[ab.BASELINE] - errors[row_name]
    assert deltas.mean() == pytest.approx(row["measured_top1"], abs=1e-3)
    half = ab.t_critical(5) * row["measured_claim_std"] / math.sqrt(5)
    low, high = row["measured_claim"] - half, row["measured_claim"] + half
    plain = "agrees" if high < 0 else "disagrees" if low > 0 else "inconclusive"
    checks = lrn_checks(name)
    assert sorted(set(checks["seed"])) == list(range(5))
    assert (checks.query("layer == 'features.lrn1'")["state"] == "normalises").all()
    if row_name == "lrn":
        assert row["verdict"] == plain and row["testable"] is None
        return
    colour = committed_beside(name, "colour", "the PCA colour check of the trained networks")
    without = colour.query("network == 'without'").sort_values("seed")
    assert list(without["seed"]) == list(range(5)) and (without["images"] == 10000).all()
    assert sorted(colour.query("network == 'baseline'")["seed"]) == list(range(5))
    assert without["rise"].mean() == pytest.approx(row["mechanism"], abs=1e-3)
    assert without["rise"].std() == pytest.approx(row["mechanism_std"], abs=1e-3)
    # the clean scores are the runs' own validation errors (fp32 here, bf16 in training: within a few images)
    own = runs.query("run == @row_name").set_index("seed")["val_top1_error"]
    assert (without.set_index("seed")["clean_error"] - own).abs().max() < 0.2
    active = row["mechanism"] - ab.t_critical(5) * row["mechanism_std"] / math.sqrt(5) > 0
    assert row["testable"] == active
    assert row["verdict"] == (plain if active else "inconclusive")


def test_the_committed_50k_table_of_the_rows_that_agreed_at_5000_images_is_the_planned_run():
    """The plan committed before the runs (docs/ablations.md, 17f485a): all 50,000 images, seeds 0-4 and no others,
    the conv4 table's baselines reused; each row's delta and verdict follow from the per-seed numbers beside it by
    the 95% t rule; dropout and crops/flips are judged on the overfitting gap only where the network without them
    overfits; the views check beside the 10-crop and ensemble rows is the same networks' and matches their deltas."""
    name = "ablations_50k"
    command = ("alexnet-book ablate --study --limit 50000 --seeds 0 1 2 3 4 "
               "--only two_towers,dropout,crops_flips,ten_crop,ensemble,dropout_iterations "
               "--out results/ablations_50k.csv")
    table = committed_table(name, command)
    assert table.attrs["command"] == command and table.attrs["precision"] == "bf16 (20 runs)"
    rows = table.set_index("ablation")
    assert sorted(rows.index) == sorted(["two_towers", "dropout", "crops_flips", "ten_crop", "ensemble",
                                         "dropout_iterations"])
    assert all("50000 images/split" in b for b in table["budget"])
    assert (rows.drop(index="ensemble")["n"] == 5).all() and rows.loc["ensemble", "n"] == 10  # 10 pairs of 5 seeds
    runs = per_seed(name)
    base = ab.BASELINE
    assert sorted(set(runs["run"])) == sorted([base, "two_towers", "dropout", "crops_flips"])
    assert sorted(set(runs["seed"])) == list(range(5)) and len(runs) == 20
    conv4 = per_seed("ablations_depth_50k_conv4").query("run == @base").set_index("seed")["val_top1_error"]
    assert (runs.query("run == @base").set_index("seed")["val_top1_error"] - conv4).abs().max() < 1e-6

    def judged(values, expect_lower=True):
        values = [float(v) for v in values]
        mean, sd = sum(values) / len(values), statistics.stdev(values)
        half = ab.t_critical(len(values)) * sd / math.sqrt(len(values))
        low, high = mean - half, mean + half
        on_side, other_side = (high < 0, low > 0) if expect_lower else (low > 0, high < 0)
        return "agrees" if on_side else "disagrees" if other_side else "inconclusive"

    val = runs.pivot(index="seed", columns="run", values="val_top1_error")
    gap = val - runs.pivot(index="seed", columns="run", values="train_eval_error")
    deltas = val[base] - val["two_towers"]
    assert deltas.mean() == pytest.approx(rows.loc["two_towers", "measured_claim"], abs=1e-3)
    assert rows.loc["two_towers", "verdict"] == judged(deltas)
    for row in ("dropout", "crops_flips"):
        assert (val[base] - val[row]).mean() == pytest.approx(rows.loc[row, "measured_top1"], abs=1e-3)
        claim = gap[base] - gap[row]
        assert claim.mean() == pytest.approx(rows.loc[row, "measured_claim"], abs=0.05)  # probe errors to 0.1 point
        overfits = judged(gap[row], expect_lower=False) == "agrees"
        assert rows.loc[row, "testable"] == overfits
        assert rows.loc[row, "verdict"] == (judged(claim) if overfits else "inconclusive")
    views = committed_beside(name, "views", "the views check of the 10-crop and ensemble rows")
    ten = views[views["row"] == "ten_crop"]
    pairs = views[views["row"] == "ensemble"]
    assert sorted(ten["seeds"].astype(str)) == [str(s) for s in range(5)] and len(pairs) == 10
    assert (views["images"] == 10000).all() and (views["one_right"] <= views["changed"]).all()
    # the ensemble row's pairs are these pairs (the same networks, the same fp32 softmax)
    assert pairs["delta"].mean() == pytest.approx(rows.loc["ensemble", "measured_top1"], abs=1e-3)
    assert rows.loc["ensemble", "verdict"] == judged(pairs["delta"])
    # the 10-crop row was scored in training (bf16), the check in fp32: the same networks, within a few images
    assert ten["delta"].mean() == pytest.approx(rows.loc["ten_crop", "measured_top1"], abs=0.2)
    checks = lrn_checks(name)
    assert (checks.query("layer == 'features.lrn1'")["state"] == "normalises").all()


@pytest.mark.parametrize("name, numerics", [("ablations_lrn_fourlayer_50k", "fp32"),
                                            ("ablations_lrn_fourlayer_50k_bf16", "bf16")])
def test_the_committed_four_layer_lrn_runs_use_all_of_cifar10_with_lrn_at_work(name, numerics):
    """§3.3's CIFAR-10 claim (13% -> 11%) on the paper's own data set: all 50,000 training images, the 10,000 test
    images for validation, 4 seeds of the four-layer net with and without LRN (no AlexNet trained), the verdict
    the 95% t rule applied to the file's own numbers, and the LRN check of every trained "with" network beside it:
    both LRN layers normalise in every seed, so "without LRN" removes something that acts.  Two tables, the same
    command in fp32 (the numerics of the run decided in advance) and in bf16 (precision="auto" on a CPU with
    native bf16), each with its own per-seed numbers."""
    command = f"alexnet-book ablate --study --limit 50000 --seeds 0 1 2 3 --only lrn_fourlayer --out results/{name}.csv"
    table = committed_table(name, command)
    assert table.attrs["command"].startswith(command)
    assert list(table["ablation"]) == ["lrn_fourlayer"] and "50000 images/split" in table.loc[0, "budget"]
    row = table.iloc[0]
    assert row["n"] == 4 and int(table.attrs["runs"]) == 8  # with and without LRN per seed, nothing else
    assert table.attrs["precision"] == f"{numerics} (8 runs)"
    half = ab.t_critical(4) * row["measured_claim_std"] / 2
    low, high = row["measured_claim"] - half, row["measured_claim"] + half
    assert row["verdict"] == ("agrees" if high < 0 else "disagrees" if low > 0 else "inconclusive")
    # the mean ± std, seed by seed: the committed per-run numbers give the table's row back
    runs = per_seed(name)
    assert sorted(set(runs["run"])) == ["lrn_fourlayer", "lrn_fourlayer:with"] and len(runs) == 8
    errors = runs.pivot(index="seed", columns="run", values="val_top1_error")
    deltas = errors["lrn_fourlayer:with"] - errors["lrn_fourlayer"]
    assert list(errors.index) == [0, 1, 2, 3]
    assert deltas.mean() == pytest.approx(row["measured_claim"], abs=1e-3)
    assert deltas.std() == pytest.approx(row["measured_claim_std"], abs=1e-3)
    assert table.attrs["precision"] == f"{runs['precision'].iloc[0]} (8 runs)" and runs["precision"].nunique() == 1
    checks = lrn_checks(name)
    assert set(checks["network"]) == {"lrn_fourlayer:with"} and sorted(set(checks["seed"])) == [0, 1, 2, 3]
    assert sorted(set(checks["layer"])) == ["features.lrn1", "features.lrn2"]
    assert (checks["state"] == "normalises").all()


def test_the_capacity_check_on_every_training_image_reads_the_saved_networks(tmp_path, monkeypatch, capsys):
    """`ablate --out` with a middle-conv row scores each seed's saved baseline and network without the layer on all
    its training images (``trained_capacity``), writes <stem>_capacity.csv and prints the verdict line.  With the
    runs' own probe covering every training image, both ways of scoring agree exactly: the saved networks are the
    trained ones and the split is the one they were trained on."""
    import io

    import pandas as pd

    monkeypatch.setenv("ALEXNET_BOOK_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("ALEXNET_BOOK_FIGURES", str(tmp_path / "figures"))
    out = tmp_path / "results" / "depth.csv"
    code = ablate.main(["--smoke", "--only", "remove_conv3", "--seeds", "0", "1", "--store", str(tmp_path / "r.jsonl"),
                        "--runs", str(tmp_path / "runs"), "--set", "train_eval_size=128", "--set", 'precision="fp32"',
                        "--out", str(out), "--no-progress", "--no-figure", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    path = out.with_name("depth_capacity.csv")
    text = path.read_text()
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert header[0].startswith("# command: alexnet-book ablate --smoke --only remove_conv3")
    assert "probe_delta: the same delta on the 128 fixed training images" in header[1]
    capacity = pd.read_csv(io.StringIO("".join(l for l in text.splitlines(True) if not l.startswith("#"))))
    assert list(capacity["seed"]) == [0, 1] and set(capacity["ablation"]) == {"remove_conv3"}
    assert (capacity["images"] == 128).all()  # the smoke preset's 128 training images, every one of them
    assert ((capacity[["error_with", "error_without"]] >= 0) & (capacity[["error_with", "error_without"]] <= 100)).all().all()
    assert (capacity["delta"] - (capacity["error_with"] - capacity["error_without"])).abs().max() < 1e-3
    assert (capacity["delta"] - capacity["probe_delta"]).abs().max() < 1e-3  # the probe here is the whole split
    (summary,) = ab.capacity_summary(capacity)
    line = ab.capacity_text(summary)
    assert line in printed and f"# {line}" in header
    assert line.startswith("remove_conv3, all 128 training images: error with the layer − without")


def test_a_row_with_its_own_with_run_trains_no_baseline_and_its_lrn_is_checked(tmp_path, monkeypatch, capsys):
    """`--only lrn_fourlayer` compares the four-layer net with and without LRN: no AlexNet baseline is planned or
    trained, and `--out` writes the LRN check of the trained four-layer networks (<stem>_lrn.csv, one row per seed
    and LRN layer, its summary lines in the header and printed), so the row says whether LRN was at work."""
    import io

    import pandas as pd

    assert [n for n, _, _ in ab.plan_runs("synthetic", "scaled", 1, seeds=(0, 1), ablations="lrn_fourlayer")] == [
        "lrn_fourlayer:with", "lrn_fourlayer"] * 2
    assert [n for n, _, _ in ab.plan_runs("synthetic", "scaled", 1, seeds=(0,), ablations="lrn_fourlayer,lrn")] == [
        ab.BASELINE, "lrn_fourlayer:with", "lrn_fourlayer", "lrn"]  # the LRN row still needs the baseline
    monkeypatch.setenv("ALEXNET_BOOK_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("ALEXNET_BOOK_FIGURES", str(tmp_path / "figures"))
    out = tmp_path / "results" / "four.csv"
    store = ResultsStore(tmp_path / "r.jsonl")
    code = ablate.main(["--smoke", "--only", "lrn_fourlayer", "--seeds", "0", "1", "--store", str(store.path),
                        "--runs", str(tmp_path / "runs"), "--out", str(out), "--no-progress", "--no-figure", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    trained = [json.loads(line)["config"]["model"] for line in store.path.read_text().splitlines()]
    assert trained == ["fourlayer"] * 4  # with and without LRN, two seeds; no AlexNet
    text = out.with_name("four_lrn.csv").read_text()
    header = [line[2:] for line in text.splitlines() if line.startswith("# ")]
    checks = pd.read_csv(io.StringIO("".join(l for l in text.splitlines(True) if not l.startswith("#"))))
    assert list(checks["network"].unique()) == ["lrn_fourlayer:with"]
    assert sorted(zip(checks["seed"], checks["layer"])) == [(s, f"features.lrn{i}") for s in (0, 1) for i in (1, 2)]
    assert set(checks["state"]) <= {"normalises", "weak", "constant"} and (checks["divisor_cv"] >= 0).all()
    lines = mechanisms.lrn_summary(checks)
    assert len(lines) == 2 and all(line in header and line in printed for line in lines)
    assert lines[0].startswith("lrn_fourlayer:with features.lrn1: ") and "of 2 seeds" in lines[0]
    # the per-seed numbers behind the table's mean ± std, each the store's own (in %)
    text = out.with_name("four_seeds.csv").read_text()
    assert text.startswith("# command: alexnet-book ablate --smoke --only lrn_fourlayer")
    per_seed = pd.read_csv(io.StringIO(text), comment="#")
    assert list(zip(per_seed["run"], per_seed["seed"])) == [("lrn_fourlayer:with", 0), ("lrn_fourlayer", 0),
                                                           ("lrn_fourlayer:with", 1), ("lrn_fourlayer", 1)]
    stored = [json.loads(line) for line in store.path.read_text().splitlines()]
    for row, run in zip(per_seed.itertuples(), stored):  # the store holds them in training order
        assert row.val_top1_error == pytest.approx(100 * run["metrics"]["val_top1_error"], abs=1e-4)
        assert row.precision == run["precision"] and row.seed == run["seed"]
    table = ab.load_csv(out)
    deltas = (per_seed.query("run == 'lrn_fourlayer:with'")["val_top1_error"].to_numpy()
              - per_seed.query("run == 'lrn_fourlayer'")["val_top1_error"].to_numpy())
    assert table.loc[0, "measured_top1"] == pytest.approx(deltas.mean(), abs=1e-3)


def test_the_lrn_summary_counts_states_per_network_and_layer():
    import pandas as pd

    frame = pd.DataFrame(dict(seed=[0, 0, 1, 1], layer=["a", "b", "a", "b"], state=["normalises", "weak",
                                                                                  "normalises", "constant"],
                              divisor_cv=[0.08, 0.02, 0.10, 0.001], divisor_p99_rel=[1.4, 1.1, 1.5, 1.0]))
    assert mechanisms.lrn_summary(frame) == [
        "baseline a: normalises in 2 of 2 seeds (divisor CV 8–10%; top 1% divided by 1.40–1.50× the constant)",
        "baseline b: weak in 1 of 2 seeds, constant in 1 of 2 seeds (divisor CV 0–2%; top 1% divided by "
        "1.00–1.10× the constant)"]
    assert mechanisms.lrn_summary(pd.DataFrame()) == []
    same = frame.assign(divisor_cv=[0.171, 0.02, 0.168, 0.001])  # both ends print as 17: one number, not "17–17"
    assert "(divisor CV 17%; top 1% divided by 1.40–1.50×" in mechanisms.lrn_summary(same)[0]


def test_the_capacity_summary_is_the_verdict_rule_on_the_deltas():
    import pandas as pd
    from scipy import stats

    deltas = [-1.2, -0.4, -2.0, -0.9, -1.5]
    frame = pd.DataFrame(dict(ablation="remove_conv4", seed=range(5), images=20000, delta=deltas))
    (s,) = ab.capacity_summary(frame)
    mean, sd = sum(deltas) / 5, pd.Series(deltas).std()
    low, high = stats.t.interval(0.95, 4, loc=mean, scale=sd / math.sqrt(5))
    assert s["n"] == 5 and s["mean"] == pytest.approx(mean) and s["std"] == pytest.approx(sd)
    assert (s["low"], s["high"]) == (pytest.approx(low), pytest.approx(high)) and high < 0 and s["used"]
    assert ab.capacity_text(s).endswith(": capacity used")
    spread = frame.assign(delta=[-4.2, -0.6, 1.3, 2.6, -0.2])  # an interval holding zero: not shown used
    (s,) = ab.capacity_summary(spread)
    assert s["low"] < 0 < s["high"] and not s["used"]
    assert ab.capacity_text(s).endswith(": capacity not shown used")
    assert ab.capacity_summary(pd.DataFrame()) == []


@pytest.mark.parametrize("name, images", [("ablations_depth_20k_conv4", 20000), ("ablations_depth_50k_conv4", 50000)])
def test_the_committed_capacity_check_on_the_whole_training_split_matches_its_table(name, images):
    """results/<name>_capacity.csv comes from the table's own runs: the same command, one row per seed, every
    training image scored, the probe deltas averaging to the table's train_delta, and the header's verdict line
    recomputed from the rows."""
    import pandas as pd

    path = ab.results_dir() / f"{name}_capacity.csv"
    if not path.exists():
        pytest.skip(f"{path} not committed yet")
    table = committed_table(name)
    text = path.read_text()
    assert text.splitlines()[0] == f"# command: {table.attrs['command']}"
    capacity = pd.read_csv(path, comment="#")
    row = table.iloc[0]
    assert sorted(capacity["seed"]) == list(range(int(row["n"]))) and set(capacity["ablation"]) == {"remove_conv4"}
    assert (capacity["images"] == images).all()
    assert capacity["probe_delta"].mean() == pytest.approx(row["train_delta"], abs=2e-3)
    assert (capacity["delta"] - (capacity["error_with"] - capacity["error_without"])).abs().max() < 2e-4
    (summary,) = ab.capacity_summary(capacity)
    assert f"# {ab.capacity_text(summary)}\n" in text
