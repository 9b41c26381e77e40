"""Training data on the device (device_data.py): the same batches as augment.train_batch, bitwise; §4.1's
statistics on the new path; train(data_on_device=True) gives the same weights as without it."""
import pytest
import torch

import test_augment as A
from alexnet_book import augment, data, device_data
from alexnet_book.device_data import DeviceFeed
from support import quiet, tiny_config

torch.set_num_threads(1)
from support import C, S, random_basis  # noqa: E402
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def random_set(n=20, size=S, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=g)
    mean = torch.rand(size, size, 3, generator=g) * 255
    return images, mean, (torch.tensor([5000.0, 500.0, 50.0]), random_basis(seed))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["resident", "prefetch"])
@pytest.mark.parametrize("crops_flips,with_pca", [(True, True), (True, False), (False, True), (False, False)])
def test_batches_equal_train_batch_bitwise_for_the_same_generator(device, mode, crops_flips, with_pca):
    """Same generator state in, the same float32 batch out (torch.equal: bitwise) and the same state after."""
    images, mean, pca = random_set()
    pca = pca if with_pca else None
    feed = DeviceFeed(images, mean, C, device=device, pca=pca, crops_flips=crops_flips, mode=mode)
    assert feed.mode == mode
    g_cpu, g_dev = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    batches = [torch.tensor([3, 0, 19, 3, 8]), torch.tensor([1, 2, 4]), torch.tensor([5, 6, 7, 9]),
               torch.tensor([11])]
    for k, index in enumerate(batches):
        upcoming = batches[k + 1] if k + 1 < len(batches) and k != 1 else None  # batch 3: not prefetched
        want = augment.train_batch(images[index], mean, C, crops_flips=crops_flips, pca=pca, generator=g_cpu,
                                   device=device)
        got = feed.batch(index, g_dev, upcoming=upcoming)
        assert got.device.type == device and got.shape == want.shape and got.stride() == want.stride()
        assert torch.equal(got, want), f"batch {k}"
        assert torch.equal(g_cpu.get_state(), g_dev.get_state())


def test_a_stale_prefetch_is_dropped_and_the_asked_batch_fetched():
    images, mean, pca = random_set()
    feed = DeviceFeed(images, mean, C, pca=pca, mode="prefetch")
    feed.batch(torch.tensor([0, 1]), torch.Generator().manual_seed(0), upcoming=torch.tensor([2, 3]))
    got = feed.batch(torch.tensor([4, 5]), torch.Generator().manual_seed(1))  # not the prefetched [2, 3]
    want = augment.train_batch(images[[4, 5]], mean, C, pca=pca, generator=torch.Generator().manual_seed(1))
    assert torch.equal(got, want)


def test_auto_mode_keeps_a_cpu_set_in_place_without_a_copy():
    images, mean, _ = random_set()
    feed = DeviceFeed(images, mean, C)
    assert feed.mode == "resident" and feed.images.data_ptr() == images.data_ptr()
    assert device_data.to_device(images, torch.device("cpu")) is images
    with pytest.raises(ValueError, match="mode"):
        DeviceFeed(images, mean, C, mode="somewhere")


def device_train_batch(images, mean_image, crop, *, crops_flips=True, pca=None, pca_std=augment.PCA_STD,
                       generator=None, device=None, index=None):
    """augment.train_batch's signature, computed by DeviceFeed (the gather path, on the CPU here)."""
    index = torch.arange(images.shape[0]) if index is None else torch.as_tensor(index)
    feed = DeviceFeed(images, mean_image, crop, device=device or images.device, pca=pca, crops_flips=crops_flips,
                      pca_std=pca_std)
    return feed.batch(index, generator)


@pytest.mark.parametrize("name", [
    "test_shapes_dtype_and_units",
    "test_centre_crop_is_the_central_window_minus_the_mean",
    "test_random_crops_are_valid_windows_uniform_over_offsets_and_flipped_half_the_time",
    "test_mean_is_cropped_and_flipped_with_the_image",
    "test_pca_noise_has_zero_mean_and_the_stated_covariance",
    "test_pca_noise_is_drawn_per_image_per_call_and_only_from_the_generator",
    "test_index_reads_the_batch_straight_from_the_array",
])
def test_augment_tests_hold_on_the_device_path(name, monkeypatch):
    """tests/test_augment.py's checks (uniform offsets, flips half the time, the PCA noise's mean and covariance,
    the mean cropped with the image, replayable from the generator) with train_batch replaced by DeviceFeed."""
    monkeypatch.setattr(augment, "train_batch", device_train_batch)
    getattr(A, name)()


def test_mean_and_pca_match_the_cache_builders():
    images, _, _ = random_set(n=9, size=12)
    images[..., 0] = images[..., 1] // 2 + 40  # correlated channels, distinct eigenvalues
    want = data.mean_and_pca(images.numpy(), chunk=4)
    got = device_data.mean_and_pca(images, chunk=4)
    for w, g in zip(want, got):
        assert torch.allclose(torch.from_numpy(w), g, rtol=1e-5, atol=1e-4)


def test_train_with_data_on_device_gives_the_same_weights(tmp_path, monkeypatch):
    """A tiny train() (scaled AlexNet, fp32, deterministic, crops + flips + PCA) with the field on and off."""
    import alexnet_book.train as T

    torch.set_num_threads(1)
    off = quiet(tiny_config(tmp_path / "off", epochs=2, ten_crop=False))

    def not_this_path(*args, **kwargs):
        raise AssertionError("data_on_device=True made a batch through augment.train_batch")

    monkeypatch.setattr(T, "train_batch", not_this_path)
    on_config = tiny_config(tmp_path / "on", epochs=2, ten_crop=False, data_on_device=True)
    on = quiet(on_config)
    assert on.config.hash() != off.config.hash() and on.config.run_hash() == off.config.run_hash()
    assert all(torch.equal(a, b) for a, b in zip(on.model.state_dict().values(), off.model.state_dict().values()))
    for key in ("train_loss", "val_top1_error", "val_loss"):
        assert on.metrics[key] == off.metrics[key], key


def test_train_with_prefetch_finishes_with_the_same_weights(tmp_path, monkeypatch, splits):
    """The prefetch path (background thread) inside train(): every batch but each epoch's first is prefetched."""
    torch.set_num_threads(1)
    real = DeviceFeed.__init__

    def prefetching(self, *args, **kwargs):
        real(self, *args, **{**kwargs, "mode": "prefetch"})

    monkeypatch.setattr(DeviceFeed, "__init__", prefetching)
    on = quiet(tiny_config(tmp_path / "on", epochs=2, ten_crop=False, data_on_device=True), splits=splits)
    off = quiet(tiny_config(tmp_path / "off", epochs=2, ten_crop=False), splits=splits)
    assert all(torch.equal(a, b) for a, b in zip(on.model.state_dict().values(), off.model.state_dict().values()))
