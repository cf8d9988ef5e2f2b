"""Per-track alignment of a backbone's feature maps: each track standardised by its own statistics.

A video's camera, lighting, person and compression shift every crop of it the same way, and a model
trained on a few dozen videos learns those shifts as REAL or FAKE (on ../shared/data/real a whole
dataset scored on the wrong side). What a manipulation changes is within a video: some crops, some
places, some channels against the rest of the face. So the maps before the fine-tuned blocks are
standardised per channel by the track's own mean and SD over its crops and positions, then put at
the training set's mean and SD, where the pretrained blocks after expect them.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

EPS = 1e-3  # added to a channel's SD: a constant channel (a flat crop, one crop of padding) stays finite


def track_stats(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, C, H, W) maps of one track -> its per-channel (mean, SD + EPS), float32."""
    std, mean = torch.std_mean(maps.float(), dim=(0, 2, 3), correction=0)
    return mean, std + EPS


class TrackAlign(nn.Module):
    """(n, C, H, W) maps of ONE track -> the same maps with each channel at the training set's mean
    and SD: the batch is the track, so its crops must all come together."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("std", torch.ones(channels))

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.apply_stats(maps, *track_stats(maps))

    def apply_stats(self, maps: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """Maps standardised by the given per-channel statistics ((C,), or (n, C): one row per map)."""
        scale = self.std / std
        shift = self.mean - mean * scale
        shape = (-1, maps.shape[1], 1, 1)
        return (maps.float() * scale.reshape(shape) + shift.reshape(shape)).to(maps.dtype)

    @torch.no_grad()
    def fit(self, stats: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Target the pooled mean and SD of these tracks' maps (each track weighing the same)."""
        means = torch.stack([m for m, _ in stats])
        stds = torch.stack([s for _, s in stats])
        mean = means.mean(0)
        self.mean.copy_(mean)
        self.std.copy_((stds.square() + (means - mean).square()).mean(0).sqrt())
