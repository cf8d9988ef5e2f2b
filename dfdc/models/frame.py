"""Per-face-crop classifier: a timm backbone, dropout and one linear unit giving the P(FAKE) logit.

Its layout (encoder.*, fc.*) is the 1st-place solution's, so their checkpoints load as they are.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..defaults import VIDEO_FRAMES
from .backbones import Pretrained, backbone_config, create_backbone, pooled_features
from .registry import register_model


class FrameModel(nn.Module):
    """(B, C, H, W) face crops -> (B,) logits."""

    kind = "frame"

    def __init__(
        self,
        backbone: str = "efficientnet_b0",
        pretrained: Pretrained = False,
        dropout: float = 0.2,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.encoder = create_backbone(backbone, pretrained, drop_path_rate=drop_path_rate)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(pooled_features(self.encoder), 1)
        # Frames per video scored at inference (the 1st-place solution's 32).
        self.default_config = {**backbone_config(self.encoder), "frames": VIDEO_FRAMES}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.encoder(x))).squeeze(1)


register_model("frame", FrameModel)
