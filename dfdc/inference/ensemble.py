"""Face crops -> P(FAKE): the checkpoints of an ensemble, each scoring every track of a video.

A frame model scores each crop; a sequence model scores clips of T consecutive crops of one
track. Either way a track gets a list of probabilities, which aggregate.py turns into a track
score; a video is as fake as its most fake track; each member's calibrator maps that score,
and the ensemble is the weighted mean of the calibrated members.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..device import fast_layout, inference_dtype
from ..errors import DfdcError
from ..models.checkpoint import CheckpointConfig, load_checkpoint
from ..models.clips import clip_windows
from ..models.fold import fold_batchnorm
from ..scores.calibration import Calibrator
from .start import checkpoint_files


@dataclass
class Member:
    """One checkpoint of the ensemble, ready on its device."""

    name: str
    model: nn.Module
    config: CheckpointConfig
    calibrator: Calibrator | None
    weight: float = 1.0

    @property
    def kind(self) -> str:
        return self.model.kind

    def calibrate(self, raw: float) -> float:
        return float(self.calibrator(np.array([raw]))[0]) if self.calibrator else raw


def load_members(paths: list[Path], weights: list[float] | None, device: torch.device,
                 matched: bool = False) -> list[Member]:
    """The ensemble's checkpoints (files, or folders of them) in the device's inference precision,
    BatchNorms folded into their convs, channels_last on CPU, eval mode. Each is named by its file,
    with its folder where two files share a name.
    `matched`: each calibrates with the map fitted for test-set prior matching, where it has one."""
    paths = checkpoint_files(paths)
    if weights is not None and len(weights) != len(paths):
        raise DfdcError(f"{len(weights)} ensemble weights for {len(paths)} checkpoints")
    names = [p.name for p in paths]
    members = []
    for i, path in enumerate(paths):
        model, config = load_checkpoint(path, device)
        model = fast_layout(fold_batchnorm(model, _probe(model, config, device)).to(inference_dtype(device)), device)
        saved = (matched and config.matched_calibrator) or config.calibrator
        calibrator = Calibrator.from_dict(saved) if saved else None
        name = path.name if names.count(path.name) == 1 else f"{path.parent.name}/{path.name}"
        members.append(Member(name, model, config, calibrator, weights[i] if weights else 1.0))
    return members


def _probe(model: nn.Module, config: CheckpointConfig, device: torch.device) -> torch.Tensor:
    """A fixed random float32 batch of the model's input: a clip for a sequence model, else 2 crops."""
    size = config.input_size
    shape = (1, config.clip_frames, 3, size, size) if model.kind == "sequence" else (2, 3, size, size)
    return torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(device)


def _normalise(crops: np.ndarray, member: Member, device: torch.device) -> torch.Tensor:
    """(n, H, W, 3) uint8 -> (n, 3, H, W) normalised, in the member's dtype and layout."""
    x = torch.from_numpy(crops).to(device).permute(0, 3, 1, 2).float().div_(255)
    mean = torch.tensor(member.config.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(member.config.std, device=device).view(1, 3, 1, 1)
    x = ((x - mean) / std).to(next(member.model.parameters()).dtype)  # the precision load_members chose
    if device.type == "cuda":
        return x
    return x.contiguous(memory_format=torch.channels_last)


@torch.inference_mode()
def score_tracks(member: Member, tracks: list[list[np.ndarray]], batch_size: int,
                 device: torch.device) -> list[list[np.ndarray]]:
    """Per video, per track: the member's P(FAKE) per crop (frame model) or per clip (sequence).

    Crops of all the videos passed in are batched together, so a GPU sees full batches; a model that
    aligns each track by its own statistics (models/align.py) gets one whole track per batch.
    """
    aligned = getattr(member.model, "align", None) is not None
    if member.kind == "sequence":
        length = member.config.clip_frames
        units = [crops[w] for video in tracks for crops in video for w in clip_windows(len(crops), length)]
        counts = [[len(clip_windows(len(crops), length)) for crops in video] for video in tracks]
        per_batch = max(1, batch_size // length)
    elif aligned:  # whole tracks, one per batch
        units = [crops for video in tracks for crops in video if len(crops)]
        counts = [[len(crops) for crops in video] for video in tracks]
        per_batch = 1
    else:
        units = [crop for video in tracks for crops in video for crop in crops]
        counts = [[len(crops) for crops in video] for video in tracks]
        per_batch = batch_size
    probs = []
    for start in range(0, len(units), per_batch):
        batch = np.asarray(units[start]) if aligned else np.stack(units[start:start + per_batch])
        if member.kind == "sequence":
            b, t = batch.shape[:2]
            x = _normalise(batch.reshape(b * t, *batch.shape[2:]), member, device)
            x = x.reshape(b, t, *x.shape[1:])
        else:
            x = _normalise(batch, member, device)
        probs.append(torch.sigmoid(member.model(x).float()).cpu().numpy())
    flat = np.concatenate(probs) if probs else np.zeros(0)
    out, pos = [], 0
    for video in counts:
        per_track = []
        for count in video:
            per_track.append(flat[pos:pos + count])
            pos += count
        out.append(per_track)
    return out


def warm_up(member: Member, device: torch.device) -> float:
    """Seconds per crop of a first small batch: a safe (high) first estimate for the time governor,
    and on CUDA it leaves the kernels chosen before the clock matters."""
    size = member.config.input_size
    n = member.config.clip_frames if member.kind == "sequence" else 8
    crops = np.zeros((n, size, size, 3), np.uint8)
    start = time.monotonic()
    score_tracks(member, [[crops]], n, device)
    return (time.monotonic() - start) / n


def ensemble(members: list[Member], raw: list[float | None], calibrated: bool = True) -> float | None:
    """Weighted mean of the members' calibrated (or raw) scores; members without a score are left out."""
    pairs = [(m.weight, m.calibrate(r) if calibrated else r) for m, r in zip(members, raw) if r is not None]
    if not pairs:
        return None
    w = np.array([p[0] for p in pairs])
    return float(np.dot(w, [p[1] for p in pairs]) / w.sum())

