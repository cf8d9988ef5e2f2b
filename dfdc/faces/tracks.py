"""Following each person through the sampled frames: detections linked by overlap into tracks, the
tracks chosen (main person first; the ones that fail a check are kept aside with the reason), and
their box sizes smoothed so that the crops of one track show the face at one scale."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .boxes import Detections, box_iou, box_side

NO_KEYPOINTS = np.zeros((6, 2), np.float32)


@dataclass
class Track:
    """One person's face over the sampled frames; `detected` is False where a gap was filled."""

    id: int
    indices: list[int] = field(default_factory=list)  # true frame indices
    boxes: list[np.ndarray] = field(default_factory=list)  # x0, y0, x1, y1 in frame pixels
    scores: list[float] = field(default_factory=list)
    detected: list[bool] = field(default_factory=list)
    # the detector's landmarks (eyes, nose, mouth, ears as x, y) where detected, for checks; not saved
    keypoints: list[np.ndarray] = field(default_factory=list, repr=False)
    # where followed between whole-frame detections, the IoU of the look that found it (else 0); not saved
    looked: list[float] = field(default_factory=list, repr=False)

    def add(self, index: int, box: np.ndarray, score: float, detected: bool = True,
            keypoints: np.ndarray | None = None, looked: float = 0.0) -> None:
        self.indices.append(int(index))
        self.boxes.append(np.asarray(box, np.float32))
        self.scores.append(float(score))
        self.detected.append(detected)
        self.keypoints.append(NO_KEYPOINTS if keypoints is None else np.asarray(keypoints, np.float32))
        self.looked.append(float(looked))

    def found(self, frames: set[int] | None = None) -> list[float]:
        """The scores of its detections (on `frames` only, if given: e.g. the frames detected whole)."""
        return [s for i, s, d in zip(self.indices, self.scores, self.detected) if d and (frames is None or i in frames)]

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


@dataclass
class DroppedTrack:
    """A track that is not used, and why: it failed a check (not a face) or is too weak beside the main one."""

    track: Track
    reason: str

    def to_dict(self) -> dict:
        return {**self.track.to_dict(), "reason": self.reason}


# follow(step, expected, last): the faces found in the frame at `step` (not detected whole) around
# where the tracks alive there are expected (their last motion carried on), else around their last
# boxes (a walker who stops): per track one box in each array
Follow = Callable[[int, np.ndarray, np.ndarray], Detections]


def link_tracks(indices: np.ndarray, detections: list[Detections | None], min_iou: float = 0.2,
                max_gap: int = 4, follow: Follow | None = None) -> list[Track]:
    """Every track through the frames, in the order they start.

    A detection joins the track whose last box it overlaps most (IoU >= min_iou) if that track
    was seen within max_gap sampled frames; gaps up to max_gap are filled by interpolating the
    boxes. A moving face (a camera pan) is also matched where its last motion puts it. Where a
    frame's detections are None (not detected whole), they are what `follow` finds around the
    alive tracks' expected boxes: faces are followed between the frames detected whole.
    """
    tracks: list[Track] = []
    last_seen: dict[int, int] = {}
    for step, (index, dets) in enumerate(zip(indices, detections)):
        alive = [t for t in tracks if step - last_seen[t.id] <= max_gap]
        if alive:
            last, expected = np.stack([t.boxes[-1] for t in alive]), np.stack([_predict(t, index) for t in alive])
        if dets is None:
            dets = follow(step, expected, last) if alive and follow else Detections.empty()
        if alive and len(dets.boxes):
            overlap = np.maximum(box_iou(dets.boxes, last), box_iou(dets.boxes, expected))
        else:
            overlap = np.zeros((len(dets.boxes), len(alive)))
        taken_d, taken_t = set(), set()
        for d, t in sorted(np.argwhere(overlap >= min_iou).tolist(), key=lambda p: -overlap[p[0], p[1]]):
            if d in taken_d or t in taken_t:
                continue
            taken_d.add(d)
            taken_t.add(t)
            _extend(alive[t], indices, step, dets, d, last_seen)
        for d in range(len(dets.boxes)):
            if d not in taken_d:
                track = Track(len(tracks))
                track.add(index, dets.boxes[d], dets.scores[d], keypoints=dets.keypoints[d], looked=_looked(dets, d))
                tracks.append(track)
                last_seen[track.id] = step
    return tracks


def select_tracks(tracks: list[Track], frames: int, check: Callable[[Track], str | None] | None = None,
                  min_coverage: float = 0.25, min_relative: float = 0.4,
                  whole: set[int] | None = None) -> tuple[list[Track], list[DroppedTrack]]:
    """The tracks to use, strongest first (track 0 is the main person), and the ones dropped.

    Tracks detected on fewer than min_coverage of the frames are passing glimpses and not kept
    (nor reported). The others, strongest first, must pass `check` (None: passed; else the reason:
    not a face), and the ones after the main track must have min_relative of its strength (its
    detections weighted by their scores): a video is as fake as its most fake track, so a shirt
    pattern or a building taken for a face, or a face in the far background, must not get a say.
    With `whole` (the frames detected whole, `frames` of them), only their detections are counted:
    a face followed between them is found at a closer look, so small background faces would gain.
    Kept tracks are numbered 0.., dropped ones after.
    """
    strength = {id(t): sum(t.found(whole)) for t in tracks}
    lasting = [t for t in tracks if len(t.found(whole)) >= max(1.0, min_coverage * frames)]
    lasting.sort(key=lambda t: -strength[id(t)])
    kept: list[Track] = []
    dropped: list[DroppedTrack] = []
    for t in lasting:
        if kept and strength[id(t)] < min_relative * strength[id(kept[0])]:
            dropped.append(DroppedTrack(t, f"weak beside the main track (strength {strength[id(t)]:.1f} of "
                                           f"{strength[id(kept[0])]:.1f}: {len(t.found(whole))} detections)"))
            continue
        reason = check(t) if check is not None else None
        if reason:
            dropped.append(DroppedTrack(t, reason))
        else:
            kept.append(t)
    for new_id, t in enumerate([*kept, *(d.track for d in dropped)]):
        t.id = new_id
    return kept, dropped


