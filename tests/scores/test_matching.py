"""Test-set prior matching: a known FAKE fraction pins a set whose scores all moved one way."""

import numpy as np
import pytest
from scipy.special import expit

from dfdc.scores.calibration import logit
from dfdc.scores.matching import (
    fifty_fifty_log_loss,
    match_prior,
    match_shift,
    matched_to_groups,
)
from dfdc.scores.metrics import log_loss

WIDE = (1e-6, 1 - 1e-6)


def source(seed: int, n_real: int, n_fake: int, shift: float = 0.0, separation: float = 1.0):
    """(P(FAKE), labels) of a weak detector on one source of footage; `shift` moves every logit
    alike, as footage unlike the training videos does (Celeb-DF's 13 of 14 at 0.99)."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(n_real, int), np.ones(n_fake, int)]
    z = rng.normal(np.where(y == 1, separation, -separation), 1.5) + shift
    return expit(z), y


def test_matching_pins_the_mean_and_keeps_the_order():
    p, _ = source(0, 60, 60, shift=2.5)
    matched = match_prior(p, 0.5, WIDE)
    assert matched.mean() == pytest.approx(0.5, abs=1e-6)
    assert np.array_equal(np.argsort(matched, kind="stable"), np.argsort(p, kind="stable"))
    assert match_prior(p, 0.3, WIDE).mean() == pytest.approx(0.3, abs=1e-6)


def test_a_set_moved_one_way_is_put_back_whatever_the_move():
    p, y = source(1, 100, 100)
    reference = match_prior(p, 0.5, WIDE)
    for move in (-4.0, 1.5, 6.0):
        moved = expit(logit(p) + move)
        assert np.allclose(match_prior(moved, 0.5, WIDE), reference, atol=1e-6)
        assert log_loss(y, match_prior(moved, 0.5, (0.01, 0.99))) < log_loss(y, np.clip(moved, 0.01, 0.99))
    assert match_shift(logit(expit(logit(p) + 3.0)), 0.5) == pytest.approx(match_shift(logit(p), 0.5) - 3.0, abs=1e-6)


def test_all_scores_at_a_clip_bound_are_matched_to_the_prior():
    assert np.allclose(match_prior(np.full(30, 0.99), 0.5, (0.01, 0.99)), 0.5)
    assert np.allclose(match_prior(np.r_[np.full(15, 0.0), np.full(15, 1.0)], 0.5, (0.01, 0.99)), [0.01] * 15 + [0.99] * 15)


def test_groups_are_matched_each_to_its_own_fake_fraction():
    (p1, y1), (p2, y2) = source(2, 4, 18, shift=3.0), source(3, 7, 7, shift=-2.0)
    one_class = np.full(5, 0.8)
    z = logit(np.r_[p1, p2, one_class])
    y = np.r_[y1, y2, np.ones(5, int)]
    g = np.r_[np.zeros(22, int), np.ones(14, int), np.full(5, 2)]
    out = matched_to_groups(z, y, g)
    assert expit(out[g == 0]).mean() == pytest.approx(18 / 22, abs=1e-6)
    assert expit(out[g == 1]).mean() == pytest.approx(0.5, abs=1e-6)
    assert np.array_equal(out[g == 2], z[g == 2])  # one class: nothing to match it to


def test_fifty_fifty_draws_score_balanced_sets_of_the_group():
    p, y = source(4, 6, 6)
    # with as many REAL as FAKE every draw is the whole group: the plain log loss
    assert fifty_fifty_log_loss(p, y, lambda q: q) == pytest.approx(log_loss(y, p))
    p, y = source(5, 4, 18, shift=2.0)
    raw = fifty_fifty_log_loss(p, y, lambda q: np.clip(q, 0.01, 0.99))
    matched = fifty_fifty_log_loss(p, y, lambda q: match_prior(q, 0.5, (0.01, 0.99)))
    assert matched < raw
    assert fifty_fifty_log_loss(p[y == 1], y[y == 1], lambda q: q) is None
