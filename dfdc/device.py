"""The torch device a job runs on: one rule for predict, train and the face engine."""

from __future__ import annotations

import torch

from .errors import DfdcError


def pick_device(device: str = "auto") -> torch.device:
    """auto: CUDA when there is one; asking for CUDA where there is none is the user's mistake."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DfdcError(f"--device {device}: no CUDA device on this machine")
    return torch.device(device)


def inference_dtype(device: torch.device) -> torch.dtype:
    """The precision the models score in: half on CUDA; bfloat16 on a CPU with native bfloat16
    arithmetic (AVX-512 BF16 or AMX: twice the speed of float32 for EfficientNet here); else
    float32. Scores move by well under the models' error; training stays float32 (AMP on CUDA)."""
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return torch.float32
