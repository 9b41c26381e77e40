"""Every number the paper states, in one place (Krizhevsky, Sutskever & Hinton, NIPS 2012).

The notebooks, the ablation tables and the tests read the paper's numbers from here and nowhere else.
Section numbers are the paper's; "CC2" is Krizhevsky's cuda-convnet2, "Caffe" is BVLC ``bvlc_alexnet``.
"""
from __future__ import annotations

from dataclasses import dataclass

TITLE = "ImageNet Classification with Deep Convolutional Neural Networks"
AUTHORS = "Krizhevsky, Sutskever & Hinton"
VENUE = "NIPS 2012"

# §3.2, §3.5, Fig. 2 -- the two-GPU network.  (name, out channels, kernel, stride, pad, groups)
CONV_LAYERS = (
    ("conv1", 96, 11, 4, 0, 1),
    ("conv2", 256, 5, 1, 2, 2),
    ("conv3", 384, 3, 1, 1, 1),
    ("conv4", 384, 3, 1, 1, 2),
    ("conv5", 256, 3, 1, 1, 2),
)
FC_LAYERS = (("fc6", 4096), ("fc7", 4096), ("fc8", 1000))
INPUT_SIZE = 224  # as printed; 227 is what makes 55×55 arithmetic work without padding (see model.py)
CONV1_MAP = 55

PARAMETERS = {
    "conv1": 34_944, "conv2": 307_456, "conv3": 885_120, "conv4": 663_936, "conv5": 442_624,
    "fc6": 37_752_832, "fc7": 16_781_312, "fc8": 4_097_000,
}
TOTAL_PARAMETERS = 60_965_224
ONE_TOWER_PARAMETERS = 59_798_312  # §3.2 footnote net, as built by AlexNet(towers=1)
MMAC = {  # forward multiply-accumulates per image, millions
    "conv1": 105.4, "conv2": 223.9, "conv3": 149.5, "conv4": 112.1, "conv5": 74.8,
    "fc6": 37.7, "fc7": 16.8, "fc8": 4.1,
}
TOTAL_GMAC = 0.724
FIG2_NEURONS = (253_440, 186_624, 64_896, 64_896, 43_264, 4096, 4096, 1000)  # as printed; 253,440 ≠ 55·55·96

# §3.3 local response normalisation: b_i = a_i / (k + α Σ a_j²)^β
LRN = {"k": 2.0, "n": 5, "alpha": 1e-4, "beta": 0.75}
SEED_LRN_BETA = 1.5  # the seed text's β (an erratum; paper and seed code say 0.75)

# §3.4 overlapping pooling
POOL = {"kernel": 3, "stride": 2}
NON_OVERLAPPING_POOL = {"kernel": 2, "stride": 2}

# §4.2 dropout
DROPOUT = 0.5

# §5 training recipe
RECIPE = {
    "batch_size": 128,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "lr": 0.01,
    "lr_drop_factor": 10.0,
    "lr_drops": 3,
    "epochs": 90,
    "init_std": 0.01,
    "bias_one_layers": ("conv2", "conv4", "conv5", "fc6", "fc7"),
    "days": "5-6 on two GTX 580 3GB",
}

# §2, §4.1 data and augmentation
PREPROCESS = {"rescale": 256, "crop": 224, "pca_alpha_std": 0.1}
TEST_CROPS = 10  # §4.1: four corners + centre, and their horizontal reflections


@dataclass(frozen=True)
class Claim:
    """One in-text claim of the paper: what was changed, what the paper measured, where it says so."""

    name: str
    description: str
    top1: float | None  # change in top-1 error (percentage points) credited to the design choice; negative = better
    top5: float | None
    other: str  # the claim in words when it is not a top-1/top-5 delta
    section: str


