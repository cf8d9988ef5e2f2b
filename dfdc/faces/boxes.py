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
    # (n,) for faces followed (found by a look around a box): the IoU of the found box with that box
    looked: np.ndarray | None = None

    @staticmethod
    def empty() -> "Detections":
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 6, 2), np.float32))


def box_area(b: np.ndarray) -> np.ndarray:
    return (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])


def box_side(b: np.ndarray) -> np.ndarray:
    """The longer side of each x0, y0, x1, y1 box: the size a square crop is cut at."""
    return np.maximum(b[..., 2] - b[..., 0], b[..., 3] - b[..., 1])


def box_intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection areas of x0, y0, x1, y1 boxes a (n, 4) and b (m, 4): (n, m)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    return np.clip(rb - lt, 0, None).prod(-1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes a (n, 4) and b (m, 4): (n, m)."""
    inter = box_intersection(a, b)
    return inter / np.maximum(box_area(a)[:, None] + box_area(b)[None] - inter, 1e-9)


def face_like(boxes: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """Per detection, whether its landmarks are arranged as on a face: (n, 4) boxes, (n, 6, 2)
    keypoints (BlazeFace order: the eye on the image's left, the other eye, nose, mouth, ears)."""
    size = np.maximum(boxes[:, 2:] - boxes[:, :2], 1e-6)
    k = (keypoints - boxes[:, None, :2]) / size[:, None, :]
    across = k[:, 1] - k[:, 0]
    tilt = np.degrees(np.abs(np.arctan2(across[:, 1], across[:, 0])))
    eyes_y = (k[:, 0, 1] + k[:, 1, 1]) / 2
    return (tilt < 45) & (np.hypot(across[:, 0], across[:, 1]) > 0.15) & (k[:, 3, 1] - eyes_y > 0.2)


def weighted_nms(dets: np.ndarray, scores: np.ndarray, threshold: float,
                 max_ratio: float | None = None) -> Detections:
    """BlazeFace's blending NMS: overlapping detections (box + keypoints rows, (n, 16)) are
    averaged, weighted by score; the blend's score is the mean of its members'. With max_ratio,
    only boxes whose sides differ by less than that factor are blended: a whole face and a part
    of it (a nose and mouth seen by a tile) stay apart, for the caller to choose between."""
    if len(dets) == 0:
        return Detections.empty()
    order = np.argsort(-scores, kind="stable")
    dets, scores = dets[order].astype(np.float64), scores[order].astype(np.float64)
    overlap = box_iou(dets[:, :4], dets[:, :4]) > threshold
    if max_ratio is not None:
        side = np.log(np.maximum(box_side(dets[:, :4]), 1e-6))
        overlap &= np.abs(side[:, None] - side[None, :]) < np.log(max_ratio)
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
