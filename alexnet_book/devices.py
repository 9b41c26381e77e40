"""Where a run computes: the device and its precision, and the processes of a distributed run (torchrun).

One process picks its device (``pick_device``: cuda, then mps, then cpu) and the autocast dtype that pays there
(``pick_precision``).  Several processes (``torchrun --nproc_per_node=N``) each take a rank: ``Processes`` holds
this process's place, ``start_processes``/``end_processes`` set up and tear down the process group, and the
small collectives training needs (``all_sum``, ``broadcast``, ``gather``) do nothing when there is one process.
"""
from __future__ import annotations

import dataclasses
import os
import platform
from dataclasses import dataclass

import torch
import torch.distributed as dist


def pick_device(name: str = "auto") -> torch.device:
    """The device to train on: the one named, or the best present (cuda, then mps, then cpu).

    A named device that is not usable here is a ValueError (one line), before any work is done."""
    if name != "auto":
        return check_device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _cpuinfo(field: str) -> str:
    """The first value of ``field`` in /proc/cpuinfo ("model name", "flags"); "" where there is none (e.g. macOS)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.partition(":")[2].strip() for line in f if line.startswith(field)), "")
    except OSError:
        return ""


def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags from /proc/cpuinfo (empty where there is none, e.g. macOS or Windows)."""
    return frozenset(_cpuinfo("flags").split())


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), which makes bf16 autocast pay."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def cpu_vector_units() -> str:
    """The widest vector/matrix units of this CPU that decide its speed and, through ``precision="auto"``, its
    numerics: "AMX-BF16", "AVX512-BF16", "AVX512", "AVX2" or "" (unknown).  Two CPUs of one model name can
    differ here (an AMD EPYC of 2019 has AVX2 only, one of 2023 AVX512-BF16): "auto" trains in bf16 on the
    second and in fp32 on the first, so the same seed gives different numbers."""
    flags = cpu_flags()
    for flag, name in (("amx_bf16", "AMX-BF16"), ("avx512_bf16", "AVX512-BF16"), ("avx512f", "AVX512"),
                       ("avx2", "AVX2")):
        if flag in flags:
            return name
    return ""


def pick_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype (None = plain fp32): "auto" takes bf16 on GPUs that have it and on bf16-capable CPUs."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision != "auto":
        raise ValueError(f"unknown precision {precision!r}; choose 'auto', 'bf16' or 'fp32'")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_bf16() else None
    return None


def rank_seed(seed: int, rank: int, stream: int = 0) -> int:
    """The seed of one process's random stream (0: dropout through torch's generator, 1: augmentation).

    Rank 0 keeps the single-process seeds (``seed`` and ``seed + 1,000,003``), so one-process runs are unchanged;
    other ranks get a 63-bit mix of (seed, rank, stream), so that no two (seed, rank) pairs share a stream --
    ``seed + rank`` gave seed 0's rank 1 the masks of seed 1's rank 0.
    """
    if rank == 0:
        return seed + 1_000_003 * stream
    import numpy as np

    return int(np.random.SeedSequence([seed, rank, stream]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def check_device(name: str) -> torch.device:
    """``torch.device(name)`` when that device is usable here, else a one-line ValueError saying why."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"unknown device {name!r}; choose auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r}: no usable CUDA GPU here (no GPU, no driver, or a CPU-only torch "
                             f"build); use --device auto or --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                             f"numbered from 0")
    elif device.type == "mps" and not (getattr(torch.backends, "mps", None) is not None
                                        and torch.backends.mps.is_available()):
        raise ValueError(f"device {name!r}: Apple's MPS is not available here; use --device auto or --device cpu")
    return device


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast pays here: CUDA with bf16, or a CPU with native bf16 instructions."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_bf16()


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def shard(images, rank: int, world_size: int):
    """Rank ``rank``'s contiguous share of a split, so that every sample is scored by exactly one process."""
    n = len(images.labels)
    lo, hi = rank * n // world_size, (rank + 1) * n // world_size
    return dataclasses.replace(images, images=images.images[lo:hi], labels=images.labels[lo:hi])


# ---------------------------------------------------------------------------------------------------------------
# Processes: one, or torchrun's ranks

@dataclass
class Processes:
    """This process's place in the run: its rank among ``world`` processes and the device it computes on.

    ``started_group``: whether ``start_processes`` initialised the process group (and so tears it down)."""

    rank: int
    world: int
    device: torch.device
    started_group: bool = False


def start_processes(device_name: str = "auto") -> Processes:
    """The device and rank of this process; under torchrun (WORLD_SIZE > 1) each rank takes its local GPU and
    the process group is initialised here unless the caller already did (nccl on GPUs, gloo on CPUs)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_name)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    started_group = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        started_group = True
    return Processes(rank, world, device, started_group)


def end_processes(processes: Processes, *, finished: bool) -> None:
    """Tear down the process group ``start_processes`` began.  After a run that ``finished`` on every rank, the
    ranks first meet at a barrier, so that none destroys the group while another still has collectives (or gloo's
    pairs) in flight; after an error there is no barrier (the other ranks may never arrive)."""
    if not processes.started_group:
        return
    if finished:
        dist.barrier()
    dist.destroy_process_group()


def all_sum(t: torch.Tensor, world: int, device: torch.device) -> torch.Tensor:
    """``t`` summed over the processes (on the CPU); with one process, ``t`` itself."""
    if world > 1:
        t = t.to(device)
        dist.all_reduce(t)
    return t.cpu()


def broadcast(value, world: int, src: int = 0):
    """Rank ``src``'s ``value`` (any picklable object) on every rank; with one process, ``value``."""
    if world > 1:
        box = [value]
        dist.broadcast_object_list(box, src=src)
        value = box[0]
    return value


def gather(value, world: int) -> list:
    """Every rank's ``value``, in rank order, on every rank; with one process, ``[value]``."""
    if world == 1:
        return [value]
    values = [None] * world
    dist.all_gather_object(values, value)
    return values


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()
