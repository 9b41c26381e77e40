"""§4.1 augmentation on uint8 batches: crops, flips, PCA colour noise statistics, the 10 test crops."""
import math

import pytest
import torch

from alexnet_book import augment, paper
from support import C, S, random_basis

torch.set_num_threads(1)


def coordinate_images(n, size=S):
    """Images whose channel 0 holds the row index and channel 1 the column index (to read windows back)."""
    rows = torch.arange(size).view(1, size, 1).expand(n, size, size)
    cols = torch.arange(size).view(1, 1, size).expand(n, size, size)
    ident = torch.arange(n).view(n, 1, 1).expand(n, size, size) % 256
    return torch.stack([rows, cols, ident], dim=-1).to(torch.uint8)


def zero_mean(size=S):
    return torch.zeros(size, size, 3)


def test_shapes_dtype_and_units():
    images = torch.randint(0, 256, (5, S, S, 3), dtype=torch.uint8)
    mean = images.float().mean(0)
    x = augment.train_batch(images, mean, C, generator=torch.Generator().manual_seed(0))
    assert x.shape == (5, 3, C, C) and x.dtype == torch.float32
    assert augment.centre_batch(images, mean, C).shape == (5, 3, C, C)
    assert augment.ten_crop_batch(images, mean, C).shape == (5, 10, 3, C, C)
    # raw 0-255 units minus the mean (§2): values lie in [-255, 255] and are not rescaled to [0, 1]
    assert x.abs().max() > 50 and x.abs().max() <= 255


def test_centre_crop_is_the_central_window_minus_the_mean():
    images = torch.randint(0, 256, (4, S, S, 3), dtype=torch.uint8)
    mean = torch.rand(S, S, 3) * 255
    o = (S - C) // 2
    want = (images[:, o:o + C, o:o + C].float() - mean[o:o + C, o:o + C]).permute(0, 3, 1, 2)
    assert torch.allclose(augment.centre_batch(images, mean, C), want)
    same = augment.train_batch(images, mean, C, crops_flips=False)
    assert torch.allclose(same, want)


def test_ten_crops_are_exactly_the_corner_centre_windows_and_their_mirrors():
    images = torch.randint(0, 256, (3, S, S, 3), dtype=torch.uint8)
    mean = torch.rand(S, S, 3) * 255
    out = augment.ten_crop_batch(images, mean, C)
    far, mid = S - C, (S - C) // 2
    corners = [(0, 0), (0, far), (far, 0), (far, far), (mid, mid)]
    for n in range(3):
        for k, (t, l) in enumerate(corners):
            window = images[n, t:t + C, l:l + C].float() - mean[t:t + C, l:l + C]
            want = window.permute(2, 0, 1)
            assert torch.equal(out[n, k], want), f"image {n} patch {k}"
            assert torch.equal(out[n, k + 5], want.flip(-1)), f"image {n} mirrored patch {k}"
    # all ten patches differ from each other on random images
    flat = out[0].reshape(10, -1)
    assert torch.cdist(flat, flat).fill_diagonal_(1).min() > 0


def test_full_scale_ten_crops_cover_224_windows_of_256():
    size, crop = paper.PREPROCESS["rescale"], paper.PREPROCESS["crop"]
    top, left, flip = augment.ten_crop_windows(size, crop)
    assert top.tolist() == [0, 0, 32, 32, 16] * 2 and left.tolist() == [0, 32, 0, 32, 16] * 2
    assert flip.tolist() == [False] * 5 + [True] * 5


def read_windows(out):
    """Recover (top, left, flipped) of each crop from coordinate images."""
    rows, cols = out[:, 0], out[:, 1]
    top = rows[:, 0, 0].long()
    flipped = cols[:, 0, 1] < cols[:, 0, 0]
    left = torch.where(flipped, cols[:, 0, -1], cols[:, 0, 0]).long()
    return top, left, flipped


def test_random_crops_are_valid_windows_uniform_over_offsets_and_flipped_half_the_time():
    n = 5000
    images = coordinate_images(n)
    out = augment.train_batch(images, zero_mean(), C, generator=torch.Generator().manual_seed(1))
    top, left, flipped = read_windows(out)
    for i in range(0, n, 97):  # each crop is exactly its window (mirrored when flipped)
        window = images[i, top[i]:top[i] + C, left[i]:left[i] + C].float().permute(2, 0, 1)
        assert torch.equal(out[i], window.flip(-1) if flipped[i] else window)
    # flips happen with probability 1/2 (5 sigma bound)
    assert abs(flipped.float().mean().item() - 0.5) < 5 * math.sqrt(0.25 / n)
    # every offset 0..S-C occurs, each about equally often (5 sigma bound on each count)
    offsets = S - C + 1
    for counts in (torch.bincount(top, minlength=offsets), torch.bincount(left, minlength=offsets)):
        assert counts.numel() == offsets
        p = 1 / offsets
        assert (counts.float() - n * p).abs().max() < 5 * math.sqrt(n * p * (1 - p))


def test_mean_is_cropped_and_flipped_with_the_image():
    images = coordinate_images(64)
    mean = coordinate_images(1)[0].float()  # subtracting the same window of the same image leaves zeros
    out = augment.train_batch(images[:, :, :, :3], mean, C, generator=torch.Generator().manual_seed(2))
    assert out[:, :2].abs().max() == 0


