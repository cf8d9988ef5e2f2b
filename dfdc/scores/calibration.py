"""Raw P(FAKE) -> calibrated P(FAKE) for the test set: a fitted map, a prior shift, then a clip.

Log loss punishes one confident wrong answer more than many right ones reward, so a model's
raw scores (overconfident, and trained on ~84% FAKE videos) go through three steps:
  1. a map fitted on held-out labels (identity, temperature, platt or isotonic; chosen by
     cross-validation), all working on the logit of the score;
  2. a logit shift of logit(test_prior) - logit(train_prior): the map learnt the training
     FAKE fraction, the DFDC test sets were 50/50 (Bayes' rule for a change of class prior);
  3. a clip to [lo, hi], capping what any single wrong answer can cost.
A Calibrator saves as plain types (to_dict), so it travels inside a `torch.load(weights_only=True)` checkpoint.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import LeaveOneGroupOut, StratifiedKFold

from ..errors import DfdcError
from .metrics import balanced_log_loss, figure, log_loss, prior_weights

EPS = 1e-15  # probabilities are clipped to [EPS, 1 - EPS] before taking logits
MARGIN = 0.005  # a richer map must beat a simpler one's cross-validated log loss by this, plus 1.5 standard errors
ISOTONIC_MIN = 50  # videos of each class before isotonic's staircase is worth trying
LOGIT_MAX = 40.0  # logits beyond this are 0 or 1 in float64 anyway


def logit(p: ArrayLike) -> np.ndarray:
    """log(p / (1 - p)), finite for p in [0, 1]."""
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def to_logits(scores: ArrayLike, logits: bool = False) -> np.ndarray:
    """The scores as finite logits; probabilities outside [0, 1] are refused (logits passed by mistake)."""
    x = np.asarray(scores, dtype=float)
    if logits:
        return np.clip(x, -LOGIT_MAX, LOGIT_MAX)
    if np.any((x < 0) | (x > 1)):
        raise ValueError("probabilities outside [0, 1]; pass logits=True for logits")
    return logit(x)


class _Map(NamedTuple):
    """A calibration map: fit(logits, labels, offset) -> plain params; apply(params, logits) -> probabilities.

    learns_prior: the map takes on the FAKE fraction of the labels it is fitted to (platt's shift,
    isotonic's levels). A map without a shift keeps the prior the raw scores assume instead; it is
    fitted with `offset` = logit(labels' FAKE fraction) - logit(that prior) added to the logit, so
    the labels' own balance does not bend it.
    """

    fit: Callable[[np.ndarray, np.ndarray, float], dict[str, Any]]
    apply: Callable[[dict[str, Any], np.ndarray], np.ndarray]
    learns_prior: bool


def _fit_identity(z: np.ndarray, y: np.ndarray, offset: float) -> dict[str, Any]:
    return {}


def _apply_identity(params: dict[str, Any], z: np.ndarray) -> np.ndarray:
    return expit(z)


def _fit_platt(z: np.ndarray, y: np.ndarray, offset: float) -> dict[str, Any]:
    # sklearn's default L2 penalty (C=1) is negligible against hundreds of samples, and keeps the
    # scale finite when a tiny calibration set is perfectly separated.
    model = LogisticRegression().fit(z[:, None], y)
    scale, shift = float(model.coef_[0, 0]), float(np.ravel(model.intercept_)[0])
    if scale < 0:  # held-out scores ranked backwards: the model says nothing here; never turn it round
        return {"scale": 0.0, "shift": float(logit(y.mean()))}
    return {"scale": scale, "shift": shift}


def _fit_temperature(z: np.ndarray, y: np.ndarray, offset: float) -> dict[str, Any]:
    """The scale minimising the log loss of sigmoid(scale * z + offset); bounded, so a perfectly
    separated tiny set still gets a finite scale."""
    def loss(scale: float) -> float:
        return log_loss(y, expit(scale * z + offset))

    return {"scale": float(minimize_scalar(loss, bounds=(1e-3, 50.0), method="bounded").x), "shift": 0.0}


def _apply_logistic(params: dict[str, Any], z: np.ndarray) -> np.ndarray:
    return expit(params["scale"] * z + params["shift"])


def _fit_isotonic(z: np.ndarray, y: np.ndarray, offset: float) -> dict[str, Any]:
    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(z, y)
    return {"x": model.X_thresholds_.tolist(), "y": model.y_thresholds_.tolist()}


def _apply_isotonic(params: dict[str, Any], z: np.ndarray) -> np.ndarray:
    # np.interp holds the end values outside the thresholds, as out_of_bounds="clip" does.
    return np.interp(z, params["x"], params["y"])


# Simplest first: fit_calibrator breaks ties, and falls back on tiny label sets, towards the earlier one.
MAPS: dict[str, _Map] = {
    "identity": _Map(_fit_identity, _apply_identity, learns_prior=False),
    # temperature: one scale on the logit (scale = 1 / T), no shift
    "temperature": _Map(_fit_temperature, _apply_logistic, learns_prior=False),
    # platt: scale and shift on the logit
    "platt": _Map(_fit_platt, _apply_logistic, learns_prior=True),
    "isotonic": _Map(_fit_isotonic, _apply_isotonic, learns_prior=True),
}
METHODS = tuple(MAPS)


@dataclass(frozen=True)
class Calibrator:
    """Maps raw scores to calibrated P(FAKE) on a test set with FAKE fraction `test_prior`.

    `cv_log_loss` records, per method tried, the cross-validated log loss expected at `test_prior`.
    """

    method: str = "identity"
    params: dict[str, Any] = field(default_factory=dict)
    train_prior: float = 0.5
    test_prior: float = 0.5
    clip: tuple[float, float] = (0.01, 0.99)
    cv_log_loss: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in MAPS:
            raise DfdcError(f"unknown calibration method {self.method!r}; choose from {', '.join(METHODS)}")
        for name in ("train_prior", "test_prior"):
            if not 0 < getattr(self, name) < 1:
                raise DfdcError(f"calibration {name} must be strictly between 0 and 1, not {getattr(self, name)}")
        lo, hi = self.clip
        if not 0 <= lo < hi <= 1:
            raise DfdcError(f"calibration clip must satisfy 0 <= lo < hi <= 1, not {self.clip}")

    @property
    def prior_shift(self) -> float:
        """The logit shift from the FAKE fraction the map learnt to the one expected in the test set."""
        return float(logit(self.test_prior) - logit(self.train_prior))

    def __call__(self, scores: ArrayLike, *, logits: bool = False) -> np.ndarray:
        """Calibrated P(FAKE), same shape as `scores` (P(FAKE), or logits with logits=True)."""
        z = to_logits(scores, logits)
        p = MAPS[self.method].apply(self.params, z)
        return np.clip(expit(logit(p) + self.prior_shift), *self.clip)

    def to_dict(self) -> dict[str, Any]:
        """Plain str/float/list/dict only: safe for json and for torch.load(weights_only=True)."""
        return {
            "method": self.method,
            "params": copy.deepcopy(self.params),
            "train_prior": float(self.train_prior),
            "test_prior": float(self.test_prior),
            "clip": [float(self.clip[0]), float(self.clip[1])],
            "cv_log_loss": {k: float(v) for k, v in self.cv_log_loss.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibrator:
        """The Calibrator that `to_dict` saved; a damaged dict is refused in one line."""
        try:
            lo, hi = d["clip"]
            cal = cls(
                method=str(d["method"]),
                params=copy.deepcopy(dict(d["params"])),
                train_prior=float(d["train_prior"]),
                test_prior=float(d["test_prior"]),
                clip=(float(lo), float(hi)),
                cv_log_loss={str(k): float(v) for k, v in d.get("cv_log_loss", {}).items()},
            )
            cal(np.array([0.5]))  # params that do not fit the method fail here, not at prediction time
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise DfdcError(f"not a saved calibrator ({type(exc).__name__}: {exc})") from exc
        return cal


def _labels(labels: ArrayLike, n: int) -> np.ndarray:
    y = np.asarray(labels).ravel()
    if y.size != n or not np.isin(y, (0, 1)).all():
        raise DfdcError(f"calibration needs one 0 (REAL) / 1 (FAKE) label per score ({y.size} labels, {n} scores)")
    y = y.astype(int)
    if y.min() == y.max():
        raise DfdcError("calibration needs both REAL and FAKE labels; got only one class")
    return y


def _fit_method(
    method: str, z: np.ndarray, y: np.ndarray, prior: float | None, clip: tuple[float, float],
    raw_prior: float | None,
) -> Calibrator:
    share = float(y.mean())
    m = MAPS[method]
    train_prior = share if m.learns_prior or raw_prior is None else raw_prior
    params = m.fit(z, y, float(logit(share) - logit(train_prior)))
    return Calibrator(method, params, train_prior, share if prior is None else prior, clip)


def fit_calibrator(
    scores: ArrayLike,
    labels: ArrayLike,
    methods: Sequence[str] = METHODS,
    cv: int = 5,
    prior: float | None = 0.5,
    clip: tuple[float, float] = (0.01, 0.99),
    *,
    logits: bool = False,
    raw_prior: float | None = None,
    repeats: int = 5,
    groups: ArrayLike | None = None,
) -> Calibrator:
    """The simplest method among `methods` unless a richer one is clearly better, refitted on all
    labels: a richer map replaces a simpler one only when its cross-validated log loss is lower by
    more than MARGIN plus (without groups) 1.5 standard errors of the per-video difference, since on
    a few dozen videos a scale, a shift or a staircase fitted to noise costs more on the test set
    than it saved.

    Held-out losses are weighted to the test FAKE fraction `prior` (None: the labels' own fraction,
    no prior shift), since that is the set the submission is scored on, and averaged over `repeats`
    shuffles of stratified folds. `raw_prior` is the FAKE fraction the raw scores assume (0.5 for a
    model trained on REAL:FAKE balanced, as `dfdc train` and `dfdc cv` do; None: the labels' own):
    maps without a shift of their own (identity, temperature) are shifted from it, not from the
    labels' fraction, which they never learnt. Isotonic is tried only with ISOTONIC_MIN videos of
    each class. With a single video of either class no cross-validation is possible and the
    simplest listed method is used.

    With `groups` (a source per video: `dfdc cv` gives each video's fold, a folder of the data root)
    the held-out losses are each group's, scored by a map fitted on the other groups: the map is
    chosen for a source it has not seen, as the test set will be. Shuffled folds mix every source
    into every fold, so a map that suits the sources it knows (often none: identity) looked best,
    and an unseen source scored far off kept its confident wrong answers (on ../shared/data/real,
    the contrast model's 4 seeds: pooled calibrated balanced log loss 0.728 chosen by shuffled
    folds, 0.675 by folders; README, "What has been measured"). With groups the standard-error
    term is dropped: a source's videos err together, their spread says nothing of how sure the gain
    is, and keeping identity, the simplest map, kept an overconfident model's raw scores (the same
    runs: 0.675 -> 0.651, and better on 20 of 23 runs and seed ensembles measured).
    """
    if not methods:
        raise DfdcError(f"no calibration method given; choose from {', '.join(METHODS)}")
    unknown = [m for m in methods if m not in MAPS]
    if unknown:
        raise DfdcError(f"unknown calibration methods {unknown}; choose from {', '.join(METHODS)}")
    z = np.ravel(to_logits(scores, logits))
    y = _labels(labels, z.size)
    rarer = int(np.bincount(y).min())
    folds = min(cv, rarer)
    methods = sorted(methods, key=METHODS.index)
    tried = [m for m in methods if m != "isotonic" or rarer >= ISOTONIC_MIN] or methods[:1]
    losses: dict[str, float] = {}
    best = tried[0]
    by_group = groups is not None and len(np.unique(np.asarray(groups))) >= 2
    if folds >= 2:
        test_prior = float(y.mean()) if prior is None else prior
        weight = prior_weights(y, test_prior) * y.size  # per video, mean 1: the test set's class balance
        per_video = {}
        for method in tried:
            held_out = np.tile(expit(z), (1 if by_group else repeats, 1))  # a group left out stays raw
            for r in range(len(held_out)):
                for train, test in _splits(z, y, folds, r, groups if by_group else None):
                    fitted = _fit_method(method, z[train], y[train], prior, clip, raw_prior)
                    held_out[r, test] = fitted(z[test], logits=True)
            p = np.clip(held_out, EPS, 1 - EPS)
            per_video[method] = weight * -(y * np.log(p) + (1 - y) * np.log1p(-p)).mean(0)
            losses[method] = float(per_video[method].mean())
        doubt = 0.0 if by_group else 1.5  # standard errors of the per-video gain to clear (see above)
        for method in tried[1:]:  # a richer map replaces the current one only when clearly better
            gain = per_video[best] - per_video[method]
            if gain.mean() - doubt * gain.std(ddof=1) / np.sqrt(gain.size) > MARGIN:
                best = method
    return replace(_fit_method(best, z, y, prior, clip, raw_prior), cv_log_loss=losses)


def _splits(z: np.ndarray, y: np.ndarray, folds: int, seed: int,
            groups: ArrayLike | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs: each group held out in turn, its map fitted on the others where
    they hold both classes (else left raw, identity), or shuffled stratified folds."""
    if groups is None:
        yield from StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(z, y)
        return
    for train, test in LeaveOneGroupOut().split(z, y, np.asarray(groups)):
        if np.bincount(y[train], minlength=2).min() >= 1:
            yield train, test


def _reliability(p: np.ndarray, y: np.ndarray, w: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per non-empty bin: (weighted) mean predicted P(FAKE) and fraction FAKE."""
    idx = np.digitize(p, edges[1:-1])
    n = len(edges) - 1
    weight = np.bincount(idx, weights=w, minlength=n)
    keep = np.bincount(idx, minlength=n) > 0
    mean_p = np.bincount(idx, weights=w * p, minlength=n)[keep] / weight[keep]
    frac_fake = np.bincount(idx, weights=w * y, minlength=n)[keep] / weight[keep]
    return mean_p, frac_fake


def reliability_diagram(
    probs: ArrayLike,
    labels: ArrayLike,
    path: str | Path,
    calibrated: ArrayLike | None = None,
    prior: float | None = 0.5,
    bins: int = 10,
) -> Path:
    """A PNG of fraction FAKE against predicted P(FAKE) per bin, before and after calibration, with counts.

    With `prior`, classes are reweighted to that FAKE fraction, so the curves and losses are those of
    a test set like DFDC's (a prior-shifted calibrator looks right there, not on ~84% FAKE labels).
    """
    y = np.asarray(labels, dtype=int).ravel()
    curves = {"before": np.asarray(probs, dtype=float).ravel()}
    if calibrated is not None:
        curves["after"] = np.asarray(calibrated, dtype=float).ravel()
    w = np.ones(y.size) if prior is None else prior_weights(y, prior)
    edges = np.linspace(0, 1, bins + 1)

    fig = Figure(figsize=(6, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], "k:", label="perfectly calibrated")
    for name, p in curves.items():
        loss = log_loss(y, p) if prior is None else balanced_log_loss(y, p, prior)
        mean_p, frac_fake = _reliability(p, y, w, edges)
        top.plot(mean_p, frac_fake, "o-", label=f"{name} (log loss {figure(loss)})")
        bottom.hist(p, bins=edges, histtype="step", label=name)
    weighting = "labels as given" if prior is None else f"classes reweighted to {prior:.0%} FAKE"
    top.set(ylabel="fraction FAKE", xlim=(0, 1), ylim=(0, 1), title=f"Reliability ({weighting})")
    top.legend(loc="upper left")
    bottom.set(xlabel="predicted P(FAKE)", ylabel="videos")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
