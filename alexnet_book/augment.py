"""The paper's data augmentation and test-time crops on whole uint8 batches (§4.1, §2).

§4.1: "The first form of data augmentation consists of generating image translations and horizontal
reflections. We do this by extracting random 224 × 224 patches (and their horizontal reflections) from the
256×256 images ... At test time, the network makes a prediction by extracting five 224 × 224 patches (the four
corner patches and the center patch) as well as their horizontal reflections ... The second form of data
augmentation consists of altering the intensities of the RGB channels in training images. Specifically, we
perform PCA on the set of RGB pixel values throughout the ImageNet training set. To each training image, we add
multiples of the found principal components, with magnitudes proportional to the corresponding eigenvalues
times a random variable drawn from a Gaussian with mean zero and standard deviation 0.1."

Every function takes a uint8 NHWC batch of stored ``S×S`` images (``data.ImageArrays.images[idx]``, on the CPU or
a GPU) and returns float32 NCHW crops in the paper's raw units: pixel values 0-255 minus the per-pixel training
mean (§2).  Crops and flips are one gather over the batch (no Python loop over images); the float work runs on
``device``, so with a GPU only the uint8 crops cross the bus.

Units of the PCA noise.  The eigenvalues λᵢ are those of the RGB covariance in 0-255 units.  Taken literally in
those units, α·λ₁ with α ~ N(0, 0.1) would shift pixels by hundreds of levels, so the formula is read, as the
widely used reproductions do (fb.resnet.torch's ``Lighting(0.1, eigval, eigvec)``, chainercv's
``pca_lighting``), on pixels scaled to [0, 1] and the result rescaled to 0-255:
offset = 255 · P (α ⊙ λ/255²) = P (α ⊙ λ) / 255, so Cov(offset) = P diag(σ² λ² / 255²) Pᵀ with σ = 0.1.
"""
from __future__ import annotations

import torch

from . import paper

PCA_STD = paper.PREPROCESS["pca_alpha_std"]  # §4.1: αᵢ ~ N(0, 0.1)
PCA_UNIT = 255.0  # the formula is applied on [0, 1] pixels, see the module docstring


def _check(images: torch.Tensor, mean_image: torch.Tensor, crop: int) -> int:
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected a uint8 (N, S, S, 3) batch, got {tuple(images.shape)} {images.dtype}")
    size = images.shape[1]
    if images.shape[2] != size or tuple(mean_image.shape) != (size, size, 3):
        raise ValueError(f"images {tuple(images.shape[1:])} and mean image {tuple(mean_image.shape)} must both be "
                         "(S, S, 3)")
    if not 0 < crop <= size:
        raise ValueError(f"crop {crop} must be between 1 and the stored size {size}")
    return size


def crop_windows(images: torch.Tensor, index: torch.Tensor, top: torch.Tensor, left: torch.Tensor,
                 flip: torch.Tensor, crop: int) -> torch.Tensor:
    """Gather ``crop×crop`` windows at (top, left) of images[index], mirrored where ``flip`` (§4.1).

    ``images`` (N, S, S, C) of any dtype; the other arguments are (M,) tensors; returns (M, crop, crop, C).
    One gather kernel over the whole batch (the GPU path; see ``_crops_minus_mean`` for the CPU one).
    """
    dev = images.device
    index, top, left, flip = (t.to(dev) for t in (index, top, left, flip))
    step = torch.arange(crop, device=dev)
    rows = top[:, None] + step  # (M, crop)
    cols = torch.where(flip[:, None], left[:, None] + (crop - 1) - step, left[:, None] + step)
    return images[index[:, None, None], rows[:, :, None], cols[:, None, :]]


def _crops_minus_mean(images, index, top, left, flip, crop, mean_image, offset, device):
    """float32 (M, crop, crop, 3) windows minus the same windows of the mean (+ offset), on ``device``.

    CPU: each window is a strided view; copying it straight into the float output converts and crops in one
    pass, and the mean window is subtracted while the image is still in cache -- measured 15-20x faster on one
    core than the gather kernel.  CUDA: the uint8 windows cross to the GPU and one gather does the rest.
    """
    size = images.shape[1]
    if device.type == "cpu":
        images = images.cpu()
        mean = mean_image.to("cpu", torch.float32)
        mirrored = mean.flip(1)  # the mirrored mean window at (t, l) is mirrored[t:t+c, S-l-c:S-l]
        out = torch.empty(len(index), crop, crop, 3)
        # the same RGB shift for every pixel of an image: one row of (R G B)×crop, added while the image is in cache
        rows = offset.cpu().float().repeat(1, crop) if offset is not None else None
        for i, (n, t, l, f) in enumerate(zip(index.tolist(), top.tolist(), left.tolist(), flip.tolist())):
            window, o = images[n, t:t + crop, l:l + crop], out[i]
            if f:
                o.copy_(window.flip(1)).sub_(mirrored[t:t + crop, size - l - crop:size - l])
            else:
                o.copy_(window).sub_(mean[t:t + crop, l:l + crop])
            if rows is not None:
                o.view(crop, crop * 3).add_(rows[i])
        return out
    crops = crop_windows(images, index, top, left, flip, crop).to(device, non_blocking=True)
    mean = mean_image.to(device, torch.float32)
    out = crops.float().sub_(crop_windows(mean[None], torch.zeros_like(index), top, left, flip, crop))
    if offset is not None:
        out.add_(offset.to(device)[:, None, None, :])
    return out


