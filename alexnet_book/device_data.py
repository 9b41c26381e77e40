"""Training data held on the training device: §4.1's batches made there, from the uint8 cache, by indexing.

PAPER.md §7: one modern GPU trains AlexNet at tens of thousands of images/s, while one CPU core crops and
converts a few thousand (docs/benchmarks.md); at that speed the input path, not the network, sets the pace.
The answer here is to move no image data per step at all: the stored uint8 images (``splits.train.images``,
(N, S, S, 3), 256 px on the full track) are copied once to the GPU -- 50,000 CIFAR-10 images at 256 px are
9.8 GB, a small share of an H100's 80 GB -- and every batch is cut out of that tensor there:

* the random draws (crop offsets, flips, PCA colour α, §4.1) come from the same CPU ``torch.Generator`` in the
  same order as ``augment.train_batch``, so the two paths make the *same* batches (bitwise: the same fp32
  operations on the same numbers -- uint8 → float, minus the mean window, plus the RGB offset);
* what crosses to the device each step is one small packed tensor: the batch's rows, offsets, flips and the
  PCA offsets (7 numbers per image), from pinned memory without waiting;
* the crop + flip is one gather (``augment.crop_windows``), the mean window another; float work on the device.

Sets too large for the device (ImageNet at 256 px is 252 GB) stay in host memory and the *next* batch's stored
images are gathered into pinned memory by a background thread and copied on a side CUDA stream while the
current step runs (``mode="prefetch"``); the crops are then cut on the device as above.  On a CPU both modes
come down to indexing the array in place (``"prefetch"`` still runs its thread, for the tests).

``train(TrainConfig(data_on_device=True))`` uses ``DeviceFeed``; the batches, and so the run, are the same as
without it (tests/test_device_data.py).
"""
from __future__ import annotations

import queue
import threading

import torch

from . import augment

MODES = ("auto", "resident", "prefetch")
RESIDENT_SHARE = 0.5  # "auto" keeps the set on the GPU when it takes at most this share of the free memory
COPY_CHUNK_BYTES = 1 << 30  # the one-time copy to the device goes in pieces of about this size


draw_augmentation = augment.draw_augmentation  # the draws train_batch makes, in the same order


