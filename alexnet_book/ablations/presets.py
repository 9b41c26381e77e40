"""The ablations as data: each design choice of the paper, the change that removes it, the paper's number for
it (``ABLATIONS``), what its sign is judged on (``MEASURES``) and the presets of the command and the notebook."""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import paper

BASELINE = "baseline"


# The preconditions a claim can need (``Ablation.needs``), and what an inconclusive row says where one fails.
# "overfitting": the network without the paper's choice overfits (its own eval-mode gap's 95% interval above zero);
# "capacity": the network with the choice fits its training images better (``train_delta``'s interval below zero),
# i.e. the extra layer's capacity is used at this budget.  ``{train}`` is the measured training-error delta;
# "colour": the networks trained without PCA colour noise are hurt by it (their validation error rises on
# PCA-jittered images, ``mechanism``'s interval above zero; ``runner.trained_colour``), i.e. the noise asks
# something of the network that training with it could teach.  ``{mechanism}`` is that rise.
NEEDS = {
    "overfitting": "nothing overfits without it",
    "capacity": "with it the network fits its training images no better here (training error Δ {train})",
    "colour": "the networks trained without it are not shown hurt by the noise here (validation error rise on "
              "PCA-jittered images {mechanism})",
}


@dataclass(frozen=True)
class Ablation:
    """One design choice of the paper, the change that removes it, and the paper's number for it."""

    name: str
    claim: str | None  # the paper.CLAIMS name when the paper states this claim; None for conventions/errata
    description: str  # what the variant changes, in the paper's words
    section: str
    change: dict = field(default_factory=dict)  # TrainConfig overrides; "model_options" is merged into the model's
    evaluation: bool = False  # True: no retraining, two evaluations of the baseline run (10 crops vs centre)
    words: str = ""  # the paper's statement when it gives no number (or none is in paper.CLAIMS)
    expect_lower: bool = True  # the paper says its choice lowers error (so a negative delta agrees)
    # what the paper's claim is about, and so what its sign is judged on (MEASURES): "val" = validation top-1
    # error; "train" = training error at the end of the budget (§3.1 trains faster, §5 weight decay "reduces the
    # model's training error"); "gap" = validation minus training error, i.e. overfitting (§4.1, §4.2)
    measure: str = "val"
    # TrainConfig overrides applied to both sides of the comparison: the row then has its own "with" run
    # (``name:with``) instead of the baseline, e.g. the four-layer net of §3.3's CIFAR-10 claim
    base_change: dict = field(default_factory=dict)
    # "delta": two runs compared; "iterations": epochs to a common training error, from another row's runs
    # (``uses``); "ensemble": the baseline networks of several seeds averaged (no training of its own)
    kind: str = "delta"
    uses: str | None = None
    # what must hold at the measured budget for the claim to be able to show at all (a key of NEEDS), judged from
    # the runs themselves by ``analysis.ablation_table``; where it does not hold the row is inconclusive
    needs: str | None = None

    @property
    def trains(self) -> bool:
        """Whether the row needs a run of its own (the others read the baseline's or another row's runs)."""
        return not self.evaluation and self.kind == "delta"

    @property
    def with_name(self) -> str:
        """The name of the run with the paper's choice: the baseline, or the row's own ``name:with``."""
        return f"{self.name}:with" if self.base_change else BASELINE

    @property
    def paper_claim(self) -> paper.Claim | None:
        return paper.CLAIM.get(self.claim) if self.claim else None

    @property
    def paper_top1(self) -> float | None:
        return self.paper_claim.top1 if self.paper_claim else None

    @property
    def paper_top5(self) -> float | None:
        return self.paper_claim.top5 if self.paper_claim else None

    @property
    def paper_words(self) -> str:
        return self.paper_claim.other if self.paper_claim and self.paper_claim.other else self.words


