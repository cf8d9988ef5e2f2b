"""BlazeFace (MediaPipe's face detector) for the state dicts of the "blazeface-pytorch" dataset.

Both the front (128 px) and the back (256 px) model; batched inference, anchor decoding and
the weighted non-maximum suppression of the BlazeFace paper. Loading is strict: every key and
shape must match and the file's sha256 must be the published one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import DfdcError
from ..weights import blazeface_files
from .boxes import Detections, weighted_nms


class BlazeBlock(nn.Module):
    """Depthwise + pointwise conv with a residual; stride 2 pads like TFLite (right/bottom)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride
        self.channel_pad = cout - cin
        self.convs = nn.Sequential(
            nn.Conv2d(cin, cin, 3, stride, 0 if stride == 2 else 1, groups=cin),
            nn.Conv2d(cin, cout, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The convolutions called directly (not through their modules) and the sum made in place:
        # per call of the front model, one thread, 3.74 against 3.96 ms for one window (the follows
        # between whole detections look at one or two), 17.2 against 20.1 ms for 8 (medians of 10).
        dw, pw = self.convs
        h = x
        if self.stride == 2:
            h, x = F.pad(x, (0, 2, 0, 2)), F.max_pool2d(x, 2, 2)
        if self.channel_pad > 0:
            x = F.pad(x, (0, 0, 0, 0, 0, self.channel_pad))
        h = F.conv2d(F.conv2d(h, dw.weight, dw.bias, dw.stride, dw.padding, groups=dw.groups), pw.weight, pw.bias)
        return torch.relu_(h.add_(x))


class FinalBlazeBlock(nn.Module):
    """The back model's last downsampling block (no residual)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 2, 0, groups=channels),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.convs(F.pad(x, (0, 2, 0, 2))))


def _stack(spec: list[tuple[int, int, int]], stem: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(3, 24, 5, 2, 0), nn.ReLU(inplace=True)] if stem else []
    layers += [BlazeBlock(cin, cout, stride) for cin, cout, stride in spec]
    return nn.Sequential(*layers)


# (in, out, stride) of each BlazeBlock, as in MediaPipe's two face detection graphs.
FRONT_1 = [(24, 24, 1), (24, 28, 1), (28, 32, 2), (32, 36, 1), (36, 42, 1), (42, 48, 2),
           (48, 56, 1), (56, 64, 1), (64, 72, 1), (72, 80, 1), (80, 88, 1)]
FRONT_2 = [(88, 96, 2)] + [(96, 96, 1)] * 4
BACK = ([(24, 24, 1)] * 7 + [(24, 24, 2)] + [(24, 24, 1)] * 7 + [(24, 48, 2)]
        + [(48, 48, 1)] * 7 + [(48, 96, 2)] + [(96, 96, 1)] * 7)


class BlazeFace(nn.Module):
    """Front (128x128 input) or back (256x256 input) BlazeFace; outputs raw boxes and scores."""

    def __init__(self, back: bool = False) -> None:
        super().__init__()
        self.back = back
        self.size = 256 if back else 128
        self.min_score = 0.65 if back else 0.75
        self.nms_iou = 0.3
        width = 96
        if back:
            self.backbone = _stack(BACK, stem=True)
            self.final = FinalBlazeBlock(96)
        else:
            self.backbone1 = _stack(FRONT_1, stem=True)
            self.backbone2 = _stack(FRONT_2, stem=False)
        c8 = 96 if back else 88
        self.classifier_8 = nn.Conv2d(c8, 2, 1)
        self.classifier_16 = nn.Conv2d(width, 6, 1)
        self.regressor_8 = nn.Conv2d(c8, 32, 1)
        self.regressor_16 = nn.Conv2d(width, 96, 1)
        self.register_buffer("anchors", torch.zeros(896, 4), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, 3, S, S) in [-1, 1] -> raw regressions (B, 896, 16), logits (B, 896)."""
        x = F.pad(x, (1, 2, 1, 2))
        if self.back:
            x = self.backbone(x)
            h = self.final(x)
        else:
            x = self.backbone1(x)
            h = self.backbone2(x)
        b = x.shape[0]

        def flat(t: torch.Tensor, k: int) -> torch.Tensor:
            return t.permute(0, 2, 3, 1).reshape(b, -1, k)

        c = torch.cat([flat(self.classifier_8(x), 1), flat(self.classifier_16(h), 1)], 1)
        r = torch.cat([flat(self.regressor_8(x), 16), flat(self.regressor_16(h), 16)], 1)
        return r, c.squeeze(-1)

    @torch.inference_mode()
    def detect(self, images: torch.Tensor) -> list[Detections]:
        """images: (B, S, S, 3) uint8 RGB -> faces per image, in that image's pixels."""
        x = images.to(self.anchors.device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        raw, logits = self(x)
        scores = logits.clamp(-100, 100).sigmoid()
        decoded = (decode(raw, self.anchors, self.size) * images.shape[1]).cpu().numpy()
        scores = scores.cpu().numpy()  # one transfer, not two per image
        out = []
        for i in range(len(images)):
            keep = scores[i] >= self.min_score
            out.append(weighted_nms(decoded[i][keep], scores[i][keep], self.nms_iou))
        return out


def decode(raw: torch.Tensor, anchors: torch.Tensor, scale: float) -> torch.Tensor:
    """Raw regressions -> (B, 896, 16): box x0, y0, x1, y1 then 6 keypoints x, y; normalised."""
    ax, ay, aw, ah = anchors.unbind(-1)
    xy = raw.reshape(*raw.shape[:2], 8, 2) / scale
    cx = xy[..., 0, 0] * aw + ax
    cy = xy[..., 0, 1] * ah + ay
    w = xy[..., 1, 0] * aw
    h = xy[..., 1, 1] * ah
    box = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
    kx = xy[..., 2:, 0] * aw[:, None] + ax[:, None]
    ky = xy[..., 2:, 1] * ah[:, None] + ay[:, None]
    return torch.cat([box, torch.stack([kx, ky], -1).flatten(-2)], -1)


def load_blazeface(weights: str | Path | None = None, back: bool = False,
                   device: str | torch.device = "cpu") -> BlazeFace:
    """The detector with verified weights and anchors, strictly loaded, in eval mode."""
    state_path, anchors_path = blazeface_files(weights, back)
    model = BlazeFace(back)
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        anchors = np.load(anchors_path, allow_pickle=False)
    except (RuntimeError, ValueError, OSError) as e:
        raise DfdcError(f"not a BlazeFace {'back' if back else 'front'} model: {str(e).splitlines()[0]}",
                        state_path) from e
    if anchors.shape != (896, 4):
        raise DfdcError(f"anchors have shape {anchors.shape}, expected (896, 4)", anchors_path)
    model.anchors = torch.from_numpy(anchors).float()
    return model.eval().to(device)
