"""The torch device a job runs on: one rule for predict, train and the face engine."""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from .errors import DfdcError


def pick_device(device: str = "auto") -> torch.device:
    """auto: CUDA when there is one; asking for CUDA where there is none is the user's mistake."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DfdcError(f"--device {device}: no CUDA device on this machine")
    return torch.device(device)


def reproducible(device: torch.device) -> None:
    """Same seed, same weights and figures on CUDA too (CPU kernels already are): cuDNN and cuBLAS
    pick deterministic kernels, where their defaults sum in a different order from run to run.
    For the training jobs; process-wide, so called once they know their device."""
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)


def fast_layout(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model in the memory layout its device runs convolutions fastest in: channels_last on a
    CPU (oneDNN; Lite0's frozen early blocks 1.7x and a fine-tuning step of its last blocks 1.3x
    faster than the default layout here, benchmarks/bench_cv.py), CUDA's default elsewhere."""
    return model if device.type == "cuda" else model.to(memory_format=torch.channels_last)


def inference_dtype(device: torch.device) -> torch.dtype:
    """The precision the models score in: half on CUDA; bfloat16 on a CPU with native bfloat16
    arithmetic (AVX-512 BF16 or AMX: twice the speed of float32 for EfficientNet here); else
    float32. Scores move by well under the models' error; training stays float32 (AMP on CUDA)."""
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return torch.float32


def scoring_batch(device: torch.device) -> int:
    """Inputs per network call when scoring: the models' crops (predict, evaluate; --batch-size
    overrides) and the face detector's windows. 64 on CUDA, which wants full batches; 8 on a CPU,
    where a small batch's activations stay in the core's cache. Per input here, one thread: Lite0
    7.5-8.0 ms at 8, 9.3-10.1 at 32, 11.2-12.4 at 64 in bfloat16 (16-18, 22-23 and 24-25 ms in float32;
    two threads, bfloat16: 4.6-4.8, 6.0-6.2 and 7.5-8.2 ms); BlazeFace's 128 px windows 1.85-1.94 ms at
    8 or 16, 3.1 at 64 (the same boxes within 1e-7 px)."""
    return 64 if device.type == "cuda" else 8


def scoring_precision(device: torch.device) -> torch.autocast:
    """A block computed in inference_dtype(device) without converting the model (autocast; a no-op
    where that is float32): what `dfdc cv` caches is computed as predict's models will score."""
    dtype = inference_dtype(device)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)


def thread_share(workers: int) -> int:
    """Torch threads for each of `workers` threads or processes that use the CPU at once: the cores
    shared out, at least one. More threads than cores wait on each other: `dfdc predict` (2 workers
    beside the models) ran at 1.26x ffmpeg's full decode with torch's 2 threads, 1.13x with 1, here."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory() -> None:
    """Freed memory kept for the next allocation instead of given back to the kernel (glibc only;
    elsewhere a no-op). By default glibc maps each large block afresh and returns it when freed, and
    the kernel zeroes every new page: BlazeFace's and the model's activations, made and freed video
    after video. `dfdc predict` spent 3-4% less time per video with both thresholds raised (GLIBC_TUNABLES,
    4 rounds of benchmarks/bench_predict.py each way), for at most 5% more peak memory. Process-wide: called
    as predict starts."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return
    libc = ctypes.CDLL(None)
    libc.mallopt(_M_MMAP_THRESHOLD, 256 << 20)
    libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Torch's intra-op threads set to n for a block, then as they were (the setting is process-wide)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
