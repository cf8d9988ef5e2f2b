"""The one clip definition of the sequence models, shared by training, validation and `dfdc predict`.

A video is sampled at `frames` evenly spread frames (the checkpoint's `frames`, as the face cache
it was trained on); a clip is `clip_length` consecutive samples of one face track. Training draws
clips at random starts; validation and predict score the windows below and aggregate them.
"""

from __future__ import annotations

import numpy as np


def clip_windows(n: int, length: int) -> list[np.ndarray]:
    """Index windows of `length` consecutive crops covering n crops (the last aligned to the end;
    fewer than `length` crops are padded by repeating the last one)."""
    if n <= length:
        return [np.minimum(np.arange(length), max(n, 1) - 1)]
    starts = list(range(0, n - length + 1, length))
    if starts[-1] != n - length:
        starts.append(n - length)
    return [np.arange(s, s + length) for s in starts]
