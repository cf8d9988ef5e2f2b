"""Frame probabilities -> one video score, by a named aggregation (`--aggregation`, stored in checkpoints)."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy import special, stats

from ..defaults import AGGREGATION
from ..errors import DfdcError

# The DFDC 1st place's `confident_strategy` (selimsef/dfdc_deepfake_challenge, kernel_utils.py):
# `fakes > 11 and fakes > len // 2.5`, i.e. the count of confident FAKE frames, not the track length.
FAKE_T = 0.8  # a frame above this is confidently FAKE
REAL_T = 0.2  # a frame below this is confidently REAL
MIN_FAKE_FRAMES = 11  # need MORE than this many confident FAKE frames ...
FAKE_SHARE = 0.4  # ... and more than this share of all frames
REAL_SHARE = 0.9  # else: more than this share of confident REAL frames
TRIM = 0.1  # trimmed: the share of frames left out at each end


def mean_score(p: np.ndarray) -> float:
    """The plain mean: every frame counts the same."""
    return float(np.mean(p))


def confident_score(p: np.ndarray) -> float:
    """The mean of the confident frames when they dominate, else of all frames.

    A face swap often shows in only part of a track (blur, turned head), so when many frames are
    confidently FAKE their mean is a better score than a mean diluted by the unsure frames. Both
    conditions must hold: more than MIN_FAKE_FRAMES such frames and more than FAKE_SHARE of the track.
    """
    fake = p[p > FAKE_T]
    real = p[p < REAL_T]
    # Shares as ratios, so that exactly 40% (12 of 30) compares equal to FAKE_SHARE, not above it.
    if fake.size > MIN_FAKE_FRAMES and fake.size / p.size > FAKE_SHARE:
        return float(np.mean(fake))
    if real.size / p.size > REAL_SHARE:
        return float(np.mean(real))
    return float(np.mean(p))


def trimmed_score(p: np.ndarray) -> float:
    """The mean of the middle 80% of frames: a few frames with a bad crop or a blink decide nothing."""
    return float(stats.trim_mean(p, TRIM))


def logit_mean_score(p: np.ndarray) -> float:
    """The sigmoid of the mean logit: frame evidence adds up as a logistic head's does, so many
    mildly FAKE frames outweigh one confidently REAL one."""
    z = np.log(np.clip(p, 1e-6, 1 - 1e-6)) - np.log1p(-np.clip(p, 1e-6, 1 - 1e-6))
    return float(special.expit(z.mean()))


AGGREGATIONS: dict[str, Callable[[np.ndarray], float]] = {
    "mean": mean_score,
    "confident": confident_score,
    "trimmed": trimmed_score,
    "logit_mean": logit_mean_score,
}


def get_aggregation(name: str) -> Callable[[np.ndarray], float]:
    """The aggregation called `name`; a wrong name (a CLI flag) is the user's mistake."""
    if name not in AGGREGATIONS:
        raise DfdcError(f"unknown aggregation {name!r}; choose from {', '.join(AGGREGATIONS)}")
    return AGGREGATIONS[name]


def track_score(p: np.ndarray, aggregation: str = AGGREGATION) -> float:
    """One face track's P(FAKE) from its frames' P(FAKE)."""
    p = np.asarray(p, dtype=float).ravel()
    if p.size == 0:
        raise ValueError("a track needs at least one frame")
    return get_aggregation(aggregation)(p)


def video_score(tracks: Sequence[np.ndarray], aggregation: str = AGGREGATION) -> float | None:
    """A video's P(FAKE): the max over its face tracks, since one swapped face makes the video FAKE.

    Tracks without frames are skipped; None when no frame is left (no face found), so the caller
    decides what to submit (the prior).
    """
    get_aggregation(aggregation)  # a wrong name fails even for a video without faces
    scores = [track_score(p, aggregation) for p in tracks if np.size(p) > 0]
    return max(scores) if scores else None