def to_device(images: torch.Tensor, device: torch.device, chunk_bytes: int = COPY_CHUNK_BYTES) -> torch.Tensor:
    """A copy of a (memory-mapped) uint8 array on ``device``, made in pieces so that no second full host copy
    (or pinned staging buffer of the whole set) is ever needed.  Already there: returned as it is."""
    device = torch.device(device)
    if on_device(images, device):
        return images
    out = torch.empty(images.shape, dtype=images.dtype, device=device)
    per_row = max(1, images[0].numel() * images.element_size())
    rows = max(1, chunk_bytes // per_row)
    for start in range(0, images.shape[0], rows):
        out[start:start + rows].copy_(images[start:start + rows])
    return out


def on_device(tensor: torch.Tensor, device: torch.device) -> bool:
    """Whether ``tensor`` already lives on ``device`` ("cuda" without an index: the current one)."""
    device = torch.device(device)
    if tensor.device.type != device.type:
        return False
    index = device.index
    if index is None and device.type == "cuda":
        index = torch.cuda.current_device()
    return index is None or tensor.device.index == index


def fits_on_device(nbytes: int, device: torch.device, share: float = RESIDENT_SHARE) -> bool:
    """Whether ``nbytes`` take at most ``share`` of the device's free memory (always True off CUDA)."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= share * free


class _Prefetcher:
    """The next batch's stored images gathered on the host (pinned) and copied to the device, in the background.

    One daemon thread; ``submit(index)`` starts work on a future batch, ``take(index)`` returns
    ``images[index]`` on the device -- the prefetched one when it was submitted, else fetched now.  On CUDA the
    copy runs on a side stream and the current stream waits for it (an event), so the step never reads early.
    """

    def __init__(self, images: torch.Tensor, device: torch.device):
        self.images, self.device = images, device
        self.cuda = device.type == "cuda"
        self.stream = torch.cuda.Stream(device) if self.cuda else None
        self.jobs: queue.Queue = queue.Queue()
        self.pending: tuple[torch.Tensor, queue.Queue] | None = None
        self.thread = threading.Thread(target=self._work, name="alexnet-book-prefetch", daemon=True)
        self.thread.start()

    def _fetch(self, index: torch.Tensor):
        host = torch.empty((len(index), *self.images.shape[1:]), dtype=self.images.dtype, pin_memory=self.cuda)
        torch.index_select(self.images, 0, index, out=host)
        if not self.cuda:
            return host.to(self.device), None
        with torch.cuda.stream(self.stream):
            moved = host.to(self.device, non_blocking=True)
            done = torch.cuda.Event()
            done.record(self.stream)
        return moved, done  # the pinned ``host`` block is kept by torch's host allocator until the copy is done

    def _work(self) -> None:
        while True:
            index, reply = self.jobs.get()
            try:
                reply.put(self._fetch(index))
            except BaseException as error:  # noqa: BLE001 -- handed to the training thread, which raises it
                reply.put(error)

    def submit(self, index: torch.Tensor) -> None:
        reply: queue.Queue = queue.Queue(maxsize=1)
        self.pending = (index, reply)
        self.jobs.put((index, reply))

    def take(self, index: torch.Tensor) -> torch.Tensor:
        pending, self.pending = self.pending, None
        if pending is not None and torch.equal(pending[0], index):
            result = pending[1].get()
            if isinstance(result, BaseException):
                raise result
        else:  # not prefetched (the first batch of an epoch, a resumed run): fetch it now
            if pending is not None:
                pending[1].get()  # let the stale fetch finish before its buffers are dropped
            result = self._fetch(index)
        moved, done = result
        if done is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(done)
            moved.record_stream(current)  # the side stream allocated it; the step's stream uses it
        return moved


class DeviceFeed:
    """§4.1 training batches made on ``device`` from a uint8 (N, S, S, 3) set held there (or prefetched to it).

    ``feed.batch(index, generator)`` equals ``augment.train_batch(images[index], mean_image, crop, pca=pca,
    crops_flips=..., generator=generator, device=device)``: the same float32 NCHW tensor (NHWC strides), the
    generator left in the same state.  ``mode``: "resident" (the whole set on the device), "prefetch" (host
    memory, the next batch copied in the background; give ``upcoming``), "auto" (resident when the set takes
    at most ``RESIDENT_SHARE`` of the GPU's free memory; on a CPU, resident -- the array itself, no copy).
    """

    def __init__(self, images: torch.Tensor, mean_image: torch.Tensor, crop: int, *, device="cpu",
                 pca: tuple[torch.Tensor, torch.Tensor] | None = None, crops_flips: bool = True,
                 pca_std: float = augment.PCA_STD, mode: str = "auto"):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.device = torch.device(device)
        self.size = augment._check(images, mean_image, crop)
        self.crop, self.crops_flips, self.pca_std = crop, crops_flips, pca_std
        self.pca = None if pca is None else (pca[0].float().cpu(), pca[1].float().cpu())
        self.mean = mean_image.to(self.device, torch.float32)
        if mode == "auto":
            nbytes = images.numel() * images.element_size()
            mode = "resident" if on_device(images, self.device) or fits_on_device(nbytes, self.device) else "prefetch"
        self.mode = mode
        if mode == "resident":
            self.images, self.prefetcher = to_device(images, self.device), None
        else:
            host = images.cpu()
            self.images, self.prefetcher = host, _Prefetcher(host, self.device)
        self.nbytes = images.numel() * images.element_size()

    def _send(self, index: torch.Tensor, top, left, flip, offset) -> tuple:
        """The step's small numbers, packed as one float64 (7, n) tensor (exact for these values) and sent at once."""
        n = len(index)
        packed = torch.empty((7, n), dtype=torch.float64, pin_memory=self.device.type == "cuda")
        packed[0], packed[1], packed[2], packed[3] = index, top, left, flip
        packed[4:] = offset.T if offset is not None else 0
        packed = packed.to(self.device, non_blocking=True)
        rows, top, left = (packed[i].long() for i in range(3))
        return rows, top, left, packed[3].bool(), packed[4:].T.float() if offset is not None else None

    def batch(self, index, generator: torch.Generator | None = None, *, upcoming=None) -> torch.Tensor:
        """Random crops + flips + PCA colour noise − the mean of ``images[index]`` on the device (§4.1, §2).

        ``upcoming``: the next batch's index (prefetch mode starts fetching it now; ignored when resident).
        """
        index = torch.as_tensor(index).cpu().long()
        top, left, flip, offset = draw_augmentation(len(index), self.size, self.crop, crops_flips=self.crops_flips,
                                                    pca=self.pca, pca_std=self.pca_std, generator=generator)
        if self.prefetcher is not None:
            images = self.prefetcher.take(index)
            if upcoming is not None and len(upcoming):
                self.prefetcher.submit(torch.as_tensor(upcoming).cpu().long())
            index = torch.arange(len(index))
        else:
            images = self.images
        rows, top, left, flip, offset = self._send(index, top, left, flip, offset)
        crops = augment.crop_windows(images, rows, top, left, flip, self.crop)
        out = crops.float().sub_(augment.crop_windows(self.mean[None], torch.zeros_like(rows), top, left, flip,
                                                      self.crop))
        if offset is not None:
            out.add_(offset[:, None, None, :])
        return out.permute(0, 3, 1, 2)  # NCHW view with channels-last strides, as train_batch returns


def mean_and_pca(images: torch.Tensor, chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``data.mean_and_pca`` for a uint8 (N, S, S, 3) tensor on any device: (mean image, eigenvalues, eigenvectors).

    float64 sums over chunks, on the tensor's device (seconds on a GPU for a set decoded or resized there);
    eigenvalues descending, eigenvectors as columns with the same sign rule, all float32 on the CPU.
    """
    n, device = images.shape[0], images.device
    total = torch.zeros(images.shape[1:], dtype=torch.float64, device=device)
    rgb_sum = torch.zeros(3, dtype=torch.float64, device=device)
    rgb_outer = torch.zeros(3, 3, dtype=torch.float64, device=device)
    for i in range(0, n, chunk):
        block = images[i:i + chunk].to(torch.float64)
        total += block.sum(0)
        pixels = block.reshape(-1, 3)
        rgb_sum += pixels.sum(0)
        rgb_outer += pixels.T @ pixels
    count = n * images.shape[1] * images.shape[2]
    mu = rgb_sum / count
    cov = (rgb_outer / count - torch.outer(mu, mu)).cpu()
    eigvals, eigvecs = torch.linalg.eigh(cov)
    eigvals, eigvecs = eigvals.flip(0), eigvecs.flip(1)
    eigvecs = eigvecs * torch.where(eigvecs.sum(0) < 0, -1.0, 1.0)
    return (total / n).float().cpu(), eigvals.clamp(min=0).float(), eigvecs.float()
