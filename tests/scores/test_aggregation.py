import numpy as np
import pytest

from dfdc.errors import DfdcError
from dfdc.scores.aggregation import (
    AGGREGATIONS,
    confident_score,
    track_score,
    video_score,
)


def frames(*groups: tuple[int, float]) -> np.ndarray:
    """A track from (count, probability) groups."""
    return np.concatenate([np.full(n, p) for n, p in groups])


def test_registry_names() -> None:
    assert set(AGGREGATIONS) == {"mean", "confident", "trimmed", "logit_mean"}


def test_trimmed_ignores_a_few_outlying_frames() -> None:
    p = frames((1, 0.0), (18, 0.6), (1, 1.0))  # a blink and a bad crop at the ends
    assert track_score(p, "trimmed") == pytest.approx(0.6)
    assert track_score(p, "mean") == pytest.approx(0.59)


def test_logit_mean_adds_frame_evidence() -> None:
    p = frames((9, 0.8), (1, 0.01))
    z = 9 * np.log(4) + np.log(0.01 / 0.99)
    assert track_score(p, "logit_mean") == pytest.approx(1 / (1 + np.exp(-z / 10)))
    assert track_score(np.array([0.0, 1.0]), "logit_mean") == pytest.approx(0.5)  # finite at 0 and 1


def test_mean() -> None:
    assert track_score(np.array([0.2, 0.4, 0.9]), "mean") == pytest.approx(0.5)


def test_confident_fake_frames_dominate() -> None:
    # 13 of 30 (43%) confidently FAKE, and more than 11 of them: their mean alone.
    p = frames((13, 0.95), (17, 0.5))
    assert confident_score(p) == pytest.approx(0.95)
    assert track_score(p, "mean") == pytest.approx((13 * 0.95 + 17 * 0.5) / 30)


def test_confident_exactly_40_percent_is_not_more_than_40() -> None:
    p = frames((12, 0.95), (18, 0.5))  # 12 of 30 = 40%, though 12 > 11
    assert confident_score(p) == pytest.approx(np.mean(p))
    assert confident_score(frames((13, 0.95), (17, 0.5))) == pytest.approx(0.95)  # one more frame tips it


def test_confident_needs_more_than_11_fake_frames() -> None:
    eleven = frames((11, 0.95), (1, 0.5))  # 92% confident, but only 11 frames
    assert confident_score(eleven) == pytest.approx(np.mean(eleven))
    assert confident_score(frames((12, 0.95), (1, 0.5))) == pytest.approx(0.95)
    short = frames((10, 0.95), (1, 0.3))  # exactly 11 frames, 91% confident
    assert confident_score(short) == pytest.approx(np.mean(short))


def test_confident_threshold_is_strict() -> None:
    p = frames((20, 0.8), (10, 0.5))  # 0.8 itself is not confident
    assert confident_score(p) == pytest.approx(np.mean(p))


def test_confident_real_frames_dominate() -> None:
    p = frames((19, 0.05), (1, 0.9))  # 95% below 0.2
    assert confident_score(p) == pytest.approx(0.05)
    assert confident_score(np.array([0.1])) == pytest.approx(0.1)


def test_confident_exactly_90_percent_real_is_not_more_than_90() -> None:
    p = frames((18, 0.05), (2, 0.9))  # 18 of 20 = 90%
    assert confident_score(p) == pytest.approx((18 * 0.05 + 2 * 0.9) / 20)
    q = frames((18, 0.2), (1, 0.9))  # 0.2 itself is not confident
    assert confident_score(q) == pytest.approx(np.mean(q))


def test_confident_mixed_track_is_the_plain_mean() -> None:
    p = frames((12, 0.99), (15, 0.01), (3, 0.5))  # 40% FAKE, 50% REAL: neither dominates
    assert confident_score(p) == pytest.approx(np.mean(p))


def test_video_is_as_fake_as_its_most_fake_track() -> None:
    real_face = frames((19, 0.05), (1, 0.9))
    swapped_face = frames((13, 0.95), (17, 0.5))
    assert video_score([real_face, swapped_face]) == pytest.approx(0.95)
    assert video_score([real_face, swapped_face], "mean") == pytest.approx(np.mean(swapped_face))
    assert video_score([real_face]) == pytest.approx(0.05)


def test_video_without_frames_has_no_score() -> None:
    assert video_score([]) is None
    assert video_score([np.array([]), np.zeros(0)]) is None
    assert video_score([np.array([]), np.array([0.3, 0.5])], "mean") == pytest.approx(0.4)  # empty track skipped


def test_unknown_aggregation_is_a_user_error_even_without_faces() -> None:
    with pytest.raises(DfdcError, match="unknown aggregation 'median'; choose from mean, confident"):
        video_score([], "median")
    with pytest.raises(DfdcError):
        track_score(np.array([0.5]), "median")


def test_video_score_is_a_plain_float() -> None:
    assert type(video_score([np.array([0.25, 0.75], dtype=np.float32)])) is float
