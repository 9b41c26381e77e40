"""The networks the figures are drawn from (Figs. 3 and 4, §6.1): trained here, or imported (torchvision, BVLC).

``figure_network`` returns one with a line saying what it is (``FigureNetwork``) and how to feed it pixels;
``figure_data`` the images to search and show with it.  ``trained_config`` and ``towers_config`` are the runs
the notebooks and ``regenerate`` train (finished identical runs are reused from the results store).
"""
from __future__ import annotations

from dataclasses import dataclass, field


WEIGHTS_CHOICES = ("trained", "torchvision", "bvlc")
MODES = ("smoke", "quick", "full")


def trained_config(mode: str = "quick", **overrides):
    """The scaled two-tower AlexNet the figures are drawn from when ``weights="trained"`` (§5).

    smoke: a few steps on a few hundred images (any data: the synthetic set when CIFAR-10 is absent), in a
    scratch folder unless ``out_dir`` is given; quick: the book's CPU recipe on real CIFAR-10
    (``config.recipe("quick")``, the run notebook 04 trains, so an identical finished run is reused); full: the
    paper's recipe (``config.recipe("paper")``).
    """
    import tempfile

    from .config import recipe

    if mode == "smoke":
        overrides.setdefault("out_dir", tempfile.mkdtemp(prefix="alexnet-book-smoke-"))
        return recipe("smoke", **{"data": "auto", "limit": 256, "ten_crop": False, "max_steps": 6, **overrides})
    if mode == "quick":
        return recipe("quick", **overrides)
    if mode == "full":
        return recipe("paper", **overrides)
    raise ValueError(f"mode must be one of {MODES}, not {mode!r}")


def towers_config(mode: str = "quick", **overrides):
    """The run repeated over seeds to test "occurs during every run" (§6.1): the figures' network, made affordable.

    smoke: as ``trained_config("smoke")``; quick: the quick recipe cut to 10,000 CIFAR-10 training images and
    8 epochs (a few minutes per seed on a CPU); full: the paper's recipe.
    """
    if mode == "quick":
        return trained_config("quick", **{"limit": 10000, "epochs": 8, "eval_every": 8, "ten_crop": False, **overrides})
    return trained_config(mode, **overrides)


