"""Self-blended fakes: a REAL face crop blended with a slightly altered copy of itself.

What real face swaps share across methods and datasets is the seam: a face region pasted over
another with a soft mask, whose colour, sharpness and position never match the frame exactly.
Blending a crop with itself (Shiohara & Yamasaki, "Detecting Deepfakes with Self-Blended Images",
CVPR 2022) makes fakes that show only that seam: same person, scene, camera and compression as
the source, so a model told "this is fake, its source is real" cannot learn who or where, only
the blend. The face region comes from the crop's geometry (the face box fills the crop less its
margins), drawn as a deformed, feathered ellipse; one draw is applied alike to every frame of a clip.
"""

from __future__ import annotations

import cv2
import numpy as np


def draw_blend(rng: np.random.Generator) -> dict:
    """One self-blend's random parameters (plain types and small arrays)."""
    return {
        "shift": rng.uniform(-8, 8, 3),  # per-channel colour offset of the pasted face
        "gain": rng.uniform(0.95, 1.05),  # and its contrast
        "detail": float(rng.choice([-1.0, 0.0, 1.0])) * rng.uniform(0.4, 1.0),  # <0 blur, >0 sharpen
        "scale": rng.uniform(0.95, 1.05),  # the pasted face's size and offset (fractions of the crop)
        "offset": rng.uniform(-0.02, 0.02, 2),
        "axes": rng.uniform(0.8, 1.1, 2),  # the mask's ellipse against the face box
        "warp": rng.normal(0, 0.04, (2, 4, 4)),  # a smooth displacement of the mask's edge
        "feather": rng.uniform(0.01, 0.06),  # the mask's soft edge, as a fraction of the crop
        "ratio": float(rng.choice([0.5, 0.75, 1.0, 1.0, 1.0])),  # how much of the altered face shows
    }


def self_blend(clip: np.ndarray, params: dict, margin: float) -> np.ndarray:
    """(T, S, S, 3) uint8 crops -> the same crops with their face blended from an altered copy."""
    size = clip.shape[1]
    mask = _mask(size, params, margin)[None, :, :, None]
    source = _altered(clip, params)
    out = mask * source + (1 - mask) * clip.astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _mask(size: int, params: dict, margin: float) -> np.ndarray:
    """(S, S) float32 in [0, ratio]: a feathered, deformed ellipse over the face box."""
    span = size / (1 + 2 * margin)  # the face box's side in the crop
    ax, ay = params["axes"]
    mask = np.zeros((size, size), np.float32)
    cv2.ellipse(mask, (size // 2, round(size * 0.52)), (round(0.38 * span * ax), round(0.48 * span * ay)),
                0, 0, 360, 1.0, -1)
    grid = np.mgrid[0:size, 0:size].astype(np.float32)[::-1]  # (x, y)
    warp = np.stack([cv2.resize(w.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
                     for w in params["warp"]]) * size
    mask = cv2.remap(mask, *(grid + warp), interpolation=cv2.INTER_LINEAR, borderValue=0)
    sigma = max(0.5, params["feather"] * size)
    return cv2.GaussianBlur(mask, (0, 0), sigma) * np.float32(params["ratio"])


def _altered(clip: np.ndarray, params: dict) -> np.ndarray:
    """The crops as the pasted face: moved and scaled a little, sharper or softer, recoloured (float32)."""
    size = clip.shape[1]
    dx, dy = params["offset"] * size
    affine = cv2.getRotationMatrix2D((size / 2, size / 2), 0, params["scale"])
    affine[:, 2] += (dx, dy)
    out = []
    for frame in clip:
        f = cv2.warpAffine(frame, affine, (size, size), borderMode=cv2.BORDER_REFLECT).astype(np.float32)
        detail = params["detail"]
        if detail:
            soft = cv2.GaussianBlur(f, (0, 0), abs(detail))
            f = soft if detail < 0 else f + (f - soft) * 0.6
        mean = f.mean((0, 1))
        out.append((f - mean) * params["gain"] + mean + params["shift"])
    return np.stack(out).astype(np.float32)
