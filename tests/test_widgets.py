"""The ablation panel, driven as a reader would: set values, click Run, read the widgets back."""
from __future__ import annotations

import dataclasses
import html
from types import SimpleNamespace

import pytest

from alexnet_book import ablations as ab
from alexnet_book.runs import ResultsStore
from alexnet_book.widgets import AblationPanel, parse_seeds


class FakeTrain:
    """A fast stand-in for train.train: errors depend on the change; finished runs go to and come from the store."""

    def __init__(self):
        self.trained = []

    def __call__(self, config, *, progress=True, store=None, **kwargs):
        row = store.find(config.hash())
        if row is not None:
            return SimpleNamespace(metrics=row["metrics"], reused=True)
        top1 = 0.30 + (0.014 if config.model_options.get("lrn", "x") is None else 0.0) \
            + (0.02 if config.model_options.get("dropout") == 0.0 else 0.0) + 0.001 * config.seed
        metrics = dict(val_top1_error=top1, val_top5_error=top1 / 3, val_top1_error_10crop=top1 - 0.015,
                       val_top5_error_10crop=top1 / 3 - 0.01)
        store.add(dict(config_hash=config.hash(), config=dataclasses.asdict(config), metrics=metrics))
        self.trained.append(config)
        return SimpleNamespace(metrics=metrics, reused=False)


def never_train(config, **kwargs):
    raise AssertionError("the panel trained although it should not have")


def no_check(name):
    return None


@pytest.fixture
def store(tmp_path):
    return ResultsStore(tmp_path / "results.jsonl")


def make_panel(store, train_fn, **kwargs):
    kwargs = {"data": "synthetic", "epochs": 1, "seeds": "0", "ablations": "lrn,dropout,ten_crop", **kwargs}
    kwargs.setdefault("committed", None)  # no committed table: what is shown comes from the store alone
    return AblationPanel(train_fn=train_fn, store=store, check_data=no_check, **kwargs)


def test_parse_seeds():
    assert parse_seeds("0 1 2") == (0, 1, 2)
    assert parse_seeds("3, 1,3") == (3, 1)
    assert parse_seeds("0-3") == (0, 1, 2, 3)
    for bad in ("", "a", "1.5", "3-1"):
        with pytest.raises(ValueError):
            parse_seeds(bad)


def test_run_fills_progress_table_and_chart_as_runs_finish(store):
    fake = FakeTrain()
    panel = make_panel(store, fake)
    assert panel.table.value == "" and panel.chart.outputs == ()  # an empty store: nothing to show yet
    panel.seeds.value = "0 1"
    tables = []
    panel.table.observe(lambda change: tables.append(change["new"]), names="value")
    panel.run_button.click()
    assert len(fake.trained) == 6  # baseline, lrn, dropout for two seeds
    assert panel.progress.max == 6 and panel.progress.value == 6 and panel.progress.bar_style == "success"
    assert "6 of 6 runs" in panel.status.value and "done" in panel.message.value
    assert len(tables) >= 6  # the table was redrawn after every run
    assert "−1.4" in panel.table.value and "−2.0" in panel.table.value and "ten_crop" in panel.table.value
    assert panel.chart.outputs and "image/png" in panel.chart.outputs[0]["data"]
    assert panel.last_table.set_index("ablation").loc["lrn", "n"] == 2
    assert not panel.run_button.disabled


def test_cached_runs_appear_when_the_panel_is_shown(store):
    make_panel(store, FakeTrain()).run_button.click()
    panel = make_panel(store, never_train)
    assert "3 of 3 runs in the results store" in panel.status.value
    assert panel.progress.value == 3 and "−1.4" in panel.table.value and panel.chart.outputs
    panel.ablations.value = ("lrn",)  # a narrower choice still shows what is cached
    assert "2 of 2 runs" in panel.status.value and "dropout" not in panel.table.value
    panel.epochs.value = 5  # another budget: nothing cached for it
    assert "0 of 2 runs" in panel.status.value and panel.table.value == ""
    panel.epochs.value = 1
    panel.run_button.click()  # everything reused: never_train is not called
    assert "done" in panel.message.value and "reused" in panel.status.value


@pytest.mark.parametrize("setting, value, words", [
    ("ablations", (), "select at least one ablation"),
    ("epochs", 0, "the budget is 0"),
    ("seeds", "zero", "seeds must be whole numbers"),
    ("seeds", " ", "at least one seed"),
    ("limit", -1, "must not be negative"),
])
def test_invalid_choices_give_a_message_not_a_traceback(store, setting, value, words):
    panel = make_panel(store, never_train)
    setattr(getattr(panel, setting), "value", value)
    panel.run_button.click()
    assert words in panel.message.value and "Traceback" not in panel.message.value
    assert panel.progress.value == 0 and not panel.run_button.disabled


