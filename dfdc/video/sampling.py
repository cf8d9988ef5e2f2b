"""Which frames of a video to read: frame sampling strategies by name (`--sampling`)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import DfdcError


def even_indices(total: int, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """n frame indices spread evenly over the whole video (inference)."""
    if total <= 0 or n <= 0:
        return np.zeros(0, np.int64)
    return np.unique(np.linspace(0, total - 1, min(n, total)).round().astype(np.int64))


def train_indices(total: int, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """The original design's training sampling: a random start in the first half, every 2nd frame."""
    rng = rng or np.random.default_rng()
    start = int(rng.integers(0, max(1, total // 2) + 1))
    idx = start + 2 * np.arange(n)
    if idx[-1] >= total:  # short video: slide back so all n frames fit when possible
        idx = idx - (idx[-1] - (total - 1))
    return idx[idx >= 0]


SAMPLINGS: dict[str, Callable[..., np.ndarray]] = {"even": even_indices, "train": train_indices}


def get_sampling(name: str) -> Callable[..., np.ndarray]:
    """The frame sampling called `name`; a wrong name (a CLI flag) is the user's mistake."""
    if name not in SAMPLINGS:
        raise DfdcError(f"unknown frame sampling {name!r}; choose from {', '.join(SAMPLINGS)}")
    return SAMPLINGS[name]
