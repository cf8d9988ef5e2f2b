"""The time governor: a Kaggle kernel past its limit scores nothing, so the run must end in time.

It measures seconds per video as the run goes, projects the finish, and when the projection
passes the limit it steps down to a cheaper plan (fewer frames, then fewer ensemble members).
At the limit it says stop, and the caller writes the prior for what is left.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    frames: int
    members: int


def plans(frames: int, members: int, min_frames: int = 4) -> list[Plan]:
    """From the full plan down to the cheapest: halve the frames, then keep one member."""
    out = [Plan(frames, members)]
    while out[-1].frames // 2 >= min_frames:
        out.append(Plan(out[-1].frames // 2, members))
    if members > 1:
        out.append(Plan(out[-1].frames, 1))
    return out


class Governor:
    """Chooses the plan for each next video, and says when to stop."""

    def __init__(self, limit: float | None, started: float, total: int, plans: list[Plan],
                 reserve: float | None = None) -> None:
        self.limit = limit
        self.started = started
        self.total = total
        self.plans = plans
        self.level = 0
        self.reserve = reserve if reserve is not None else (min(60.0, max(1.0, 0.02 * limit)) if limit else 0.0)
        self.done = 0
        self.level_since = (time.monotonic(), 0)  # when the current plan began, videos done then

    @property
    def plan(self) -> Plan:
        return self.plans[self.level]

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        """Seconds left before the run must stop (infinite without a limit)."""
        return float("inf") if self.limit is None else self.limit - self.reserve - self.elapsed()

    def should_stop(self) -> bool:
        return self.left() <= 0

    def seconds_per_video(self) -> float | None:
        since, done_then = self.level_since
        n = self.done - done_then
        return (time.monotonic() - since) / n if n > 0 else None

    def record(self, videos: int) -> None:
        """Count finished videos, and step down while the projected finish passes the limit."""
        self.done += videos
        rate = self.seconds_per_video()
        if self.limit is None or rate is None:
            return
        remaining = self.total - self.done
        cost = rate
        while self.level + 1 < len(self.plans) and remaining * cost > self.left():
            old, new = self.plans[self.level], self.plans[self.level + 1]
            # decoding costs the same whatever the frames; model work scales with frames x members
            cost *= 0.5 + 0.5 * (new.frames * new.members) / (old.frames * old.members)
            self.level += 1
            self.level_since = (time.monotonic(), self.done)
