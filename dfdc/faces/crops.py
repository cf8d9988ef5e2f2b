"""Square face crops with a margin, cut from whole frames at a track's boxes."""

from __future__ import annotations

import cv2
import numpy as np

from ..defaults import CROP_MARGIN


def square_box(box: np.ndarray, margin: float, height: int, width: int) -> tuple[int, int, int]:
    """(x, y, side) of a square around the box, `margin` of its size added on each side.

    The square is moved inside the frame rather than cut, so crops are never stretched; only a
    square larger than the frame's short side is shrunk to fit.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    side = int(round(min(max(side, 2.0), height, width)))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    x = int(round(min(max(cx - side / 2, 0), width - side)))
    y = int(round(min(max(cy - side / 2, 0), height - side)))
    return x, y, side


def crop_face(frame: np.ndarray, box: np.ndarray, size: int, margin: float = CROP_MARGIN) -> np.ndarray:
    """The face at `box` as a size x size RGB crop."""
    x, y, side = square_box(box, margin, frame.shape[0], frame.shape[1])
    patch = frame[y:y + side, x:x + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return cv2.resize(patch, (size, size), interpolation=interp)
