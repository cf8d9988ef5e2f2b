"""Square face crops with a margin, cut from whole frames at a track's boxes."""

from __future__ import annotations

import cv2
import numpy as np

from ..defaults import CROP_MARGIN


def square_box(box: np.ndarray, margin: float, height: int, width: int) -> tuple[int, int, int]:
    """(x, y, side) of a square around the box, `margin` of its size added on each side.

    The square is moved inside the frame rather than cut, so crops are never stretched. A square
    larger than the frame (a close-up whose face is taller than the frame) keeps its size, centred
    on the face as far as the frame allows, and reaches outside: the crop shows the whole face,
    padded, not its middle.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    side = round(max(max(x1 - x0, y1 - y0) * (1 + 2 * margin), 2.0))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2

    def place(centre: float, length: int) -> int:
        lo, hi = sorted((0, length - side))  # inside the frame, or covering it where the square is larger
        return round(min(max(centre - side / 2, lo), hi))

    return place(cx, width), place(cy, height), side


def crop_face(frame: np.ndarray, box: np.ndarray, size: int, margin: float = CROP_MARGIN) -> np.ndarray:
    """The face at `box` as a size x size RGB crop (black where the square leaves the frame)."""
    height, width = frame.shape[:2]
    x, y, side = square_box(box, margin, height, width)
    patch = frame[max(y, 0):y + side, max(x, 0):x + side]
    if patch.shape[:2] != (side, side):
        patch = cv2.copyMakeBorder(patch, max(-y, 0), side - patch.shape[0] - max(-y, 0),
                                   max(-x, 0), side - patch.shape[1] - max(-x, 0), cv2.BORDER_CONSTANT, value=0)
    interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return cv2.resize(patch, (size, size), interpolation=interp)
