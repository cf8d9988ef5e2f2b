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
