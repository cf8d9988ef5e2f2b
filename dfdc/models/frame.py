"""Per-face-crop classifier: a timm backbone, dropout and one linear unit giving the P(FAKE) logit.

Its layout (encoder.*, fc.*) is the 1st-place solution's, so their checkpoints load as they are.
`pooling="multiscale"` also feeds the head the mean and spread of every stage's feature map: a
blend edge or a resampled texture shows in the early, fine-grained maps more than in the last,
semantic one (and `dfdc cv` trains that head on frozen features in seconds per fold).
`pooling="contrast"` feeds it the last map's mean over the face box less its mean over the ring
around it (the crop's margin: hair, neck, background): what the camera, light and encoding give the
whole picture cancels, what a manipulation changed inside the face stays. On ../shared/data/real,
grouped by folder, it ranked unseen sources better than the plain average (README, "What has been
measured"). With `align_block` the maps before that backbone block are aligned per track
(align.py), so a batch must be one track's crops.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..defaults import CROP_MARGIN, POOLINGS, VIDEO_FRAMES
from ..errors import DfdcError
from .align import TrackAlign
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
        pooling: str = "last",
        align_block: int | None = None,
        margin: float = CROP_MARGIN,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise DfdcError(f"unknown pooling {pooling!r}; choose from {', '.join(POOLINGS)}")
        self.pooling, self.align_block, self.align = pooling, align_block, None
        self.face = 1 / (1 + 2 * margin)  # the face box's share of a crop's side, at its centre
        self.encoder = create_backbone(backbone, pretrained, drop_path_rate=drop_path_rate)
        if pooling == "contrast":
            self._stages()  # the face box is found in an EfficientNet-style last map (conv_head, bn2)
        self.dropout = nn.Dropout(dropout)
        with torch.no_grad():  # the feature width, whatever the backbone's stages
            width = self.features(torch.zeros(1, 3, 64, 64)).shape[1] if pooling == "multiscale" else \
                pooled_features(self.encoder)
        self.fc = nn.Linear(width, 1)
        if align_block is not None:  # the block's index, counted from the end where negative
            self.align_block = align_block % len(self._stages().blocks)
            with torch.no_grad():
                self.align = TrackAlign(self.early(torch.zeros(1, 3, 64, 64), self.align_block).shape[1])
        # Frames per video scored at inference (the 1st-place solution's 32).
        self.default_config = {**backbone_config(self.encoder), "frames": VIDEO_FRAMES}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, F): what the linear head sees."""
        if self.align is not None:
            return self.late_features(self.align(self.early(x, self.align_block)), self.align_block)
        if self.pooling == "last":
            return self.encoder(x)
        if self.pooling == "contrast":
            return self.late_features(self.early(x, 0), 0)
        final, maps = self.encoder.forward_intermediates(x)
        stats = [torch.cat([m.mean((2, 3)), m.flatten(2).std(2)], 1) for m in maps]
        return torch.cat([self.encoder.forward_head(final), *stats], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x))).squeeze(1)

    def early(self, x: torch.Tensor, block: int) -> torch.Tensor:
        """(B, C, H, W) -> the backbone's feature map before its block `block`: the part `dfdc cv`
        keeps frozen and computes once, so each fold fine-tunes only what follows (`late`)."""
        enc = self._stages()
        h = enc.bn1(enc.conv_stem(x))
        for b in enc.blocks[:block]:
            h = b(h)
        return h

    def late(self, h: torch.Tensor, block: int) -> torch.Tensor:
        """early(x, block) -> (B,) logits, the same as forward(x) (not aligned)."""
        return self.fc(self.dropout(self.late_features(h, block))).squeeze(1)

    def late_features(self, h: torch.Tensor, block: int) -> torch.Tensor:
        """early(x, block) -> (B, F) pooled backbone features, what the fc (or a sequence head) sees."""
        enc = self._stages()
        for b in enc.blocks[block:]:
            h = b(h)
        return self._pool(enc.bn2(enc.conv_head(h)))

    def _pool(self, m: torch.Tensor) -> torch.Tensor:
        """The last map (B, C, H, W) -> (B, C): its average, or (contrast) the face box's mean less the
        ring's. A map too small to have a ring (crops of under about 100 px) gives its average."""
        if self.pooling == "last":
            return self.encoder.forward_head(m)
        inside = face_cells(*m.shape[-2:], self.face, m.device)
        if inside.all() or not inside.any():  # too few cells to tell the face from its ring
            return m.mean((2, 3))
        return m[..., inside].mean(-1) - m[..., ~inside].mean(-1)

    def late_parameters(self, block: int) -> list[nn.Parameter]:
        """What `late` trains: the blocks from `block` on, the head convolution and the fc."""
        enc = self._stages()
        return [p for m in (*enc.blocks[block:], enc.conv_head, enc.bn2, self.fc) for p in m.parameters()]

    def _stages(self) -> nn.Module:
        parts = ("conv_stem", "blocks", "conv_head", "bn2")
        if self.pooling == "multiscale":
            raise DfdcError("fine-tuning part of the backbone needs pooling 'last' or 'contrast', not 'multiscale'")
        if not all(hasattr(self.encoder, a) for a in parts):
            raise DfdcError("fine-tuning part of the backbone and contrast pooling need an EfficientNet-style timm "
                            f"backbone ({', '.join(parts)})")
        return self.encoder


def face_cells(h: int, w: int, face: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """(h, w) bool: the cells of a crop's (h, w) map whose centres lie in the face box, the centre
    `face` of the crop's side (crops are the face box widened by the same margin on every side)."""
    lo, hi = (1 - face) / 2, (1 + face) / 2
    rows = (torch.arange(h, device=device) + 0.5) / h
    cols = (torch.arange(w, device=device) + 0.5) / w
    return ((rows >= lo) & (rows <= hi))[:, None] & ((cols >= lo) & (cols <= hi))[None, :]


register_model("frame", FrameModel)