@dataclass
class FigureNetwork:
    """A network to draw figures from, what it is, and how to feed it pixels."""

    model: "torch.nn.Module"
    source: str                 # "trained", "torchvision", "bvlc" or a checkpoint path
    note: str                   # one line for the notebook: where it came from, any fallback taken
    config_hash: str | None = None
    run: object | None = None   # config.RunResult when trained (or reused) here
    tracking: "pandas.DataFrame | None" = None  # per-epoch specialisation, when trained here
    info: dict = field(default_factory=dict)   # weights.load_pretrained's info for imported networks

    @property
    def input_size(self) -> int:
        return int(self.info.get("input_size") or getattr(self.model, "input_size", 32))

    def preprocess(self, splits):
        """A function from uint8 NHWC pixels (from ``splits``) to this network's input batch (§2).

        Our networks: the centre crop minus the training set's mean image, times the run's input scale.
        Imported ones: their own recipe from ``info["preprocessing"]`` -- the centre ``input_size`` crop
        of the stored image, then (pixels/255 · scale − mean) / std per channel.
        """
        import torch

        from .augment import centre_batch

        p = self.info.get("preprocessing") or {}
        if not p or isinstance(p.get("mean"), str):  # ours: the mean image of the data it was trained on
            scale = getattr(self.model, "input_scale", 1.0)
            return lambda images: centre_batch(images, splits.mean_image, splits.crop) * scale
        crop = self.input_size
        mean = torch.tensor(p["mean"], dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(p["std"], dtype=torch.float32).view(1, 3, 1, 1)

        def preprocess(images):
            side = images.shape[1]
            if side < crop:
                raise ValueError(f"stored images are {side} px, smaller than the {crop} px crop this network needs; "
                                 "load the data with scale='full'")
            top = (side - crop) // 2
            x = images[:, top:top + crop, top:top + crop].permute(0, 3, 1, 2).float() / 255.0
            return (x * p["scale"] - mean) / std
        return preprocess


def figure_network(weights: str = "trained", mode: str = "quick", *, track: bool = True, progress: bool = True,
                   config=None, store=None) -> FigureNetwork:
    """The network for Figs. 3 and 4: trained here (scaled, CIFAR-10) or imported ("torchvision", "bvlc", a path).

    When an imported network's files are missing, the message says how to get them and the trained network
    is used instead (``note`` says so).  ``track``: measure the two towers' specialisation after every epoch
    while training here (``towers.SpecialisationTracker``; a reused finished run has no per-epoch record).
    """
    from .towers import SpecialisationTracker

    note = ""
    if weights != "trained":
        from .pretrained import load_pretrained

        try:
            model, info = load_pretrained(weights, progress=progress)
            saved = info.get("config") or {}  # one of our checkpoints carries its input_scale (load_run)
            what = info.get("architecture") or f"{saved.get('model', 'network')} checkpoint"
            return FigureNetwork(model.eval(), str(weights), f"{weights}: {what}", info=info)
        except FileNotFoundError as missing:
            note = f"{weights} weights are not here, so the network trained here is used instead. {missing} "
            if progress:
                print(note)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    from .train import train

    config = config or trained_config(mode)
    tracker = SpecialisationTracker() if track and config.model_options.get("towers", 2) == 2 else None
    run = train(config, progress=progress, callback=tracker, store=store)
    if run.model is None:
        raise ValueError(f"run {run.run_dir} has no saved network; delete the folder and train again")
    tracking = tracker.table() if tracker is not None and tracker.rows else None
    note += (f"the {config.model} network ({config.scale or 'default'} scale) trained on {config.data} "
             f"({'reused finished run' if run.reused else 'trained now'}, {run.metrics.get('epochs')} epochs, "
             f"validation top-1 error {run.metrics.get('val_top1_error', float('nan')):.3f}; run {config.hash()})")
    return FigureNetwork(run.model.eval(), "trained", note.strip(), config.hash(), run, tracking)


def figure_data(network: FigureNetwork, mode: str = "quick", *, progress: bool = True):
    """The images to search and show for Fig. 4, matched to the network (§6.1).

    Trained here: the run's own data set and limit; one of our checkpoints: the data set it names.  Imported
    ImageNet networks: an ImageNet subset at full
    scale ("imagenet-subset", else Imagenette) when one is on disk, else CIFAR-10 upscaled to 256 px
    (loudly: ImageNet networks see CIFAR's ten classes as best they can).  smoke/quick limit the images.
    """
    from .data import load_dataset

    if network.run is not None:
        cfg = network.run.config
        return load_dataset(cfg.data, cfg.root, scale=cfg.scale, limit=cfg.limit, progress=progress)
    saved = network.info.get("config") or {}
    if saved:  # one of our checkpoints: the data set it was trained on
        return load_dataset(saved.get("data", "auto"), saved.get("root"), scale=saved.get("scale"),
                            limit={"smoke": 256, "quick": saved.get("limit"), "full": None}[mode], progress=progress)
    limit = {"smoke": 40, "quick": 2000, "full": None}[mode]
    for name in ("imagenet-subset", "imagenette"):
        try:
            return load_dataset(name, scale="full", limit=limit, progress=progress)
        except (OSError, ValueError):  # not on disk, and no download possible
            continue
    if progress:
        print("no ImageNet subset on disk: searching CIFAR-10 upscaled to 256 px instead "
              "(see data/README.md for Imagenette or an ImageNet subset)")
    return load_dataset("auto", scale="full", limit=limit or 5000, progress=progress)
