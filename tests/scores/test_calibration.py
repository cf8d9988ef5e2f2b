import json

import matplotlib.image
import numpy as np
import pytest
from scipy.special import expit

from dfdc.errors import DfdcError
from dfdc.scores.calibration import (
    MARGIN,
    METHODS,
    Calibrator,
    fit_calibrator,
    logit,
    reliability_diagram,
)
from dfdc.scores.metrics import log_loss, prior_weights

TIGHT = (1e-4, 1 - 1e-4)  # a clip that barely touches, to compare with the true probabilities


def miscalibrated(seed: int, n: int, factor: float = 1.0, bias: float = 0.0):
    """(reported, true, labels): labels drawn from the true P(FAKE), reported = sigmoid(factor * logit + bias)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.5, 1.5, n)
    labels = (rng.random(n) < expit(z)).astype(int)
    return expit(factor * z + bias), expit(z), labels


def by_class(seed: int, n_fake: int, n_real: int):
    """(scores, labels) with class-conditional scores: the FAKE fraction is set, not drawn."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n_fake, int), np.zeros(n_real, int)]
    z = np.where(labels == 1, rng.normal(1, 1.5, labels.size), rng.normal(-1, 1.5, labels.size))
    return expit(z), labels


@pytest.mark.parametrize("factor, bias", [(3.0, 0.0), (1.0, 2.0)], ids=["overconfident", "shifted"])
def test_recovers_a_known_miscalibration_on_fresh_data(factor: float, bias: float) -> None:
    reported, _, labels = miscalibrated(0, 4000, factor, bias)
    cal = fit_calibrator(reported, labels, prior=None, clip=TIGHT)
    new_reported, new_true, new_labels = miscalibrated(1, 4000, factor, bias)
    before = log_loss(new_labels, new_reported)
    after = log_loss(new_labels, cal(new_reported))
    best = log_loss(new_labels, new_true)
    # Measured: overconfident 0.745 -> 0.520 (true 0.520); shifted 0.805 -> 0.515 (true 0.515).
    assert after < best + 0.005
    assert before > best + 0.2
    assert cal.method != "identity"
    assert cal.cv_log_loss[cal.method] == min(cal.cv_log_loss.values())
    assert set(cal.cv_log_loss) == set(METHODS)


def test_temperature_recovers_the_factor() -> None:
    reported, _, labels = miscalibrated(0, 4000, factor=3.0)
    cal = fit_calibrator(reported, labels, methods=("temperature",), prior=None)
    assert cal.method == "temperature"
    assert cal.params["scale"] == pytest.approx(1 / 3, rel=0.05)  # measured 0.330
    assert cal.params["shift"] == 0.0


def test_platt_recovers_scale_and_shift() -> None:
    reported, _, labels = miscalibrated(0, 4000, factor=1.0, bias=2.0)
    cal = fit_calibrator(reported, labels, methods=("platt",), prior=None)
    assert cal.params["scale"] == pytest.approx(1.0, abs=0.1)  # measured 1.03
    assert cal.params["shift"] == pytest.approx(-2.0, abs=0.15)  # measured -2.03


def test_no_map_turns_a_models_ranking_round() -> None:
    # held-out scores ranked backwards (a model failing on a new source): no map may learn to invert
    # them, which would call the very fakes it ranks highest real on the next set
    reported, _, labels = miscalibrated(0, 400, factor=-1.0)
    z = np.linspace(-5, 5, 11)
    for method in METHODS:
        cal = fit_calibrator(reported, labels, methods=(method,), prior=None)
        assert np.all(np.diff(cal(z, logits=True)) >= 0), method
    platt = fit_calibrator(reported, labels, methods=("platt",), prior=None)
    assert platt.params["scale"] == 0.0 and np.ptp(platt(z, logits=True)) == 0  # its best: the base rate


def test_prior_shift_centres_a_balanced_test_set() -> None:
    scores, labels = by_class(0, 4200, 800)  # 84% FAKE, like the training data
    balanced_scores, balanced_labels = by_class(1, 2000, 2000)  # 50/50, like the test sets
    shifted = fit_calibrator(scores, labels)  # prior=0.5
    unshifted = fit_calibrator(scores, labels, prior=None)
    assert shifted.train_prior == pytest.approx(0.84)
    assert shifted.test_prior == 0.5 and unshifted.test_prior == pytest.approx(0.84)
    assert shifted.prior_shift == pytest.approx(logit(0.5) - logit(0.84))
    assert unshifted.prior_shift == pytest.approx(0.0)
    # Measured: mean 0.509 with the shift, 0.771 without; log loss on the 50/50 set 0.519 against 0.761.
    assert shifted(balanced_scores).mean() == pytest.approx(0.5, abs=0.03)
    assert unshifted(balanced_scores).mean() > 0.7
    with_shift = log_loss(balanced_labels, shifted(balanced_scores))
    assert with_shift < log_loss(balanced_labels, unshifted(balanced_scores)) - 0.2