CLAIMS = (
    Claim("relu_vs_tanh", "ReLU instead of tanh (four-layer CIFAR-10 net, epochs to 25% training error)",
          None, None, "6x faster to 25% training error", "§3.1, Fig. 1"),
    Claim("two_towers", "two GPUs vs the one-GPU net with half the kernels", -1.7, -1.2, "", "§3.2"),
    Claim("lrn", "local response normalisation", -1.4, -1.2, "CIFAR-10 four-layer net: 13% -> 11% test error", "§3.3"),
    Claim("overlapping_pool", "overlapping pooling (z=3, s=2) vs z=2, s=2", -0.4, -0.3, "", "§3.4"),
    Claim("pca_colour", "PCA colour augmentation", -1.0, None, "reduces top-1 error by over 1%", "§4.1"),
    Claim("crops_flips", "random crops and horizontal flips", None, None, "without: substantial overfitting", "§4.1"),
    Claim("dropout", "dropout 0.5 in fc6, fc7", None, None,
          "without: substantial overfitting; with: about 2x iterations to converge", "§4.2"),
    Claim("middle_conv", "all five conv layers vs removing a middle one", -2.0, None,
          "removing any middle conv layer costs about 2% top-1", "§7"),
    Claim("weight_decay", "weight decay 5e-4", None, None,
          "important for the model to learn: not merely a regularizer, it reduces the model's training error", "§5"),
    Claim("ten_crop", "10-crop test vs centre crop (ILSVRC-2010)", -1.5, -1.3, "39.0 -> 37.5 / 18.3 -> 17.0", "§6"),
    Claim("lrn_cifar", "LRN in a four-layer CIFAR-10 net", -2.0, None, "13% -> 11% test error (four-layer net)",
          "§3.3"),
    Claim("dropout_iterations", "dropout's cost in training time", None, None,
          "dropout roughly doubles the number of iterations required to converge", "§4.2"),
    Claim("ensemble", "averaging the predictions of 5 CNNs vs 1 (ILSVRC-2012 val)", -2.6, -1.8,
          "1 CNN 40.7/18.2 -> 5 CNNs 38.1/16.4", "§6, Table 2"),
)
CLAIM = {c.name: c for c in CLAIMS}

# §6 Table 1 (ILSVRC-2010 test) and Table 2 (ILSVRC-2012), error rates in percent.
TABLE1 = (  # model, top-1, top-5
    ("Sparse coding", 47.1, 28.2),
    ("SIFT + FVs", 45.7, 25.7),
    ("CNN", 37.5, 17.0),
)
TABLE1_CNN_NO_10_PATCH = (39.0, 18.3)
TABLE2 = (  # model, top-1 (val), top-5 (val), top-5 (test)
    ("SIFT + FVs", None, None, 26.2),
    ("1 CNN", 40.7, 18.2, None),
    ("5 CNNs", 38.1, 16.4, 16.4),
    ("1 CNN*", 39.0, 16.6, None),
    ("7 CNNs*", 36.7, 15.4, 15.3),
)

# §6 of PAPER.md: published reproductions, error rates in percent (single centre crop unless noted).
REPRODUCTIONS = (
    # name, top-1 error, top-5 error, note
    ("torchvision alexnet IMAGENET1K_V1", 100 - 56.522, 100 - 79.066, "one-weird-trick single tower, centre crop"),
    ("Caffe bvlc_alexnet", 100 - 57.1, 100 - 80.2, "groups 2, LRN k=1, 227 crops, centre crop"),
    ("cuda-convnet2 one-GPU, 1 view", 42.5, 19.8, "90 epochs"),
    ("cuda-convnet2 one-GPU, 10 views", 40.4, 18.2, "90 epochs"),
    ("faithful PyTorch reproduction", 39.9, 18.7, "ILSVRC-2010, groups, LRN, PCA, 10-crop"),
)
TORCHVISION_PARAMETERS = 61_100_840
TORCHVISION_GMAC = 0.714

# Fig. 3 / Fig. 4
FIG3_KERNELS_PER_TOWER = 48
FIG4_NEIGHBOURS = 6
FIG1_TARGET_TRAIN_ERROR = 0.25
FIG1_SPEEDUP = 6.0

# Throughput references (§5 and PAPER.md §7)
IMAGES_PER_SECOND_2012 = 230

ERRATA = (
    ("input 224×224", "(224−11)/4+1 is not an integer; 227 (Caffe) or a ceil/pad rule gives 55×55", "02_architecture"),
    ("Fig. 2 first layer 253,440 neurons", "55·55·96 = 290,400", "02_architecture"),
    ("LRN α", "printed formula has no /n; the authors' code divides α by n", "01_layers"),
    ("seed text LRN β=1.5", "paper and seed code use β=0.75", "01_layers"),
    ("seed listing", "neither nn.Sequential( is closed; unpadded, pool5 is 1×1 (224) or 2×2 (227), not the 6×6 that "
     "Linear(256 * 6 * 6) needs; no ReLU, no dropout; LRN before ReLU; no groups", "02_architecture"),
    ("seed text LRN sum with α/n", "the paper prints α on the raw sum; α/n is the authors' code's (and torch's)",
     "02_architecture"),
    ("bias init 1", "Caffe found it gave flat loss and used 0.1", "04_training"),
)