def test_missing_data_is_reported_in_the_panel(store):
    def check_data(name):
        raise FileNotFoundError(f"{name}: not found under data/; set ALEXNET_BOOK_CIFAR10 to the archive")

    panel = AblationPanel(train_fn=never_train, store=store, check_data=check_data, data="cifar10")
    panel.run_button.click()
    assert "cifar10: not found" in panel.message.value and "ALEXNET_BOOK_CIFAR10" in panel.message.value


def test_a_failing_run_shows_one_line_and_keeps_the_finished_ones(store):
    fake = FakeTrain()

    def flaky(config, **kwargs):
        if config.model_options.get("dropout") == 0.0:
            raise RuntimeError("CUDA out of memory")
        return fake(config, **kwargs)

    panel = make_panel(store, flaky)
    panel.run_button.click()
    assert "RuntimeError: CUDA out of memory" in panel.message.value
    assert panel.progress.bar_style == "danger" and panel.progress.value == 2
    assert "−1.4" in panel.table.value  # the runs that finished are shown
    assert not panel.run_button.disabled


def test_missing_cifar10_found_by_the_data_module_is_a_message(store, tmp_path, monkeypatch):
    monkeypatch.setenv("ALEXNET_BOOK_CIFAR10", str(tmp_path / "nowhere.tar.gz"))
    panel = AblationPanel(train_fn=never_train, store=store, data="cifar10", ablations="lrn")
    panel.run_button.click()
    assert "nowhere.tar.gz" in panel.message.value and panel.progress.value == 0


def test_a_preset_panel_runs_the_presets_configuration(store):
    fake = FakeTrain()
    panel = AblationPanel.from_preset("smoke", train_fn=fake, store=store, check_data=no_check, ablations="lrn")
    assert panel.settings()["budget_steps"] == ab.PRESETS["smoke"]["budget_steps"]
    panel.run_button.click()
    assert [c.max_steps for c in fake.trained] == [ab.PRESETS["smoke"]["budget_steps"]] * 2
    assert all(c.data == "synthetic" and c.limit == ab.PRESETS["smoke"]["limit"] for c in fake.trained)
    with pytest.raises(ValueError, match="unknown preset"):
        AblationPanel.from_preset("huge")


def test_labels_have_room_for_their_descriptions(store):
    panel = make_panel(store, never_train)
    width = float(panel.steps.style.description_width.removesuffix("em"))
    for control in (panel.data, panel.scale, panel.epochs, panel.steps, panel.limit, panel.seeds, panel.device):
        # ~0.6em a character in JupyterLab's 13px UI font; "steps (0: epochs)" needs about 10em
        assert control.style.description_width == panel.steps.style.description_width
        assert 0.6 * len(control.description) <= width, control.description


def test_table_columns_are_padded_apart(store):
    make_panel(store, FakeTrain()).run_button.click()
    panel = make_panel(store, never_train)
    page = panel.table.value
    assert "<th" in page and ">n</th>" in page and ">verdict</th>" in page
    # every cell carries its own padding (inline: no stylesheet needed in Lab, the classic notebook or a page)
    assert page.count("<td") == page.count("padding:2px 10px") - page.count("<th ")
    assert 'text-align:right">2</td>' not in page and 'text-align:right">1</td>' in page  # n, one seed


def test_the_committed_study_is_shown_on_arrival(store):
    study = ab.results_dir() / "ablations_study.csv"
    panel = AblationPanel.from_preset("quick", train_fn=never_train, store=store, check_data=no_check)
    assert panel.status.value.startswith("0 of ")  # nothing of the quick settings in this (empty) store...
    assert panel.committed is not None and panel.table.value and panel.chart.outputs  # ...so the study is shown
    assert "results/ablations_study.csv" in panel.source.value and "press Run" in panel.source.value
    assert "12 epochs" in panel.source.value and "alexnet-book ablate --study" in panel.source.value
    expected = ab.display_table(ab.load_csv(study))
    for verdict in set(expected["verdict"]):  # with what an inconclusive row's seeds could detect
        assert html.escape(verdict) in panel.table.value
    assert "80% power" in panel.table.value and ">size here</th>" in panel.table.value
    # the reader's own runs replace it, and the line says so
    fake = FakeTrain()
    panel = make_panel(store, fake, committed=study)
    assert "committed study" in panel.source.value
    panel.train_fn = fake
    panel.run_button.click()
    assert "your runs" in panel.source.value and "−1.4" in panel.table.value
    assert "dropout_iterations" not in panel.table.value  # the study's rows are gone


def test_no_committed_table_shows_nothing(store, tmp_path):
    panel = make_panel(store, never_train, committed=tmp_path / "missing.csv")
    assert panel.committed is None and panel.table.value == "" and panel.source.value == ""