def test_test_prior_is_configurable() -> None:
    scores, labels = by_class(0, 4200, 800)
    cal = fit_calibrator(scores, labels, methods=("platt",), prior=0.3)
    assert cal.test_prior == 0.3
    assert cal.prior_shift == pytest.approx(logit(0.3) - logit(0.84))
    skewed_scores, _ = by_class(2, 900, 2100)  # 30% FAKE
    assert cal(skewed_scores).mean() == pytest.approx(0.3, abs=0.03)


def test_output_is_clipped() -> None:
    reported, _, labels = miscalibrated(0, 500, factor=3.0)
    cal = fit_calibrator(reported, labels, clip=(0.02, 0.97))
    out = cal(np.array([0.0, 1e-12, 0.5, 1 - 1e-12, 1.0]))
    assert out.min() >= 0.02 and out.max() <= 0.97
    assert out[0] == pytest.approx(0.02) and out[-1] == pytest.approx(0.97)


def test_logits_and_probabilities_agree() -> None:
    reported, _, labels = miscalibrated(0, 500, factor=3.0)
    p = np.linspace(0.001, 0.999, 50)
    from_probs = fit_calibrator(reported, labels, methods=("platt",))
    from_logits = fit_calibrator(logit(reported), labels, methods=("platt",), logits=True)
    np.testing.assert_allclose(from_probs(p), from_logits(logit(p), logits=True), atol=1e-9)
    with pytest.raises(ValueError, match="logits=True"):
        from_probs(np.array([-2.0, 3.0]))  # logits passed as probabilities


def test_very_few_labels_fall_back_to_the_simplest_method() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.4])
    labels = np.array([1, 1, 1, 0])  # a single REAL: no stratified split is possible
    assert fit_calibrator(scores, labels).method == "identity"
    fallback = fit_calibrator(scores, labels, methods=("isotonic", "platt"))
    assert fallback.method == "platt" and fallback.cv_log_loss == {}
    two_each = fit_calibrator([0.9, 0.8, 0.3, 0.4], [1, 1, 0, 0])  # two folds possible
    assert set(two_each.cv_log_loss) == set(METHODS) - {"isotonic"}  # a staircase needs more videos
    rng = np.random.default_rng(0)
    many = fit_calibrator(rng.uniform(size=200), rng.integers(0, 2, 200))
    assert set(many.cv_log_loss) == set(METHODS)