ABLATIONS = (
    Ablation("relu_vs_tanh", "relu_vs_tanh", "tanh instead of ReLU in every layer", "§3.1, Fig. 1",
             {"model_options": {"activation": "tanh"}}, measure="train"),
    Ablation("two_towers", "two_towers", "the one-GPU net (half the kernels in conv1-4, no groups) instead of two "
             "towers", "§3.2", {"model_options": {"towers": 1}}),
    Ablation("lrn", "lrn", "no local response normalisation", "§3.3", {"model_options": {"lrn": None}}),
    Ablation("lrn_printed", None, "LRN with α as printed (no /n) instead of the authors' code (α/n)", "§3.3",
             {"model_options": {"lrn": "printed"}}, words="the paper prints the formula; its code divides α by n",
             expect_lower=False),
    Ablation("lrn_caffe", None, "LRN with Caffe's k=1 instead of the paper's k=2", "§3.3",
             {"model_options": {"lrn": "caffe"}}, words="k=2 in the paper; bvlc_alexnet runs with k=1",
             expect_lower=False),
    Ablation("lrn_beta", None, "LRN with the seed text's β=1.5 instead of the paper's β=0.75", "§3.3",
             {"model_options": {"lrn_beta": paper.SEED_LRN_BETA}},
             words="β=0.75 in the paper and the seed code; the seed text's 1.5 is an erratum", expect_lower=False),
    Ablation("overlapping_pool", "overlapping_pool", "non-overlapping pooling (z=2, s=2) instead of z=3, s=2",
             "§3.4", {"model_options": {"pool": "non-overlapping"}}),
    Ablation("pca_colour", "pca_colour", "no PCA colour augmentation", "§4.1", {"pca_colour": False},
             needs="colour"),
    Ablation("crops_flips", "crops_flips", "no random crops or flips (the centre crop only)", "§4.1",
             {"crops_flips": False}, measure="gap", needs="overfitting"),
    Ablation("dropout", "dropout", "no dropout in fc6, fc7", "§4.2", {"model_options": {"dropout": 0.0}},
             measure="gap", needs="overfitting"),
    Ablation("remove_conv3", "middle_conv", "conv3 removed", "§7", {"model_options": {"remove": "conv3"}},
             needs="capacity"),
    Ablation("remove_conv4", "middle_conv", "conv4 removed", "§7", {"model_options": {"remove": "conv4"}},
             needs="capacity"),
    Ablation("weight_decay", "weight_decay", "no weight decay (0 instead of 5e-4)", "§5", {"weight_decay": 0.0},
             measure="train"),
    Ablation("ten_crop", "ten_crop", "the centre crop instead of 10 crops at test time (same trained network)",
             "§6", evaluation=True),
    Ablation("lrn_fourlayer", "lrn_cifar", "no LRN in the four-layer CIFAR-10 net (three 5×5 conv layers, each "
             "max-pooled, and one fc layer; LRN after its first two pools, where cuda-convnet's 18% net has it)",
             "§3.3", {"model_options": {"lrn": None}},
             base_change={"model": "fourlayer", "init_std": None, "init_bias": None,
                          "model_options": {"lrn": "authors", "init": "default"}}),
    Ablation("dropout_iterations", "dropout_iterations", "epochs to a common training error (eval mode) with "
             "dropout ÷ without (the dropout row's runs)", "§4.2", measure="epochs", kind="iterations",
             uses="dropout"),
    Ablation("ensemble", "ensemble", "one network instead of the average of several seeds' baseline networks "
             "(softmax averaged, centre crop; every pair of seeds)", "§6, Table 2", kind="ensemble"),
)
# rows that test a claim of the paper (the study preset runs these; the others are conventions and errata)
CLAIM_ROWS = tuple(a.name for a in ABLATIONS if a.claim and a.expect_lower)
ABLATION = {a.name: a for a in ABLATIONS}

# What each ``Ablation.measure`` judges the paper's sign on; every delta is error(with the paper's choice) −
# error(without it) in percentage points, so negative agrees with the paper.
MEASURES = {
    "val": "validation top-1 error",
    "train": "training error (last epoch, as training saw it: augmented, dropout on)",
    "gap": "overfitting: validation top-1 error − training error, both in eval mode (centre crop, no dropout) "
           "on a fixed training subset (runs with train_eval_size > 0; else the running training error, biased)",
    "epochs": "ratio of epochs to reach a common eval-mode training error (with ÷ without the paper's choice)",
}

# Presets for the CLI and the notebook; "recipe" names config.RECIPES, the shared starting point of every run.
# quick: the whole table on real CIFAR-10 with the scaled network, 1 seed, in 22 minutes on 2 CPU cores (measured;
# the book's CPU recipe -- warm-up, linear decay, input scaled by 1/64 -- with a shorter budget); full: the 224
# network on an ImageNet subset on a GPU with the paper's recipe (§5); smoke: seconds, synthetic data.
PRESETS = {
    "smoke": dict(recipe="smoke", data="synthetic", scale="scaled", budget_epochs=1, budget_steps=2, seeds=(0,),
                  limit=128, device="cpu"),
    "quick": dict(recipe="quick", data="cifar10", scale="scaled", budget_epochs=2, budget_steps=None, seeds=(0,),
                  limit=None, device="auto"),
    "full": dict(recipe="paper", data="imagenet-subset", scale="full", budget_epochs=30, budget_steps=None,
                 seeds=(0,), limit=None, device="auto"),
    # study: every claim of the paper, 3 seeds, at a budget where each can show (docs/ablations.md): the study
    # recipe (5,000 CIFAR-10 training and validation images, 12 epochs, eval-mode overfitting measure)
    "study": dict(recipe="study", data="cifar10", scale="scaled", budget_epochs=12, budget_steps=None,
                  seeds=(0, 1, 2), limit=5_000, device="auto", ablations=CLAIM_ROWS),
}

COLUMNS = ("ablation", "claim", "section", "change", "paper_top1", "paper_top5", "paper_words",
           "measured_top1", "measured_top1_std", "measured_top5", "measured_top5_std", "n", "sign_agrees",
           "data", "scale", "budget", "measure", "measured_claim", "measured_claim_std", "verdict", "testable",
           "without_gap", "train_delta", "train_delta_std", "mechanism", "mechanism_std", "detectable", "seeds_needed",
           "size")
# ``mechanism`` (± ``mechanism_std``): a precondition measured on the trained networks after training, in points
# (the "colour" need: the no-PCA networks' validation error rise on PCA-jittered images); NaN for the other rows
# derived from the columns before them (``analysis.add_power``): recomputed whenever a table is made or read
POWER_COLUMNS = ("detectable", "seeds_needed", "size")


def claims_table():
    """The claims as the paper states them: one row per ablation, its section, change and the paper's number."""
    import pandas as pd

    return pd.DataFrame([dict(ablation=a.name, section=a.section, change=a.description,
                              paper_top1=a.paper_top1, paper_top5=a.paper_top5, paper_words=a.paper_words,
                              run="evaluation of the baseline" if a.evaluation else "retrained")
                         for a in ABLATIONS])
