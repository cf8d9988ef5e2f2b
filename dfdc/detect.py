"""Finding faces in whole video frames with BlazeFace, which only sees 128 or 256 px squares.

A DFDC face is often ~120 px in a 1920x1080 frame: resized whole it shrinks below what BlazeFace
finds. So every frame is looked at twice: whole (padded to a square) for close-up faces, and as
overlapping square tiles of 2/3 of its short side for small ones. All tiles of a batch of frames
go through the network together, and the detections are merged in frame pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from .blazeface import Detections, box_area, box_intersection, box_iou, load_blazeface, weighted_nms


@dataclass(frozen=True)
class Window:
    """A square region of a frame: its top-left corner and side, in frame pixels."""

    x: int
    y: int
    side: int


def windows(height: int, width: int, tile_fraction: float = 2 / 3) -> list[Window]:
    """The whole frame (as a padded square) plus a grid of overlapping square tiles."""
    out = [Window(0, 0, max(height, width))]
    side = int(round(min(height, width) * tile_fraction))
    if side < 16:
        return out
    xs = np.linspace(0, width - side, math.ceil(width / side)).round().astype(int)
    ys = np.linspace(0, height - side, math.ceil(height / side)).round().astype(int)
    out += [Window(int(x), int(y), side) for y in ys for x in xs]
    return out


def _square(frame: np.ndarray, w: Window, size: int) -> np.ndarray:
    """The window's pixels resized to size x size (zero padded where it leaves the frame)."""
    patch = frame[w.y:w.y + w.side, w.x:w.x + w.side]
    if patch.shape[0] != w.side or patch.shape[1] != w.side:
        padded = np.zeros((w.side, w.side, 3), np.uint8)
        padded[:patch.shape[0], :patch.shape[1]] = patch
        patch = padded
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)


class FaceDetector:
    """BlazeFace over whole frames: (N, H, W, 3) uint8 RGB -> faces per frame, in frame pixels.

    The front model (128 px) on the whole frame plus 2/3-side tiles found the face in every
    sampled frame of the DFDC sample videos at a fifth of the back model's (256 px) cost.
    """

    def __init__(self, weights: str | Path | None = None, back: bool = False,
                 device: str | torch.device = "cpu", min_score: float | None = None,
                 tile_fraction: float = 2 / 3, batch_size: int = 64) -> None:
        self.model = load_blazeface(weights, back=back, device=device)
        if min_score is not None:
            self.model.min_score = min_score
        self.tile_fraction = tile_fraction
        self.batch_size = batch_size

    def __call__(self, frames: np.ndarray) -> list[Detections]:
        if len(frames) == 0:
            return []
        h, w = frames.shape[1:3]
        wins = windows(h, w, self.tile_fraction)
        size = self.model.size
        patches = np.stack([_square(f, win, size) for f in frames for win in wins])
        found: list[Detections] = []
        for start in range(0, len(patches), self.batch_size):
            found += self.model.detect(torch.from_numpy(patches[start:start + self.batch_size]))
        per_frame = []
        for i in range(len(frames)):
            dets = [_to_frame(found[i * len(wins) + j], win, size, h, w) for j, win in enumerate(wins)]
            per_frame.append(_merge(dets, self.model.nms_iou))
        return per_frame


def _to_frame(d: Detections, win: Window, size: int, height: int, width: int) -> Detections:
    """Detections in window pixels -> frame pixels; boxes cut by an inner tile edge are dropped."""
    scale = win.side / size
    boxes = d.boxes * scale + [win.x, win.y, win.x, win.y]
    keypoints = d.keypoints * scale + [win.x, win.y]
    # A face cut by a tile's inner edge is found whole by a neighbouring tile or the full view.
    margin = 0.01 * win.side
    inner = np.zeros(len(boxes), bool)
    if win.side < max(height, width):
        inner |= (boxes[:, 0] < win.x + margin) & (win.x > 0)
        inner |= (boxes[:, 1] < win.y + margin) & (win.y > 0)
        inner |= (boxes[:, 2] > win.x + win.side - margin) & (win.x + win.side < width)
        inner |= (boxes[:, 3] > win.y + win.side - margin) & (win.y + win.side < height)
    keep = ~inner
    return Detections(boxes[keep].astype(np.float32), d.scores[keep], keypoints[keep].astype(np.float32))


def _merge(dets: list[Detections], iou: float) -> Detections:
    """One face per place. dets[0] is the whole-frame view, the rest are tiles: a face the tiles
    see (at several times the resolution) takes their box, so its size does not jump between
    frames where the coarse view also finds it and frames where it does not; the same face seen
    in overlapping tiles is blended into one box."""
    whole, tiles = dets[0], dets[1:]
    tile_boxes = np.concatenate([d.boxes for d in tiles]) if tiles else np.zeros((0, 4), np.float32)
    if len(whole.boxes) and len(tile_boxes):
        seen = box_iou(whole.boxes, tile_boxes).max(1) > iou
        whole = Detections(whole.boxes[~seen], whole.scores[~seen], whole.keypoints[~seen])
    dets = [whole, *tiles]
    boxes = np.concatenate([d.boxes for d in dets])
    if len(boxes) == 0:
        return Detections.empty()
    scores = np.concatenate([d.scores for d in dets])
    keypoints = np.concatenate([d.keypoints for d in dets]).reshape(-1, 12)
    return _drop_enclosing(weighted_nms(np.concatenate([boxes, keypoints], 1), scores, iou))


def _drop_enclosing(d: Detections) -> Detections:
    """Drop boxes that enclose a much smaller face: a face holds no face, but the whole-frame
    view at low resolution sometimes calls a whole person a face around the real one."""
    area, inter = box_area(d.boxes), box_intersection(d.boxes, d.boxes)
    # encloses[i, j]: box j lies mostly inside box i, which is over 4 times larger
    encloses = (inter > 0.8 * area[None, :]) & (area[:, None] > 4 * area[None, :])
    keep = ~encloses.any(1)
    return Detections(d.boxes[keep], d.scores[keep], d.keypoints[keep])