def _draws(scale: float, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Scores of a model whose true logit is N(+-0.6, 1) for FAKE/REAL (a weak one), reported as
    sigmoid(scale * logit): scale 1 is calibrated, 4 overconfident."""
    y = rng.integers(0, 2, n)
    z = rng.normal(np.where(y == 1, 0.6, -0.6), 1.0)
    return expit(scale * z), y


@pytest.mark.parametrize("scale", [1.0, 4.0])
def test_calibration_never_costs_more_than_a_little_on_small_validation_sets(scale: float) -> None:
    """Over many small validation sets (20-40 videos) from a weak model, the chosen calibrator's
    log loss on a large held-out set is never worse than the raw scores' by more than 0.02, and on
    the overconfident model it is better on average (tiny sets rarely prove a richer map)."""
    rng = np.random.default_rng(1)
    test_p, test_y = _draws(scale, 20000, rng)
    raw = log_loss(test_y, np.clip(test_p, 0.01, 0.99))
    gains = []
    for _ in range(40):
        p, y = _draws(scale, int(rng.integers(20, 41)), rng)
        if y.min() == y.max():
            continue
        cal = fit_calibrator(p, y, raw_prior=0.5, repeats=2)
        gains.append(raw - log_loss(test_y, cal(test_p)))
    assert min(gains) > -0.02, sorted(gains)[:5]
    if scale > 1:
        assert np.mean(gains) > 0.03  # measured 0.045: on 20-40 videos it mostly keeps the raw scores


def test_bad_labels_and_methods_are_user_errors() -> None:
    with pytest.raises(DfdcError, match="both REAL and FAKE"):
        fit_calibrator([0.2, 0.9], [1, 1])
    with pytest.raises(DfdcError, match="one 0 \\(REAL\\) / 1 \\(FAKE\\) label per score"):
        fit_calibrator([0.2, 0.9], [1, 0, 1])
    with pytest.raises(DfdcError, match="unknown calibration methods \\['beta'\\]"):
        fit_calibrator([0.2, 0.9], [1, 0], methods=("platt", "beta"))
    with pytest.raises(DfdcError, match="no calibration method given"):
        fit_calibrator([0.2, 0.9], [1, 0], methods=())
    with pytest.raises(DfdcError, match="test_prior must be strictly between 0 and 1"):
        fit_calibrator([0.2, 0.9, 0.3, 0.8], [0, 1, 0, 1], prior=1.0)


def assert_plain(value) -> None:
    """Only the types a weights_only torch.load accepts without allow-listing."""
    assert type(value) in (str, float, int, list, dict), type(value)
    if isinstance(value, dict):
        for k, v in value.items():
            assert type(k) is str
            assert_plain(v)
    elif isinstance(value, list):
        for v in value:
            assert_plain(v)


@pytest.fixture(scope="module")
def fitted() -> dict[str, Calibrator]:
    reported, _, labels = miscalibrated(0, 600, factor=3.0)
    return {m: fit_calibrator(reported, labels, methods=(m,)) for m in METHODS}


@pytest.mark.parametrize("method", METHODS)
def test_to_dict_round_trip_through_json(fitted: dict[str, Calibrator], method: str) -> None:
    cal = fitted[method]
    d = cal.to_dict()
    assert_plain(d)
    again = Calibrator.from_dict(json.loads(json.dumps(d)))
    assert again == cal
    x = np.linspace(0, 1, 201)
    np.testing.assert_array_equal(again(x), cal(x))


def test_to_dict_survives_a_weights_only_torch_checkpoint(fitted: dict[str, Calibrator], tmp_path) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "calibrators": {m: c.to_dict() for m, c in fitted.items()}}, path)
    loaded = torch.load(path, weights_only=True)
    x = np.linspace(0, 1, 201)
    for method, cal in fitted.items():
        np.testing.assert_array_equal(Calibrator.from_dict(loaded["calibrators"][method])(x), cal(x))


def test_isotonic_is_stored_as_thresholds(fitted: dict[str, Calibrator]) -> None:
    params = fitted["isotonic"].to_dict()["params"]
    assert set(params) == {"x", "y"} and len(params["x"]) == len(params["y"]) > 2
    assert params["y"] == sorted(params["y"])  # monotone


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.pop("method"),
        lambda d: d.update(method="beta"),
        lambda d: d["params"].pop("x"),
        lambda d: d.update(clip=[0.5]),
        lambda d: d.update(train_prior=0.0),
    ],
    ids=["no method", "unknown method", "no thresholds", "bad clip", "train prior 0"],
)
def test_from_dict_refuses_a_damaged_dict(fitted: dict[str, Calibrator], damage) -> None:
    d = fitted["isotonic"].to_dict()
    damage(d)
    with pytest.raises(DfdcError):
        Calibrator.from_dict(d)


def test_default_calibrator_only_clips() -> None:
    out = Calibrator()(np.array([0.0, 0.3, 1.0]))
    np.testing.assert_allclose(out, [0.01, 0.3, 0.99])


@pytest.mark.parametrize("prior", [0.5, None])
def test_reliability_diagram_is_a_real_png(tmp_path, prior) -> None:
    reported, _, labels = miscalibrated(0, 1000, factor=3.0)
    cal = fit_calibrator(reported, labels, prior=prior)
    path = reliability_diagram(reported, labels, tmp_path / "plots" / "reliability.png", cal(reported), prior=prior)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape == (600, 600, 4)
    assert image[..., :3].std() > 0.05  # something was drawn


def test_reliability_diagram_without_calibrated_scores(tmp_path) -> None:
    reported, _, labels = miscalibrated(0, 1000, factor=3.0)
    cal = fit_calibrator(reported, labels)
    before = reliability_diagram(reported, labels, tmp_path / "before.png")
    both = reliability_diagram(reported, labels, tmp_path / "both.png", cal(reported))
    assert matplotlib.image.imread(before).shape == (600, 600, 4)
    assert not np.array_equal(matplotlib.image.imread(before), matplotlib.image.imread(both))


def test_maps_without_a_shift_keep_the_prior_the_raw_scores_assume() -> None:
    """Scores of a model trained 1:1 (like `dfdc train`) fitted on 84%-FAKE validation labels: identity and
    temperature learn no prior, so shifting them from 84% to 50% would push every video towards REAL."""
    scores, labels = by_class(0, 4200, 800)  # class-conditional: on a 50/50 set the true log-odds are 0.889 z
    balanced_scores, balanced_labels = by_class(1, 2000, 2000)
    for method in ("identity", "temperature"):
        kept = fit_calibrator(scores, labels, methods=(method,), raw_prior=0.5)
        double = fit_calibrator(scores, labels, methods=(method,))
        assert kept.train_prior == 0.5 and kept.prior_shift == 0.0
        assert double.prior_shift == pytest.approx(logit(0.5) - logit(0.84))
        assert kept(balanced_scores).mean() == pytest.approx(0.5, abs=0.03)
        assert log_loss(balanced_labels, kept(balanced_scores)) < log_loss(balanced_labels, double(balanced_scores)) - 0.05
    temperature = fit_calibrator(scores, labels, methods=("temperature",), raw_prior=0.5)
    assert temperature.params["scale"] == pytest.approx(4 / 4.5, rel=0.1)
    platt = fit_calibrator(scores, labels, methods=("platt",), raw_prior=0.5)
    assert platt.train_prior == pytest.approx(0.84)  # platt learns the labels' prior: shifted from it


def test_with_groups_each_group_is_scored_by_a_map_fitted_on_the_others() -> None:
    """dfdc cv passes each video's fold (a folder, a source) as its group: the held-out loss of a map
    is each group's, scored by the map fitted on the other groups alone, as an unseen source will be."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 120)
    groups = np.repeat(np.arange(4), 30)
    z = 2.5 * (2 * y - 1) + rng.normal(0, 2, y.size) + np.array([0.0, 1.0, -1.0, 3.0])[groups]  # a shift per source
    cal = fit_calibrator(z, y, prior=0.5, logits=True, raw_prior=0.5, groups=groups)
    weight = prior_weights(y, 0.5) * y.size
    held = np.empty(y.size)
    for g in range(4):
        out = groups == g
        temperature = fit_calibrator(z[~out], y[~out], methods=["temperature"], prior=0.5, logits=True, raw_prior=0.5)
        held[out] = np.clip(temperature(z[out], logits=True), 1e-15, 1 - 1e-15)
    by_hand = float((weight * log_loss_each(y, held)).mean())
    assert cal.cv_log_loss["temperature"] == pytest.approx(by_hand, rel=1e-9)
    shuffled = fit_calibrator(z, y, prior=0.5, logits=True, raw_prior=0.5)
    assert shuffled.cv_log_loss["temperature"] != pytest.approx(by_hand, rel=1e-3)  # other folds, other figure


def test_with_groups_a_richer_map_wins_on_its_held_out_loss_alone() -> None:
    """A source's videos err together, so with groups a richer map is taken when its held-out loss
    (each group scored by a map fitted on the others) is lower by MARGIN, without the per-video
    standard error: two of six sources scored overconfidently and four at levels of their own (as
    the real set's folders are) get a temperature, where the standard error had kept them raw."""
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(6), 20)
    a = rng.normal(0, 2, groups.size)  # the true logit
    y = (rng.random(groups.size) < expit(a)).astype(int)
    z = np.array([3.0, 3.0, 1.0, 1.0, 1.0, 1.0])[groups] * a + np.array([0.0, 0.0, 1.0, -1.0, 0.5, -0.5])[groups]
    cal = fit_calibrator(z, y, prior=0.5, logits=True, raw_prior=0.5, groups=groups)
    losses = cal.cv_log_loss
    want = "identity"
    for method in list(losses)[1:]:  # the methods tried, simplest first
        if losses[want] - losses[method] > MARGIN:
            want = method
    assert cal.method == want == "temperature"
    weight = prior_weights(y, 0.5) * y.size
    gain = []  # identity's held-out loss less temperature's, per video
    for g in range(6):
        out = groups == g
        fitted = fit_calibrator(z[~out], y[~out], methods=["temperature"], prior=0.5, logits=True, raw_prior=0.5)
        p, raw = fitted(z[out], logits=True), expit(z[out])
        gain += list(weight[out] * (log_loss_each(y[out], raw) - log_loss_each(y[out], p)))
    gain = np.array(gain)
    assert gain.mean() > MARGIN  # better on the held-out sources by the margin...
    assert gain.mean() - 1.5 * gain.std(ddof=1) / np.sqrt(gain.size) < MARGIN  # ...not by 1.5 standard errors


def log_loss_each(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))
