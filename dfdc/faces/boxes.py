"""Face boxes in pixels: the detections of one image and the geometry that detectors and tracks share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detections:
    """Faces found in one image, in pixels of that image."""

    boxes: np.ndarray  # (n, 4) x0, y0, x1, y1
    scores: np.ndarray  # (n,)
    keypoints: np.ndarray  # (n, 6, 2) eyes, nose, mouth, ears as x, y

    @staticmethod
    def empty() -> "Detections":
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 6, 2), np.float32))


def box_area(b: np.ndarray) -> np.ndarray:
    return (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])


def box_intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection areas of x0, y0, x1, y1 boxes a (n, 4) and b (m, 4): (n, m)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    return np.clip(rb - lt, 0, None).prod(-1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes a (n, 4) and b (m, 4): (n, m)."""
    inter = box_intersection(a, b)
    return inter / np.maximum(box_area(a)[:, None] + box_area(b)[None] - inter, 1e-9)


def weighted_nms(dets: np.ndarray, scores: np.ndarray, threshold: float) -> Detections:
    """BlazeFace's blending NMS: overlapping detections (box + keypoints rows, (n, 16)) are
    averaged, weighted by score; the blend's score is the mean of its members'."""
    if len(dets) == 0:
        return Detections.empty()
    order = np.argsort(-scores, kind="stable")
    dets, scores = dets[order].astype(np.float64), scores[order].astype(np.float64)
    overlap = box_iou(dets[:, :4], dets[:, :4]) > threshold
    remaining = np.ones(len(dets), bool)
    kept = []
    for i in range(len(dets)):
        if not remaining[i]:
            continue
        group = remaining & overlap[i]
        group[i] = True
        w = scores[group]
        kept.append(np.append((dets[group] * w[:, None]).sum(0) / w.sum(), w.mean()))
        remaining &= ~group
    arr = np.stack(kept).astype(np.float32)
    return Detections(arr[:, :4], arr[:, 16], arr[:, 4:16].reshape(-1, 6, 2))
