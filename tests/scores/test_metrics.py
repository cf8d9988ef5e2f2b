import math
import re

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from dfdc.errors import DfdcError
from dfdc.scores.metrics import (
    accuracy,
    auc,
    balanced_log_loss,
    figure,
    log_loss,
    prior_weights,
    score_table,
)


@pytest.fixture
def random_scores() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    y = (rng.random(500) < 0.8).astype(int)
    p = np.clip(rng.random(500) * 0.5 + 0.4 * y, 0.001, 0.999)
    return y, p


def test_log_loss_by_hand() -> None:
    assert log_loss([1, 0], [0.8, 0.4]) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)


def test_log_loss_matches_sklearn(random_scores) -> None:
    y, p = random_scores
    assert log_loss(y, p) == pytest.approx(skm.log_loss(y, p), rel=1e-12)


def test_log_loss_clips_like_kaggle() -> None:
    # A certain wrong answer costs -log(1e-15), not infinity; a certain right one costs ~0.
    assert log_loss([1], [0.0]) == pytest.approx(-math.log(1e-15))
    assert log_loss([0, 1], [0.0, 1.0]) == pytest.approx(-math.log(1 - 1e-15), abs=1e-12)


def test_balanced_log_loss_is_the_mean_of_the_class_losses() -> None:
    y = [1, 1, 1, 0]
    p = [0.9, 0.9, 0.6, 0.2]
    fake = -(2 * math.log(0.9) + math.log(0.6)) / 3
    real = -math.log(0.8)
    assert balanced_log_loss(y, p) == pytest.approx((fake + real) / 2)
    assert log_loss(y, p) == pytest.approx((3 * fake + real) / 4)  # the plain one leans on FAKE


def test_balanced_log_loss_at_the_sets_own_prior_is_the_plain_one(random_scores) -> None:
    y, p = random_scores
    assert balanced_log_loss(y, p, prior=y.mean()) == pytest.approx(log_loss(y, p))


def test_one_class_has_no_auc_and_no_balanced_loss() -> None:
    assert auc([1, 1, 1], [0.2, 0.5, 0.9]) is None
    assert balanced_log_loss([0, 0], [0.1, 0.3]) is None
    assert figure(auc([1, 1, 1], [0.2, 0.5, 0.9]), 3) == "n/a"  # printed as such, not a crash
    assert figure(auc([0, 1, 1], [0.2, 0.5, 0.9]), 3) == "1.000"


def test_auc_by_hand_and_against_sklearn(random_scores) -> None:
    # Of the 4 (REAL, FAKE) pairs, one is ranked wrong: 0.4 > 0.35.
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    y, p = random_scores
    assert auc(y, p) == pytest.approx(skm.roc_auc_score(y, p))


def test_accuracy_calls_exactly_half_real() -> None:
    assert accuracy([1, 0, 1, 0], [0.9, 0.5, 0.5, 0.51]) == pytest.approx(0.5)


def test_score_table() -> None:
    df = pd.DataFrame({"label": [1, 1, 1, 0], "p": [0.9, 0.9, 0.6, 0.2]})
    table = score_table(df)
    assert table["n"] == 4 and table["n_fake"] == 3 and table["n_real"] == 1
    assert table["log_loss"] == pytest.approx(log_loss(df.label, df.p))
    assert table["balanced_log_loss"] == pytest.approx(balanced_log_loss(df.label, df.p))
    assert table["auc"] == pytest.approx(1.0)
    assert table["accuracy"] == pytest.approx(1.0)
    assert all(type(v) in (int, float) for v in table.values())


@pytest.mark.parametrize(
    "df, message",
    [
        (pd.DataFrame({"label": [1]}), "missing p"),
        (pd.DataFrame({"label": [], "p": []}), "no rows"),
        (pd.DataFrame({"label": [2], "p": [0.5]}), "0 (REAL) or 1 (FAKE)"),
        (pd.DataFrame({"label": [1], "p": [float("nan")]}), "finite"),
        (pd.DataFrame({"label": [1], "p": [1.5]}), "in [0, 1]"),
    ],
)
def test_score_table_refuses_bad_tables(df: pd.DataFrame, message: str) -> None:
    with pytest.raises(DfdcError, match=re.escape(message)):
        score_table(df)


def test_prior_weights_give_each_class_its_share() -> None:
    w = prior_weights([1, 1, 1, 0], prior=0.5)
    np.testing.assert_allclose(w, [1 / 6, 1 / 6, 1 / 6, 0.5])
    np.testing.assert_allclose(prior_weights([1, 0, 0, 0, 0], prior=0.2), [0.2, 0.2, 0.2, 0.2, 0.2])
