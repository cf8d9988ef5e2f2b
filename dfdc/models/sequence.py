"""Clip classifier: a timm encoder on each of T frames, a ConvLSTM over time, two linear layers.

Two forms of feeding the ConvLSTM:
- `sequence` (the original design): pooled encoder features -> linear -> 1x1 maps;
- `sequence_spatial`: the encoder's feature map, reduced by a 1x1 convolution to a few channels
  (the ConvLSTM's cost grows with its input channels at every step and position).
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn

from ..defaults import CACHE_FRAMES, CLIP_FRAMES
from .backbones import Pretrained, backbone_config, create_backbone, pooled_features
from .convlstm import ConvLSTM
from .registry import register_model


class SequenceModel(nn.Module):
    """(B, T, C, H, W) clips of one face track -> (B,) logits, from the ConvLSTM's last hidden state."""

    kind = "sequence"

    def __init__(
        self,
        backbone: str = "efficientnet_b0",
        pretrained: Pretrained = False,
        spatial: bool = False,
        features: int = 256,
        hidden: int = 256,
        kernel_size: int = 1,
        head: int = 128,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.spatial = spatial
        self.encoder = create_backbone(backbone, pretrained)
        if spatial:
            self.reduce = nn.Sequential(nn.Conv2d(self.encoder.num_features, features, 1), nn.ReLU(inplace=True))
        else:
            self.reduce = nn.Sequential(nn.Linear(pooled_features(self.encoder), features), nn.ReLU(inplace=True))
        self.lstm = ConvLSTM(features, hidden, kernel_size)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(hidden, head),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(head, 1),
        )
        # Clips of T consecutive samples out of `frames` evenly sampled per video (models/clips.py).
        self.default_config = {**backbone_config(self.encoder), "frames": CACHE_FRAMES, "clip_length": CLIP_FRAMES}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) frames -> what the encoder gives each frame (pooled, or the map when spatial)."""
        return self.encoder.forward_features(x) if self.spatial else self.encoder(x)

    def head_forward(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, T, ...) per-frame features -> (B,) logits: all but the encoder (trained alone on frozen features)."""
        b, t = feats.shape[:2]
        maps = self.reduce(feats.flatten(0, 1))
        if not self.spatial:
            maps = maps[:, :, None, None]
        _, (h, _) = self.lstm(maps.unflatten(0, (b, t)))
        return self.head(h).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        return self.head_forward(self.features(x.flatten(0, 1)).unflatten(0, (b, t)))


register_model("sequence", partial(SequenceModel, spatial=False))
register_model("sequence_spatial", partial(SequenceModel, spatial=True, features=32, kernel_size=3))
