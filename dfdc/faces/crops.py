"""Square face crops with a margin, cut from whole frames at a track's boxes, inside the picture.

The picture is the frame less any black bars around it (letterbox, pillarbox, or a face-crop video
pasted on a black canvas, as Celeb-DF's 298x298 videos are): a crop that shows such bars tells the
model where a video comes from, not whether its face is fake (all 14 Celeb-DF videos scored FAKE).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..defaults import CROP_MARGIN

BLACK = 24  # brightest value of a black bar after compression (0-255)
LIT = 0.02  # share of a row or column's pixels that must be brighter, in some frame, for it to be picture
EDGE = 2  # pixels at a bar's side left out of the picture: compression blurs the bar into it

Bounds = tuple[int, int, int, int]  # x0, y0, x1, y1


def picture_bounds(frames: np.ndarray) -> Bounds:
    """(x0, y0, x1, y1) of the picture inside black bars, from frames (N, H, W, 3) of one video:
    the rows and columns lit in some frame (every 4th frame is enough), less the EDGE pixels that
    compression smears into a bar's side."""
    height, width = frames.shape[1:3]
    if len(frames) == 0:
        return 0, 0, width, height
    brightest = frames[0].copy()
    for frame in frames[4::4]:
        np.maximum(brightest, frame, out=brightest)  # in place: 70x faster than one max over axes here
    lit = np.maximum(np.maximum(brightest[..., 0], brightest[..., 1]), brightest[..., 2]) > BLACK
    cols, rows = np.flatnonzero(lit.mean(0) > LIT), np.flatnonzero(lit.mean(1) > LIT)
    if len(cols) == 0 or len(rows) == 0:  # a black video: no bars to tell apart
        return 0, 0, width, height

    def inside(first: int, last: int, length: int) -> tuple[int, int]:
        start = first + EDGE if first > 0 else 0
        end = last + 1 - EDGE if last + 1 < length else length
        return (start, end) if end > start else (first, last + 1)

    (x0, x1), (y0, y1) = inside(int(cols[0]), int(cols[-1]), width), inside(int(rows[0]), int(rows[-1]), height)
    return x0, y0, x1, y1


def square_box(box: np.ndarray, margin: float, bounds: Bounds) -> tuple[int, int, int]:
    """(x, y, side) of a square around the box, `margin` of its size added on each side.

    The square is moved inside the picture (`bounds`) rather than cut, so crops are never
    stretched. Where the margin would make it larger than the picture, the margin gives way down
    to the picture's short side. Only a face larger than the picture itself (a close-up) keeps its
    margin, centred on the face as far as the picture allows, and reaches outside: the crop shows
    the whole face, padded, not its middle.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    bx0, by0, bx1, by1 = bounds
    face, short = max(x1 - x0, y1 - y0), min(bx1 - bx0, by1 - by0)
    side = face * (1 + 2 * margin)
    if face <= short:
        side = min(side, short)
    side = round(max(side, 2.0))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2

    def place(centre: float, start: int, end: int) -> int:
        lo, hi = sorted((start, end - side))  # inside the picture, or covering it where the square is larger
        return round(min(max(centre - side / 2, lo), hi))

    return place(cx, bx0, bx1), place(cy, by0, by1), side


def crop_face(frame: np.ndarray, box: np.ndarray, size: int, margin: float = CROP_MARGIN,
              bounds: Bounds | None = None) -> np.ndarray:
    """The face at `box` as a size x size RGB crop (black where the square leaves the frame);
    `bounds`: the picture inside the frame (picture_bounds), the whole frame if None."""
    height, width = frame.shape[:2]
    x, y, side = square_box(box, margin, bounds or (0, 0, width, height))
    patch = frame[max(y, 0):y + side, max(x, 0):x + side]
    if patch.shape[:2] != (side, side):
        patch = cv2.copyMakeBorder(patch, max(-y, 0), side - patch.shape[0] - max(-y, 0),
                                   max(-x, 0), side - patch.shape[1] - max(-x, 0), cv2.BORDER_CONSTANT, value=0)
    interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return cv2.resize(patch, (size, size), interpolation=interp)