def follow_back(track: Track, indices: np.ndarray, follow: Follow, most: int) -> None:
    """Prepend to the track the faces `follow` finds on the `most` sampled frames before its first,
    backwards until one is not found: a face that entered between two frames detected whole is
    followed back to where it entered (not past the frame before, where the whole view missed it)."""
    first = int(np.searchsorted(indices, track.indices[0]))
    for step in range(first - 1, max(first - most, 0) - 1, -1):
        found = follow(step, _predict(track, int(indices[step]))[None], track.boxes[0][None])
        if not len(found.boxes):
            return
        for name, value in (("indices", int(indices[step])), ("boxes", found.boxes[0]),
                            ("scores", float(found.scores[0])), ("detected", True), ("keypoints", found.keypoints[0]),
                            ("looked", _looked(found, 0))):
            getattr(track, name).insert(0, value)


def _predict(track: Track, index: int) -> np.ndarray:
    """Where the track's box would be at frame `index` if it kept its motion between detections
    (its last two after its end, its first two before its start)."""
    seen = [i for i, d in enumerate(track.detected) if d]
    seen = seen[:2] if index < track.indices[0] else seen[-2:]
    if len(seen) < 2:
        return track.boxes[seen[0]] if seen else track.boxes[-1]
    a, b = seen
    per_frame = (track.boxes[b] - track.boxes[a]) / max(track.indices[b] - track.indices[a], 1)
    return track.boxes[b] + per_frame * (index - track.indices[b])


def _extend(track: Track, indices: np.ndarray, step: int, dets: Detections, d: int,
            last_seen: dict[int, int]) -> None:
    """Append detection d, first filling the skipped frames with interpolated boxes."""
    prev, base, box = last_seen[track.id], track.boxes[-1], dets.boxes[d]
    for gap in range(prev + 1, step):
        a = (gap - prev) / (step - prev)
        track.add(indices[gap], (1 - a) * base + a * box, 0.0, detected=False)
    track.add(indices[step], box, dets.scores[d], keypoints=dets.keypoints[d], looked=_looked(dets, d))
    last_seen[track.id] = step


def _looked(dets: Detections, d: int) -> float:
    """The IoU of the look that found detection d (0 where it was detected whole)."""
    return 0.0 if dets.looked is None else float(dets.looked[d])


def densify(track: Track, indices: np.ndarray, reach: int) -> Track:
    """The track at every sampled frame within `reach` frames of its span, boxes interpolated.

    Used when faces were detected on every k-th sampled frame only: faces move little between
    neighbouring samples, so the boxes in between are interpolated and the ends held.
    """
    known = np.asarray(track.indices)
    boxes = np.stack(track.boxes)
    scores = dict(zip(track.indices, track.scores))
    found = dict(zip(track.indices, track.detected))
    marks = dict(zip(track.indices, track.keypoints))
    dense = Track(track.id)
    for index in indices:
        if known[0] - reach <= index <= known[-1] + reach:
            box = np.array([np.interp(index, known, boxes[:, c]) for c in range(4)])
            dense.add(index, box, scores.get(int(index), 0.0), found.get(int(index), False), marks.get(int(index)))
    return dense


def smooth_sizes(track: Track, window: int = 7, max_step: float = 0.1, one_scale: float = 0.12) -> Track:
    """The track with its box sides smoothed, each box keeping its centre.

    A detector's box side jitters from frame to frame (a tile sees the face, then the coarse whole
    view; a hand or glasses move the box), and each jump would change the crop's scale. The sides
    are median filtered over `window` frames then averaged over 5; where the result stays within
    `one_scale` of the track's median side, the whole track takes that one side (one crop scale per
    track); where the face really grows or shrinks, the smoothed sides follow it, changing by at
    most `max_step` between neighbouring frames.
    """
    n = len(track.boxes)
    if n < 2:
        return track
    boxes = np.stack(track.boxes).astype(np.float64)
    log_side = np.log(np.maximum(box_side(boxes), 1.0))
    half = window // 2
    med = np.array([np.median(log_side[max(0, i - half):i + half + 1]) for i in range(n)])
    mean = np.array([med[max(0, i - 2):i + 3].mean() for i in range(n)])
    if np.abs(mean - np.median(log_side)).max() <= np.log1p(one_scale):
        target = np.full(n, np.median(log_side))
    else:
        target = _limit_steps(mean, np.log1p(max_step))
    scale = np.exp(target - log_side)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half_wh = (boxes[:, 2:] - boxes[:, :2]) / 2 * scale[:, None]
    track.boxes = [b.astype(np.float32) for b in np.concatenate([centre - half_wh, centre + half_wh], 1)]
    return track


def _limit_steps(x: np.ndarray, step: float) -> np.ndarray:
    """x changed as little as it takes for neighbours to differ by at most `step`: the mean of a
    forward and a backward limited pass (each changes by at most `step`, so their mean does too)."""
    fwd, bwd = x.copy(), x.copy()
    for i in range(1, len(x)):
        fwd[i] = np.clip(fwd[i], fwd[i - 1] - step, fwd[i - 1] + step)
    for i in range(len(x) - 2, -1, -1):
        bwd[i] = np.clip(bwd[i], bwd[i + 1] - step, bwd[i + 1] + step)
    return (fwd + bwd) / 2