def pca_colour_offsets(n: int, eigvals: torch.Tensor, eigvecs: torch.Tensor, *, std: float = PCA_STD,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """One RGB offset per image: P (α ⊙ λ) / 255 with α ~ N(0, std²), in 0-255 units (§4.1)."""
    gen_device = generator.device if generator is not None else torch.device("cpu")
    alpha = torch.randn(n, 3, generator=generator, device=gen_device) * std
    eigvals = eigvals.to(gen_device, torch.float32)
    eigvecs = eigvecs.to(gen_device, torch.float32)
    return (alpha * eigvals / PCA_UNIT) @ eigvecs.T


def draw_augmentation(n: int, size: int, crop: int, *, crops_flips: bool = True, pca=None,
                      pca_std: float = PCA_STD, generator: torch.Generator | None = None):
    """(top, left, flip, offset) for ``n`` images (§4.1): window corners and flips, then the PCA RGB shift.

    The one place the random draws are made, in this order (offsets, flips, PCA α), so every input path that
    calls it (``train_batch``, ``device_data.DeviceFeed``) leaves a generator in the same state with the same
    batches.  ``offset`` is the (n, 3) float32 shift, or None without ``pca``; the rest are CPU tensors.
    """
    gen_device = generator.device if generator is not None else torch.device("cpu")
    if crops_flips:
        top = torch.randint(0, size - crop + 1, (n,), generator=generator, device=gen_device)
        left = torch.randint(0, size - crop + 1, (n,), generator=generator, device=gen_device)
        flip = torch.rand(n, generator=generator, device=gen_device) < 0.5
    else:
        top = left = torch.full((n,), (size - crop) // 2, dtype=torch.long)
        flip = torch.zeros(n, dtype=torch.bool)
    offset = None
    if pca is not None:
        offset = pca_colour_offsets(n, pca[0], pca[1], std=pca_std, generator=generator)
    return top.cpu(), left.cpu(), flip.cpu(), offset


def train_batch(images: torch.Tensor, mean_image: torch.Tensor, crop: int, *,
                crops_flips: bool = True, pca: tuple[torch.Tensor, torch.Tensor] | None = None,
                pca_std: float = PCA_STD, generator: torch.Generator | None = None,
                device: torch.device | str | None = None, index: torch.Tensor | None = None) -> torch.Tensor:
    """§4.1: random crop×crop windows + horizontal flips (or the centre crop when crops_flips=False),
    PCA colour noise when pca=(eigvals, eigvecs) is given (αi ~ N(0, pca_std) once per image per call),
    then subtract the (cropped) mean image. Output in the paper's raw units: pixel values 0-255 minus the mean.

    ``index``: the batch is ``images[index]``, read window by window straight from ``images`` (e.g. the whole
    memory-mapped cache), without first copying the full stored images."""
    size = _check(images, mean_image, crop)
    rows = torch.arange(images.shape[0]) if index is None else torch.as_tensor(index).cpu().long()
    n = rows.numel()
    device = torch.device(device) if device is not None else images.device
    top, left, flip, offset = draw_augmentation(n, size, crop, crops_flips=crops_flips, pca=pca, pca_std=pca_std,
                                                generator=generator)
    out = _crops_minus_mean(images, rows, top, left, flip, crop, mean_image, offset, device)
    return out.permute(0, 3, 1, 2)  # NCHW view with channels-last strides (what convolutions like best)


def centre_batch(images: torch.Tensor, mean_image: torch.Tensor, crop: int, *,
                 device: torch.device | str | None = None, index: torch.Tensor | None = None) -> torch.Tensor:
    """§4.1 test time: the centre crop×crop patch minus the mean, (N, 3, crop, crop) float32."""
    return train_batch(images, mean_image, crop, crops_flips=False, device=device, index=index)


def ten_crop_windows(size: int, crop: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(top, left, flip) of the 10 test patches: 4 corners + centre, then the same five mirrored (§4.1)."""
    far, mid = size - crop, (size - crop) // 2
    top = torch.tensor([0, 0, far, far, mid] * 2)
    left = torch.tensor([0, far, 0, far, mid] * 2)
    flip = torch.tensor([False] * 5 + [True] * 5)
    return top, left, flip


def ten_crop_batch(images: torch.Tensor, mean_image: torch.Tensor, crop: int, *,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """§4.1: four corner crops + the centre crop, and their horizontal reflections.

    Returns (N, 10, 3, crop, crop) float32: patches 0-4 are top-left, top-right, bottom-left, bottom-right,
    centre; patches 5-9 are those five mirrored left-right.
    """
    size = _check(images, mean_image, crop)
    n = images.shape[0]
    device = torch.device(device) if device is not None else images.device
    top, left, flip = ten_crop_windows(size, crop)
    index = torch.arange(n).repeat_interleave(10)
    top, left, flip = top.repeat(n), left.repeat(n), flip.repeat(n)
    out = _crops_minus_mean(images, index, top, left, flip, crop, mean_image, None, device)
    return out.permute(0, 3, 1, 2).reshape(n, 10, 3, crop, crop)
