"""Finding faces in whole video frames: the detectors by name, and BlazeFace over tiles, the default.

A detector is any callable (N, H, W, 3) uint8 RGB frames -> Detections per frame, in frame pixels;
`create_detector(name)` builds one from the registry below (`--detector` on the command line). One
that can also take a second look at a box (`look`, see `Detector`) lets the tracks be verified.

BlazeFace only sees 128 or 256 px squares.
A DFDC face is often ~120 px in a 1920x1080 frame: resized whole it shrinks below what BlazeFace
finds. So every frame is looked at twice: whole (padded to a square) for close-up faces, and as
overlapping square tiles (at most 3/4 of its short side) for small ones. The tiles overlap by at
least the smallest face the whole view finds (1/8 of the long side): a face cut by every tile's
edge is large enough for the whole view. All tiles of a batch of frames go through the network
together, and the detections are merged in frame pixels; where a detection lies inside a much
larger one, a second look decides whether it is a face of its own (the larger box is then a
person taken for a face) or a part of the larger face (a close-up's nose and mouth, seen by a tile).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch

from ..defaults import DETECTOR
from ..device import scoring_batch
from ..errors import DfdcError
from ..weights import blazeface_files
from .blazeface import load_blazeface
from .boxes import (
    Detections,
    box_area,
    box_intersection,
    box_iou,
    box_side,
    face_like,
    weighted_nms,
)

# The smallest face the whole-frame view finds reliably, as a fraction of the frame's long side:
# 16 px of the front model's 128 (found in 87% of 92 real faces resized to 16 px, 48% at 12 px,
# 93% at 18-20 px). Tiles overlap by at least this, so a face cut by the inner edges of all the
# tiles it touches is one the whole view finds.
WHOLE_VIEW_FACE = 1 / 8
# A second look frames the box at this many times its side (the face at 40% of the view, where the
# front model is surest): real faces are found again at the same place (IoU 0.8-0.95), a building,
# a flag, a caption or an ear mostly not (IoU 0-0.5) (measured on ../shared/data/real).
LOOK_FACTOR = 2.5
# Boxes of one face from different windows differ in side by up to ~20%; a part of a face (a
# close-up's nose and mouth) can be 0.7 of the face's side. So boxes whose sides differ by more
# than this factor are never blended as one face: a box inside a larger one is either a part of it
# or a face of its own, and `FaceDetector._whole_over_parts` decides which.
PART_RATIO = 1.25


@dataclass(frozen=True)
class Window:
    """A square region of a frame: its top-left corner and side, in frame pixels (it may reach outside)."""

    x: int
    y: int
    side: int


def _span(length: int, n: int, overlap: float) -> float:
    """The tile side for n tiles along `length` that overlap by `overlap`."""
    return float(length) if n == 1 else (length + (n - 1) * overlap) / n


def windows(height: int, width: int, max_tile: float = 0.75, overlap: float = WHOLE_VIEW_FACE,
            min_tile: float = 2 / 3) -> list[Window]:
    """The whole frame (as a padded square) plus a grid of overlapping square tiles.

    The fewest tiles of `min_tile` to `max_tile` of the short side that overlap by `overlap` of
    the long side, then the smallest such side (the most resolution). 1920x1080: 6 tiles of 800 px
    (2/3 was 720) that overlap by 240 and 520 px; 720x1280 (portrait): 6 of 534 (overlaps 348 across, 161 down);
    1080x1080: 4 of 720 (360).
    """
    long_side, short_side = max(height, width), min(height, width)
    out = [Window(0, 0, long_side)]
    need = overlap * long_side
    cap = max_tile * short_side
    if cap < 16:
        return out
    best = None
    for nx in range(1, 13):
        for ny in range(1, 13):
            side = max(math.ceil(max(_span(width, nx, need), _span(height, ny, need)) - 1e-6),
                       round(min_tile * short_side))
            if side <= cap and (best is None or (nx * ny, side) < (best[0] * best[1], best[2])):
                best = (nx, ny, side)
    if best is None:  # a long strip: tiles of the largest side, overlapping less
        best = (math.ceil(width / cap), math.ceil(height / cap), cap)
    nx, ny, side = best
    side = int(side)
    xs = np.linspace(0, width - side, nx).round().astype(int) if nx > 1 else [(width - side) // 2]
    ys = np.linspace(0, height - side, ny).round().astype(int) if ny > 1 else [(height - side) // 2]
    out += [Window(int(x), int(y), side) for y in ys for x in xs]
    return out


def _square(frame: np.ndarray, w: Window, size: int) -> np.ndarray:
    """The window's pixels resized to size x size (zero padded where it leaves the frame)."""
    h, wd = frame.shape[:2]
    x0, y0, x1, y1 = max(w.x, 0), max(w.y, 0), min(w.x + w.side, wd), min(w.y + w.side, h)
    if (x0, y0, x1, y1) == (w.x, w.y, w.x + w.side, w.y + w.side):
        return cv2.resize(frame[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)
    # Resize only the part inside the frame, then pad: the whole view of a 1920x1080 frame is not
    # a 1920x1920 copy to shrink (the same pixels where the sides divide evenly, as DFDC's do).
    patch = np.zeros((size, size, 3), np.uint8)
    f = size / w.side
    px0, py0, px1, py1 = (round((x0 - w.x) * f), round((y0 - w.y) * f), round((x1 - w.x) * f), round((y1 - w.y) * f))
    if px1 > px0 and py1 > py0:
        patch[py0:py1, px0:px1] = cv2.resize(frame[y0:y1, x0:x1], (px1 - px0, py1 - py0), interpolation=cv2.INTER_AREA)
    return patch


def _halvings(side: int, size: int) -> int:
    """How often a window's frame is halved before the window is resized to the network's side:
    while the window stays at least twice that side, so the last resize still averages 2x2 pixels
    or more. INTER_AREA is fast at whole factors only: an 800 px tile (1080p) took 1.9 ms to 128 px,
    the frame halved once (0.5 ms, for all its windows) and the 400 px tile from it 0.6 ms; the
    patches differ by 0.06 of 255 on average (max 2). Detecting the 5 DFDC sample videos (every 4th
    frame whole), the resizes took 0.32 s instead of 0.69."""
    k = 0
    while side >> (k + 1) >= 2 * size:
        k += 1
    return k


def _on_grid(w: Window, size: int) -> Window:
    """The window moved and sized to whole pixels of the frame halved as often as `_halvings` says
    (by under 2**k px), so `_squares` cuts it exactly. Its side stays under the next halving's bound
    (4 network sides on that level): a 1023 px window at 128 px rounded up to 1024, halved once more."""
    f = 1 << _halvings(w.side, size)
    return Window(round(w.x / f) * f, round(w.y / f) * f, min(max(round(w.side / f), 1), 4 * size - 1) * f)


def _squares(frame: np.ndarray, wins: list[Window], size: int) -> list[np.ndarray]:
    """Each window's pixels at size x size (windows on the grid of their `_halvings`), the frame
    halved once for all of them."""
    levels = [frame]
    out = []
    for w in wins:
        k = _halvings(w.side, size)
        while len(levels) <= k:
            f = levels[-1]
            h, wd = f.shape[0] // 2, f.shape[1] // 2
            levels.append(cv2.resize(f[:2 * h, :2 * wd], (wd, h), interpolation=cv2.INTER_AREA))
        out.append(_square(levels[k], Window(w.x >> k, w.y >> k, w.side >> k), size))
    return out


def _around(box: np.ndarray, factor: float) -> Window:
    """The square window `factor` times the box's side, centred on it."""
    side = max(round(float(box_side(box)) * factor), 2)
    cx, cy = float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2
    return Window(round(cx - side / 2), round(cy - side / 2), side)


class FaceDetector:
    """BlazeFace over whole frames: (N, H, W, 3) uint8 RGB -> faces per frame, in frame pixels.

    The front model (128 px) on the whole frame plus tiles found the face in every sampled frame of
    the DFDC sample videos at a fifth of the back model's (256 px) cost.
    """

    def __init__(self, weights: str | Path | None = None, back: bool = False,
                 device: str | torch.device = "cpu", min_score: float | None = None,
                 max_tile: float = 0.75, batch_size: int | None = None, own_thread: bool | None = None,
                 one_shape: bool | None = None) -> None:
        self.model = load_blazeface(weights, back=back, device=device)
        if min_score is not None:
            self.model.min_score = min_score
        self.max_tile = max_tile
        self.batch_size = batch_size or scoring_batch(torch.device(device))  # windows per network call
        # The back model finds smaller faces in its 256 px: frame the box wider.
        self.look_factor = 2 * LOOK_FACTOR if back else LOOK_FACTOR
        self.windows_run = 0  # network inputs so far (tiles, whole views, second looks): the detector's work
        # The network in one thread of its own (`own_thread`; default: on CUDA). PyTorch keeps the cuDNN
        # kernels it chose per thread, so each of predict's worker threads chose them again for every new
        # batch shape: two workers detecting at once took 15-22 s for two videos against 0.3-0.6 s for one
        # (an H100; `benchmarks/detect_threads.py` compares the two). On a CPU the workers detect side by side.
        if own_thread is None:
            own_thread = torch.device(device).type == "cuda"
        self._network = ThreadPoolExecutor(1, "detector") if own_thread else None
        # Every batch padded to batch_size (`one_shape`; default: on CUDA), the padding's detections
        # dropped. cuDNN plans its kernels for each new input shape, and BlazeFace's batches come in
        # every size from 1 (a look around one face) to 64 (tiles), each planned anew: the first video
        # of a predict run took 11 s on an H200, and bench_predict.py --device cuda went from 1.42-1.51
        # to 0.94-0.96 s per video with one shape. On a CPU the padding would be work for nothing.
        self.one_shape = torch.device(device).type == "cuda" if one_shape is None else one_shape

    def __call__(self, frames: np.ndarray) -> list[Detections]:
        if len(frames) == 0:
            return []
        h, w = frames.shape[1:3]
        size = self.model.size
        wins = [_on_grid(win, size) for win in windows(h, w, self.max_tile)]
        patches = np.stack([p for f in frames for p in _squares(f, wins, size)])
        found = self._detect(patches)
        per_frame = []
        for i, frame in enumerate(frames):
            dets = [_to_frame(found[i * len(wins) + j], win, size, h, w) for j, win in enumerate(wins)]
            merged = _merge(dets, self.model.nms_iou, wins[-1].side)
            per_frame.append(self._whole_over_parts(frame, merged, wins[-1].side))
        return per_frame

    def _detect(self, patches: np.ndarray) -> list[Detections]:
        found: list[Detections] = []
        detect = self.model.detect
        for start in range(0, len(patches), self.batch_size):
            batch = patches[start:start + self.batch_size]
            n = len(batch)
            if self.one_shape and n < self.batch_size:
                batch = np.concatenate([batch, np.zeros((self.batch_size - n, *batch.shape[1:]), batch.dtype)])
            batch = torch.from_numpy(batch)
            found += (self._network.submit(detect, batch).result() if self._network else detect(batch))[:n]
        self.windows_run += len(patches)
        return found

    def look(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """A second look at each box of one frame: the box's surroundings (look_factor times its
        side) detected again. Per box, the IoU of the best detection there with the box (0: none)."""
        return self.near([frame] * len(boxes), boxes)[1]

    def near(self, frames: list[np.ndarray], boxes: np.ndarray) -> tuple[Detections, np.ndarray]:
        """A look around each box in its frame (look_factor times its side: a face fills 40% of the
        view, where the front model is surest): per box, the detection there that overlaps it most,
        and that IoU (0, with the box itself and no score, where nothing is found). One window per
        face instead of the whole view and every tile: how faces are followed between full detections."""
        n = len(boxes)
        out = Detections(np.asarray(boxes, np.float32).reshape(n, 4).copy(), np.zeros(n, np.float32),
                         np.zeros((n, 6, 2), np.float32))
        ious = np.zeros(n)
        if n == 0:
            return out, ious
        size = self.model.size
        wins = [_on_grid(_around(b, self.look_factor), size) for b in boxes]
        same: dict[int, list[int]] = {}  # one frame's windows cut together
        for k, f in enumerate(frames):
            same.setdefault(id(f), []).append(k)
        patches: list[np.ndarray] = [np.empty(0)] * n
        for ks in same.values():
            for k, patch in zip(ks, _squares(frames[ks[0]], [wins[k] for k in ks], size)):
                patches[k] = patch
        found = self._detect(np.stack(patches))
        for k, (d, win) in enumerate(zip(found, wins)):
            if len(d.boxes):
                scale = win.side / size
                seen = (d.boxes * scale + [win.x, win.y, win.x, win.y]).astype(np.float32)
                overlap = box_iou(out.boxes[k:k + 1], seen)[0]
                best = int(overlap.argmax())
                ious[k] = overlap[best]
                if ious[k] > 0:
                    out.boxes[k], out.scores[k] = seen[best], d.scores[best]
                    out.keypoints[k] = d.keypoints[best] * scale + [win.x, win.y]
        return out, ious

    def _whole_over_parts(self, frame: np.ndarray, d: Detections, tile: int) -> Detections:
        """Where a box lies inside a much larger one, keep one: the small one if a second look finds
        it a face of its own (the large box is then a person or a group taken for a face), else the
        large one (the small one is a part of it: a close-up's nose and mouth, seen by a tile).

        A tile reports a part of a face only where the face is too large for it, so a part is at
        least a third of the tile (0.36-0.91 on the close-ups of ../shared/data/real): a box under
        a fifth of the tile's side is a face without a second look. A box whose landmarks are not
        arranged as a face's is a part; otherwise the one a second look finds better wins."""
        side, area = box_side(d.boxes), box_area(d.boxes)
        # inside[big, small]: most of the small box lies in the big one, PART_RATIO times larger or more
        inside = ((box_intersection(d.boxes, d.boxes) > 0.7 * area[None, :])
                  & (side[:, None] >= PART_RATIO * side[None, :]))
        if not inside.any():
            return d
        looks: dict[int, float] = {}

        def seen(k: int) -> float:
            if k not in looks:
                looks[k] = float(self.look(frame, d.boxes[k:k + 1])[0])
            return looks[k]

        drop: set[int] = set()
        for big, small in sorted(map(tuple, np.argwhere(inside)), key=lambda p: -side[p[1]]):
            if big in drop or small in drop:
                continue
            if side[small] < tile / 5:
                face = True
            elif not face_like(d.boxes[small:small + 1], d.keypoints[small:small + 1])[0]:
                face = False  # eyes, nose and mouth not where a face has them: a part
            else:
                own = seen(small)
                face = own >= 0.5 and own > seen(big)
            drop.add(int(big) if face else int(small))
        return _take(d, np.array([k not in drop for k in range(len(d.boxes))]))


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


def _merge(dets: list[Detections], iou: float, tile: int) -> Detections:
    """One face per place. dets[0] is the whole-frame view, the rest are tiles of side `tile`.

    A face under half a tile is seen by the tiles at several times the whole view's resolution:
    it takes their box, so its size does not jump between frames where the coarse view also finds
    it and frames where it does not. A larger face is the whole view's: a tile sees it cut by its
    edges or in part, so the whole view's box wins. The same face seen in overlapping tiles is
    blended into one box. Boxes of very different sizes are not blended (a whole face and a part
    of it, a person and a face): `FaceDetector._whole_over_parts` chooses between them.
    """
    whole = dets[0]
    tiles = _join(dets[1:])
    if len(whole.boxes) and len(tiles.boxes):
        overlap = box_iou(whole.boxes, tiles.boxes) > iou
        ratio = box_side(whole.boxes)[:, None] / np.maximum(box_side(tiles.boxes)[None, :], 1e-6)
        similar = (ratio < PART_RATIO) & (ratio > 1 / PART_RATIO)
        small = box_side(tiles.boxes)[None, :] <= tile / 2
        seen = (overlap & similar & small).any(1)
        cut = (overlap & ~small & ~seen[:, None]).any(0)
        whole = _take(whole, ~seen)
        tiles = _take(tiles, ~cut)
    both = _join([whole, tiles])
    if len(both.boxes) == 0:
        return Detections.empty()
    rows = np.concatenate([both.boxes, both.keypoints.reshape(-1, 12)], 1)
    return weighted_nms(rows, both.scores, iou, max_ratio=PART_RATIO)


def _take(d: Detections, keep: np.ndarray) -> Detections:
    return Detections(d.boxes[keep], d.scores[keep], d.keypoints[keep])


def _join(dets: list[Detections]) -> Detections:
    if not dets:
        return Detections.empty()
    return Detections(np.concatenate([d.boxes for d in dets]).astype(np.float32),
                      np.concatenate([d.scores for d in dets]).astype(np.float32),
                      np.concatenate([d.keypoints for d in dets]).astype(np.float32))


class Detector(Protocol):
    """What the pipeline needs of a face detector: frames -> faces per frame, in frame pixels.

    A detector may also have `look(frame, boxes) -> IoU per box` (a second look at each box, as
    FaceDetector.look): tracks are then verified by it; without it, by landmarks alone. And
    `near(frames, boxes) -> (best detection per box, its IoU)` (FaceDetector.near): with detection on
    every k-th sampled frame only, faces are then found again around their boxes in between.
    """

    def __call__(self, frames: np.ndarray) -> list[Detections]: ...


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
