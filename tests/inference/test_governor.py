"""The time governor's plans, durations and step-down decisions."""

import time

import pytest

from dfdc.cliargs import parse_duration
from dfdc.inference.governor import Governor, Plan, plans


@pytest.mark.parametrize("text,seconds", [("32400", 32400), ("8h", 28800), ("30m", 1800), ("1h30m", 5400),
                                          ("90s", 90), ("2.5", 2.5)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["eight hours", "-5", "0", "5x"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_plans_halve_frames_then_drop_members():
    assert plans(32, 3) == [Plan(32, 3), Plan(16, 3), Plan(8, 3), Plan(4, 3), Plan(4, 1)]
    assert plans(8, 1) == [Plan(8, 1), Plan(4, 1)]


def test_steps_down_when_the_projection_passes_the_limit():
    # 10 s elapsed for 10 of 100 videos: 90 more at 1 s/video need 90 s, but only ~40 s are left.
    g = Governor(50.0, time.monotonic(), 100, plans(32, 2), reserve=0.0)
    g.level_since = (time.monotonic() - 10.0, 0)
    g.started = time.monotonic() - 10.0
    g.record(10)
    assert g.level > 0 and g.plan.frames < 32
    assert not g.should_stop()


def test_keeps_the_full_plan_when_there_is_time():
    g = Governor(1000.0, time.monotonic(), 100, plans(32, 2), reserve=0.0)
    g.level_since = (time.monotonic() - 10.0, 0)
    g.started = time.monotonic() - 10.0
    g.record(10)
    assert g.level == 0


def test_stops_at_the_limit_less_the_reserve():
    g = Governor(10.0, time.monotonic() - 9.5, 5, plans(32, 1), reserve=1.0)
    assert g.should_stop()
    assert Governor(None, time.monotonic() - 1e6, 5, plans(32, 1)).should_stop() is False
