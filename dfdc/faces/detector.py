"""Finding faces in whole video frames: the detectors by name, and BlazeFace over tiles, the default.

A detector is any callable (N, H, W, 3) uint8 RGB frames -> Detections per frame, in frame pixels;
`create_detector(name)` builds one from the registry below (`--detector` on the command line).

BlazeFace only sees 128 or 256 px squares.
A DFDC face is often ~120 px in a 1920x1080 frame: resized whole it shrinks below what BlazeFace
finds. So every frame is looked at twice: whole (padded to a square) for close-up faces, and as
overlapping square tiles of 2/3 of its short side for small ones. All tiles of a batch of frames
go through the network together, and the detections are merged in frame pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from ..defaults import DETECTOR
from ..errors import DfdcError
from ..weights import blazeface_files
from .blazeface import load_blazeface
from .boxes import Detections, box_area, box_intersection, box_iou, weighted_nms


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


Detector = Callable[[np.ndarray], "list[Detections]"]


@dataclass(frozen=True)
class DetectorEntry:
    """How to build a detector, and which weight files it needs (verified; for checks and the Kaggle dataset)."""

    build: Callable[..., Detector]  # build(weights=..., device=...)
    files: Callable[[str | Path | None], tuple[Path, ...]]


_DETECTORS: dict[str, DetectorEntry] = {}


def register_detector(name: str, build: Callable[..., Detector],
                      files: Callable[[str | Path | None], tuple[Path, ...]]) -> None:
    """Make `build(weights=..., device=...)` available as create_detector(name)."""
    if name in _DETECTORS:
        raise ValueError(f"detector {name!r} is registered twice")
    _DETECTORS[name] = DetectorEntry(build, files)


def list_detectors() -> list[str]:
    return sorted(_DETECTORS)


def _entry(name: str) -> DetectorEntry:
    if name not in _DETECTORS:
        raise DfdcError(f"unknown face detector {name!r} (known: {', '.join(list_detectors())})")
    return _DETECTORS[name]


def detector_files(name: str = DETECTOR, weights: str | Path | None = None) -> tuple[Path, ...]:
    """The verified weight files detector `name` needs: a wrong or missing file fails here, in one line."""
    return _entry(name).files(weights)


def create_detector(name: str = DETECTOR, weights: str | Path | None = None,
                    device: str | torch.device = "cpu") -> Detector:
    """The detector `name` with its weights loaded (found by --weights, $DFDC_WEIGHTS, ./weights)."""
    return _entry(name).build(weights=weights, device=device)


# The front model (128 px) over tiles is the default: it found the face in every sampled frame of
# the DFDC sample videos at a fifth of the back model's cost.
register_detector("blazeface", partial(FaceDetector, back=False), partial(blazeface_files, back=False))
register_detector("blazeface_back", partial(FaceDetector, back=True), partial(blazeface_files, back=True))
