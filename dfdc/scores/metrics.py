"""Scores for P(FAKE) predictions: the Kaggle log loss, and the same loss as a 50/50 test set would give it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn import metrics

from ..errors import DfdcError

# Kaggle clips predictions to [eps, 1 - eps] before taking logs.
KAGGLE_EPS = 1e-15


def _arrays(labels: ArrayLike, probs: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=int).ravel()
    p = np.asarray(probs, dtype=float).ravel()
    if y.shape != p.shape or y.size == 0:
        raise ValueError(f"need as many labels as probabilities, at least one (got {y.size} and {p.size})")
    return y, p


def log_loss(labels: ArrayLike, probs: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
    """Kaggle's metric: mean binary cross-entropy of P(FAKE), predictions clipped to [1e-15, 1 - 1e-15]."""
    y, p = _arrays(labels, probs)
    p = np.clip(p, KAGGLE_EPS, 1 - KAGGLE_EPS)
    return float(metrics.log_loss(y, p, labels=[0, 1], sample_weight=sample_weight))


def prior_weights(labels: ArrayLike, prior: float = 0.5) -> np.ndarray:
    """Per-video weights under which the FAKE videos weigh `prior` in all, the REAL ones 1 - prior."""
    y = np.asarray(labels, dtype=int).ravel()
    n_fake = int(y.sum())
    n_real = y.size - n_fake
    return np.where(y == 1, prior / max(n_fake, 1), (1 - prior) / max(n_real, 1))


def balanced_log_loss(labels: ArrayLike, probs: ArrayLike, prior: float = 0.5) -> float | None:
    """The log loss expected on a test set whose FAKE fraction is `prior` (0.5: mean of REAL and FAKE losses).

    Training and validation sets are ~84% FAKE while the DFDC test sets were 50/50, so the plain
    log loss on them rewards leaning towards FAKE; this one does not. None without both classes.
    """
    y, p = _arrays(labels, probs)
    if np.unique(y).size < 2:
        return None
    return log_loss(y, p, sample_weight=prior_weights(y, prior))


def auc(labels: ArrayLike, probs: ArrayLike) -> float | None:
    """ROC AUC: how well the scores rank FAKE above REAL, whatever their calibration. None without both classes."""
    y, p = _arrays(labels, probs)
    if np.unique(y).size < 2:
        return None
    return float(metrics.roc_auc_score(y, p))


def accuracy(labels: ArrayLike, probs: ArrayLike) -> float:
    """Fraction right when P(FAKE) > 0.5 is called FAKE (0.5 itself counts as REAL)."""
    y, p = _arrays(labels, probs)
    return float(metrics.accuracy_score(y, (p > 0.5).astype(int)))


def figure(value: float | None, digits: int = 4) -> str:
    """A score as printed: fixed digits, or n/a where it has none (AUC of one class, say)."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def score_table(df: pd.DataFrame) -> dict[str, float | int | None]:
    """All the scores of a table with columns `label` (0 REAL, 1 FAKE) and `p` (P(FAKE)), as plain values."""
    missing = [c for c in ("label", "p") if c not in df.columns]
    if missing:
        raise DfdcError(f"score table needs columns label and p; missing {', '.join(missing)}")
    if df.empty:
        raise DfdcError("score table has no rows")
    y = df["label"].to_numpy()
    if not np.isin(y, (0, 1)).all():
        raise DfdcError("labels must be 0 (REAL) or 1 (FAKE)")
    p = df["p"].to_numpy(dtype=float)
    if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        raise DfdcError("p must be probabilities: finite, in [0, 1]")
    n_fake = int(np.sum(y == 1))
    return {
        "n": int(y.size),
        "n_fake": n_fake,
        "n_real": int(y.size) - n_fake,
        "log_loss": log_loss(y, p),
        "balanced_log_loss": balanced_log_loss(y, p),
        "auc": auc(y, p),
        "accuracy": accuracy(y, p),
    }
