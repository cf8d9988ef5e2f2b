"""A test set's scores shifted together until their mean is the test set's known FAKE fraction.

Footage from another source moves a model's scores all one way: out of fold on
../shared/data/real, 13 of Celeb-DF's 14 videos, REAL and FAKE, scored 0.99. No map fitted on
other sources can see that coming, but a test set whose FAKE fraction is known (the DFDC test
sets were 50/50) can pin it: one logit shift for the whole set, found so that the mean P(FAKE) is
that fraction. The ranking within the set is kept; only where the set sits moves. It needs a set
(MATCH_MIN videos or more; a handful of videos says little about their own balance), and it is
only right when the fraction is known, so it is asked for (`--match-prior`), never assumed.

The map it follows (`matched_calibrator` in a checkpoint) is fitted the same way: on out-of-fold
scores each shifted per fold to that fold's FAKE fraction, so the map never learns a shift that
matching will undo. Judged on random 50/50 draws of each held-out fold (`fifty_fifty_log_loss`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import brentq
from scipy.special import expit

from ..defaults import MATCH_MIN
from .calibration import LOGIT_MAX, logit
from .metrics import log_loss

__all__ = ["MATCH_MIN", "fifty_fifty_log_loss", "match_prior", "match_shift", "matched_to_groups"]


def match_shift(z: ArrayLike, prior: float) -> float:
    """The logit shift b with mean(sigmoid(z + b)) == prior (z: the set's logits)."""
    z = np.clip(np.asarray(z, dtype=float).ravel(), -LOGIT_MAX, LOGIT_MAX)
    bound = 2 * LOGIT_MAX + abs(float(logit(prior)))  # the mean passes `prior` within +-bound
    return float(brentq(lambda b: expit(z + b).mean() - prior, -bound, bound, xtol=1e-9))


def match_prior(probs: ArrayLike, prior: float, clip: tuple[float, float]) -> np.ndarray:
    """The set's P(FAKE) shifted together (on the logit) to mean `prior`, then clipped to `clip`."""
    z = logit(probs)
    return np.clip(expit(z + match_shift(z, prior)), *clip)


def matched_to_groups(z: ArrayLike, labels: ArrayLike, groups: ArrayLike) -> np.ndarray:
    """Logits each shifted per group to the group's own FAKE fraction (a group with one class is
    left as it is): what matching does to a test set, for fitting the map that comes before it."""
    z, y, g = (np.asarray(a).ravel() for a in (z, labels, groups))
    out = z.astype(float).copy()
    for group in np.unique(g):
        m = g == group
        share = float(y[m].mean())
        if 0 < share < 1:
            out[m] = z[m] + match_shift(z[m], share)
    return out


def fifty_fifty_log_loss(probs: ArrayLike, labels: ArrayLike, score: Callable[[np.ndarray], np.ndarray],
                         draws: int = 200, seed: int = 0) -> float | None:
    """Mean log loss of `score` over random test sets of this group's videos with as many REAL as
    FAKE (all of the rarer class, as many of the other drawn without replacement): how a set of
    unseen footage with a known 50/50 balance would score. None without both classes."""
    p, y = np.asarray(probs, dtype=float).ravel(), np.asarray(labels, dtype=int).ravel()
    real, fake = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    k = min(real.size, fake.size)
    if k == 0:
        return None
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(draws):
        pick = np.concatenate([rng.choice(real, k, replace=False), rng.choice(fake, k, replace=False)])
        losses.append(log_loss(y[pick], score(p[pick])))
    return float(np.mean(losses))
