"""Following each person through the sampled frames: detections linked by overlap into tracks."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .boxes import Detections, box_iou


@dataclass
class Track:
    """One person's face over the sampled frames; `detected` is False where a gap was filled."""

    id: int
    indices: list[int] = field(default_factory=list)  # true frame indices
    boxes: list[np.ndarray] = field(default_factory=list)  # x0, y0, x1, y1 in frame pixels
    scores: list[float] = field(default_factory=list)
    detected: list[bool] = field(default_factory=list)

    def add(self, index: int, box: np.ndarray, score: float, detected: bool = True) -> None:
        self.indices.append(int(index))
        self.boxes.append(np.asarray(box, np.float32))
        self.scores.append(float(score))
        self.detected.append(detected)

    @property
    def strength(self) -> float:
        """How sure we are this is a face that stays: detections weighted by their scores."""
        return float(sum(s for s, d in zip(self.scores, self.detected) if d))

    @classmethod
    def from_dict(cls, d: dict) -> "Track":
        """The inverse of to_dict (faces.json, the cache's entries)."""
        return cls(d["track"], list(d["frames"]), [np.asarray(b, np.float32) for b in d["boxes"]],
                   list(d["scores"]), list(d["detected"]))

    def to_dict(self) -> dict:
        return {
            "track": self.id,
            "frames": self.indices,
            "boxes": [[round(float(v), 1) for v in b] for b in self.boxes],
            "scores": [round(s, 4) for s in self.scores],
            "detected": self.detected,
        }


def build_tracks(indices: np.ndarray, detections: list[Detections], min_iou: float = 0.2,
                 max_gap: int = 4, min_coverage: float = 0.25, min_relative: float = 0.4) -> list[Track]:
    """Link per-frame detections into tracks, strongest first (track 0 is the main person).

    A detection joins the track whose last box it overlaps most (IoU >= min_iou) if that track
    was seen within max_gap sampled frames; gaps up to max_gap are filled by interpolating the
    boxes. Tracks detected on fewer than min_coverage of the frames are dropped as spurious, and
    so are other tracks weaker than min_relative of the main one: a video is as fake as its most
    fake track, so a shirt pattern taken for a face must not get a say.
    """
    tracks: list[Track] = []
    last_seen: dict[int, int] = {}
    for step, (index, dets) in enumerate(zip(indices, detections)):
        alive = [t for t in tracks if step - last_seen[t.id] <= max_gap]
        if alive and len(dets.boxes):
            overlap = box_iou(dets.boxes, np.stack([t.boxes[-1] for t in alive]))
        else:
            overlap = np.zeros((len(dets.boxes), len(alive)))
        taken_d, taken_t = set(), set()
        for d, t in sorted(np.argwhere(overlap >= min_iou).tolist(), key=lambda p: -overlap[p[0], p[1]]):
            if d in taken_d or t in taken_t:
                continue
            taken_d.add(d)
            taken_t.add(t)
            _extend(alive[t], indices, step, dets.boxes[d], dets.scores[d], last_seen)
        for d in range(len(dets.boxes)):
            if d not in taken_d:
                track = Track(len(tracks))
                track.add(index, dets.boxes[d], dets.scores[d])
                tracks.append(track)
                last_seen[track.id] = step
    keep = [t for t in tracks if sum(t.detected) >= max(1.0, min_coverage * len(indices))]
    keep.sort(key=lambda t: -t.strength)
    keep = [t for t in keep if t.strength >= min_relative * keep[0].strength]
    for new_id, t in enumerate(keep):
        t.id = new_id
    return keep


def _extend(track: Track, indices: np.ndarray, step: int, box: np.ndarray, score: float,
            last_seen: dict[int, int]) -> None:
    """Append a detection, first filling the skipped frames with interpolated boxes."""
    prev, base = last_seen[track.id], track.boxes[-1]
    for gap in range(prev + 1, step):
        a = (gap - prev) / (step - prev)
        track.add(indices[gap], (1 - a) * base + a * box, 0.0, detected=False)
    track.add(indices[step], box, score)
    last_seen[track.id] = step


def densify(track: Track, indices: np.ndarray, reach: int) -> Track:
    """The track at every sampled frame within `reach` frames of its span, boxes interpolated.

    Used when faces were detected on every k-th sampled frame only: faces move little between
    neighbouring samples, so the boxes in between are interpolated and the ends held.
    """
    known = np.asarray(track.indices)
    boxes = np.stack(track.boxes)
    scores = dict(zip(track.indices, track.scores))
    found = dict(zip(track.indices, track.detected))
    dense = Track(track.id)
    for index in indices:
        if known[0] - reach <= index <= known[-1] + reach:
            box = np.array([np.interp(index, known, boxes[:, c]) for c in range(4)])
            dense.add(index, box, scores.get(int(index), 0.0), found.get(int(index), False))
    return dense
