"""Augmenting face clips for training: one random draw per clip, applied to every frame.

A fake shows itself by how the face changes (or fails to) over time, so a clip must not gain a
flicker of its own: flip, jitter, blur, JPEG quality, downscale and cut-out are drawn once per
clip and applied alike to all its frames (only the noise grain differs frame to frame, as a
camera's does). The original design's JPEG compression and blur model the re-encoding of
videos; cut-out hides one face part so the model cannot lean on a single cue.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from ..defaults import CROP_MARGIN
from .blend import draw_blend, self_blend

# Face parts as (x0, y0, x1, y1) fractions of a BlazeFace box, placed by eye on DFDC crops, for cut-out.
FACE_PARTS = {
    "eyes": (0.05, 0.08, 0.95, 0.36),
    "nose": (0.33, 0.25, 0.67, 0.58),
    "mouth": (0.20, 0.50, 0.80, 0.76),
}


@dataclass(frozen=True)
class ClipAugment:
    """(T, H, W, 3) uint8 RGB clip -> (T, 3, size, size) float32 tensor, normalised by mean/std.

    With train=False only resize and normalise happen (validation and inference). Each p_* is the
    chance a clip gets that augmentation; `margin` is the crops' margin, to place the face parts.
    """

    size: int = 224
    mean: tuple[float, float, float] = IMAGENET_DEFAULT_MEAN
    std: tuple[float, float, float] = IMAGENET_DEFAULT_STD
    train: bool = True
    margin: float = CROP_MARGIN
    p_flip: float = 0.5
    p_jitter: float = 0.5
    p_cutout: float = 0.2
    p_downscale: float = 0.2
    p_blur: float = 0.2
    p_noise: float = 0.2
    p_jpeg: float = 0.5
    p_blend: float = 0.0  # a self-blended fake (blend.py): only for views labelled FAKE

    def __call__(self, clip: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        params = self.draw(rng or np.random.default_rng()) if self.train else {}
        return self.normalise(self.apply(clip, params, rng))

    def draw(self, rng: np.random.Generator) -> dict:
        """The clip's random parameters; an augmentation not drawn is absent."""
        p: dict = {}
        if rng.random() < self.p_flip:
            p["flip"] = True
        if rng.random() < self.p_jitter:
            p["jitter"] = (rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.2), rng.uniform(0.7, 1.3),
                           int(rng.integers(-6, 7)))  # brightness, contrast, saturation, hue (OpenCV units)
        if rng.random() < self.p_cutout:
            p["cutout"] = str(rng.choice(list(FACE_PARTS)))
        if rng.random() < self.p_downscale:
            p["downscale"] = rng.uniform(0.35, 0.8)
        if rng.random() < self.p_blur:
            p["blur"] = rng.uniform(0.4, 1.5)
        if rng.random() < self.p_noise:
            p["noise"] = rng.uniform(2.0, 8.0)
        if rng.random() < self.p_jpeg:
            p["jpeg"] = int(rng.integers(40, 96))
        if self.p_blend and rng.random() < self.p_blend:  # drawn last: the other draws stay as without it
            p["blend"] = draw_blend(rng)
        return p

    def apply(self, clip: np.ndarray, params: dict, rng: np.random.Generator | None = None) -> np.ndarray:
        """The clip resized to `size` and altered by `params` (from draw), uint8 (T, size, size, 3)."""
        s = self.size
        out = np.stack([_resize(f, s) for f in clip])
        if "blend" in params:  # before the rest, which then alter the seam as a re-encoded video would
            out = self_blend(out, params["blend"], self.margin)
        if params.get("flip"):
            out = out[:, :, ::-1]
        if "jitter" in params:
            out = _jitter(out, *params["jitter"])
        if "cutout" in params:
            x0, y0, x1, y1 = (round(v * s) for v in _part_box(params["cutout"], self.margin))
            out[:, y0:y1, x0:x1] = 0
        if "downscale" in params:
            small = max(8, round(s * params["downscale"]))
            out = np.stack([cv2.resize(cv2.resize(f, (small, small), interpolation=cv2.INTER_AREA), (s, s),
                                       interpolation=cv2.INTER_LINEAR) for f in out])
        if "blur" in params:
            out = np.stack([cv2.GaussianBlur(f, (0, 0), params["blur"]) for f in out])
        if "noise" in params:
            grain = (rng or np.random.default_rng()).normal(0, params["noise"], out.shape)
            out = np.clip(out + grain, 0, 255).astype(np.uint8)
        if "jpeg" in params:
            out = np.stack([_jpeg(f, params["jpeg"]) for f in out])
        return np.ascontiguousarray(out)

    def normalise(self, clip: np.ndarray) -> torch.Tensor:
        """uint8 (T, H, W, 3) -> float32 (T, 3, H, W), (x / 255 - mean) / std."""
        x = (clip.astype(np.float32) / 255 - np.float32(self.mean)) / np.float32(self.std)
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def denormalise(x: torch.Tensor, mean: tuple[float, ...] = IMAGENET_DEFAULT_MEAN,
                std: tuple[float, ...] = IMAGENET_DEFAULT_STD) -> np.ndarray:
    """(..., 3, H, W) normalised tensor -> (..., H, W, 3) uint8 RGB, to look at what a model sees."""
    rgb = x.movedim(-3, -1).numpy() * np.float32(std) + np.float32(mean)
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def _part_box(part: str, margin: float) -> tuple[float, float, float, float]:
    """A face part's box as fractions of the crop: the face box fills the crop less its margins."""
    lo, span = margin / (1 + 2 * margin), 1 / (1 + 2 * margin)
    x0, y0, x1, y1 = FACE_PARTS[part]
    return lo + x0 * span, lo + y0 * span, lo + x1 * span, lo + y1 * span


def _resize(frame: np.ndarray, size: int) -> np.ndarray:
    if frame.shape[0] == size and frame.shape[1] == size:
        return frame
    interp = cv2.INTER_AREA if frame.shape[0] > size else cv2.INTER_CUBIC
    return cv2.resize(frame, (size, size), interpolation=interp)


def _jitter(clip: np.ndarray, brightness: float, contrast: float, saturation: float, hue: int) -> np.ndarray:
    """Colour jitter of the whole clip at once (frames stacked as one tall image)."""
    t, h, w, _ = clip.shape
    x = clip.reshape(t * h, w, 3).astype(np.float32)
    grey = x @ np.float32([0.299, 0.587, 0.114])
    x = x * brightness
    x = (x - grey.mean() * brightness) * contrast + grey.mean() * brightness
    grey = x @ np.float32([0.299, 0.587, 0.114])
    x = grey[..., None] + (x - grey[..., None]) * saturation
    out = np.clip(x, 0, 255).astype(np.uint8)
    if hue:
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + hue) % 180).astype(np.uint8)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return out.reshape(t, h, w, 3)


def _jpeg(frame: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(frame[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1] if ok else frame