def test_pca_noise_has_zero_mean_and_the_stated_covariance():
    """offset = P (α ⊙ λ) / 255, α ~ N(0, 0.1²) ⇒ E = 0, Cov = P diag(0.1² λ² / 255²) Pᵀ (§4.1)."""
    n = 40000
    eigvals = torch.tensor([9944.0, 773.0, 204.0])
    eigvecs = random_basis()
    images = torch.full((n, 4, 4, 3), 128, dtype=torch.uint8)
    out = augment.train_batch(images, torch.full((4, 4, 3), 128.0), 3, pca=(eigvals, eigvecs),
                              generator=torch.Generator().manual_seed(3))
    offsets = out[:, :, 0, 0].double()
    # the same offset is added to every pixel of an image
    assert torch.allclose(out, offsets[:, :, None, None].float().expand_as(out), atol=1e-4)
    std = paper.PREPROCESS["pca_alpha_std"]
    component_std = std * eigvals.double() / augment.PCA_UNIT
    want_cov = eigvecs.double() @ torch.diag(component_std ** 2) @ eigvecs.double().T
    got_cov = torch.cov(offsets.T)
    assert (offsets.mean(0).abs() < 5 * component_std.max() / math.sqrt(n)).all()
    assert torch.allclose(got_cov, want_cov, atol=0.03 * want_cov.abs().max())
    # along each eigenvector: variance σ²λᵢ²/255², and the three projections are uncorrelated
    proj = offsets @ eigvecs.double()
    assert torch.allclose(proj.var(0), component_std ** 2, rtol=0.05)
    corr = torch.corrcoef(proj.T)
    assert (corr - torch.eye(3, dtype=corr.dtype)).abs().max() < 0.03


def test_pca_noise_is_drawn_per_image_per_call_and_only_from_the_generator():
    eigvals, eigvecs = torch.tensor([5000.0, 500.0, 50.0]), random_basis(1)
    images = torch.full((6, 8, 8, 3), 100, dtype=torch.uint8)
    mean = torch.zeros(8, 8, 3)
    g = torch.Generator().manual_seed(4)
    a = augment.train_batch(images, mean, 6, pca=(eigvals, eigvecs), generator=g)
    b = augment.train_batch(images, mean, 6, pca=(eigvals, eigvecs), generator=g)
    assert not torch.allclose(a, b)  # new α on every call
    assert len({round(v, 4) for v in a[:, 0, 0, 0].tolist()}) == 6  # a different α for each image
    torch.manual_seed(0)
    c = augment.train_batch(images, mean, 6, pca=(eigvals, eigvecs), generator=torch.Generator().manual_seed(4))
    torch.manual_seed(1)
    d = augment.train_batch(images, mean, 6, pca=(eigvals, eigvecs), generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, c) and torch.equal(c, d)  # replayable from the generator alone
    # no PCA, no crops/flips: exactly the image minus the mean
    plain = augment.train_batch(images, mean, 8, crops_flips=False)
    assert torch.equal(plain, torch.full((6, 3, 8, 8), 100.0))


def test_bad_inputs_are_refused_with_a_clear_message():
    mean = zero_mean()
    with pytest.raises(ValueError, match="uint8"):
        augment.train_batch(torch.zeros(2, S, S, 3), mean, C)
    with pytest.raises(ValueError, match="mean image"):
        augment.train_batch(torch.zeros(2, S, S, 3, dtype=torch.uint8), torch.zeros(S + 1, S + 1, 3), C)
    with pytest.raises(ValueError, match="crop"):
        augment.centre_batch(torch.zeros(2, S, S, 3, dtype=torch.uint8), mean, S + 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu():
    images = torch.randint(0, 256, (8, S, S, 3), dtype=torch.uint8)
    mean = torch.rand(S, S, 3) * 255
    pca = (torch.tensor([5000.0, 500.0, 50.0]), random_basis(2))
    cpu = augment.train_batch(images, mean, C, pca=pca, generator=torch.Generator().manual_seed(5))
    gpu = augment.train_batch(images.cuda(), mean, C, pca=pca, generator=torch.Generator().manual_seed(5))
    assert gpu.device.type == "cuda" and torch.allclose(gpu.cpu(), cpu, atol=1e-4)
    moved = augment.train_batch(images, mean, C, pca=pca, generator=torch.Generator().manual_seed(5), device="cuda")
    assert torch.allclose(moved.cpu(), cpu, atol=1e-4)
    ten = augment.ten_crop_batch(images.cuda(), mean.cuda(), C)
    assert torch.allclose(ten.cpu(), augment.ten_crop_batch(images, mean, C))


def test_gather_kernel_path_matches_slicing():
    """crop_windows (the one-kernel gather used on GPUs) gives the same windows as slicing, mirrored or not."""
    images = torch.randint(0, 256, (4, S, S, 3), dtype=torch.uint8)
    index, top, left = torch.tensor([0, 1, 2, 3, 1]), torch.tensor([0, 4, 2, 1, 3]), torch.tensor([4, 0, 2, 3, 1])
    flip = torch.tensor([False, True, True, False, True])
    out = augment.crop_windows(images, index, top, left, flip, C)
    for k in range(5):
        w = images[index[k], top[k]:top[k] + C, left[k]:left[k] + C]
        assert torch.equal(out[k], w.flip(1) if flip[k] else w)


def test_index_reads_the_batch_straight_from_the_array():
    images = torch.randint(0, 256, (9, S, S, 3), dtype=torch.uint8)
    mean = torch.rand(S, S, 3) * 255
    pca = (torch.tensor([5000.0, 500.0, 50.0]), random_basis(3))
    idx = torch.tensor([7, 2, 2, 5])
    a = augment.train_batch(images, mean, C, pca=pca, generator=torch.Generator().manual_seed(6), index=idx)
    b = augment.train_batch(images[idx], mean, C, pca=pca, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert torch.equal(augment.centre_batch(images, mean, C, index=idx), augment.centre_batch(images[idx], mean, C))
