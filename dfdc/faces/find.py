"""Video -> face tracks -> crops: the core that training, inference and the kernels share."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np

from ..defaults import CROP_MARGIN, CROP_SIZE
from ..video.read import Video
from .boxes import Detections, box_iou
from .crops import crop_face, picture_bounds
from .detector import Detector
from .tracks import (
    DroppedTrack,
    Track,
    densify,
    follow_back,
    link_tracks,
    select_tracks,
    smooth_sizes,
)
from .verify import check_face

# A face found around where a track is expected continues it when the two overlap this much: a
# walker crossing a 1080p frame moves a quarter of the face's side or more between sampled frames
# (0.5 lost the face between whole frames on FF++ kitchen pans); a neighbour's face in the same
# window lies beside the expected box, not on it.
FOLLOW_IOU = 0.3


class Tracks(list):
    """The tracks of a video (main person first), a plain list of Track; `dropped` holds the
    tracks left out (not a face, or weak beside the main one) with the reason."""

    def __init__(self, tracks: list[Track] = (), dropped: list[DroppedTrack] = ()) -> None:
        super().__init__(tracks)
        self.dropped = list(dropped)


@dataclass
class Faces:
    """The people of one video: tracks (main first) and, per track, its crops in frame order;
    `dropped`: the tracks left out and why (track_faces' `Tracks.dropped`)."""

    video: Video
    tracks: list[Track]
    crops: list[np.ndarray]  # per track: (n, size, size, 3) uint8 RGB
    dropped: list[DroppedTrack] = field(default_factory=list)

    def to_dict(self) -> dict:
        """What faces.json and the inference report say about the tracks."""
        w, h = self.video.size
        return {
            "video": self.video.path.name,
            "width": w,
            "height": h,
            "fps": round(self.video.fps, 3),
            "frames_in_video": self.video.total,
            "sampled_frames": self.video.indices.tolist(),
            "tracks": [t.to_dict() for t in self.tracks],
            "dropped_tracks": [d.to_dict() for d in self.dropped],
        }


def track_faces(video: Video, detector: Detector, detect_every: int = 1) -> Tracks:
    """Face tracks over the video's sampled frames, detecting whole frames on every `detect_every`-th one.

    Between those, each face is followed: found again in a window around where its track is
    expected, where the detector has `near` (else the boxes are interpolated between the frames
    detected whole). Each track is checked to be a face (landmarks, and a second look where the
    detector has `look`) on the frames detected whole; the ones that fail are in the result's
    `dropped`. Box sizes are smoothed per track.
    """
    step = max(1, detect_every)
    picked = np.arange(0, len(video.indices), step)
    if len(video.indices) and picked[-1] != len(video.indices) - 1:
        picked = np.append(picked, len(video.indices) - 1)
    found = detector(video.frames[picked])
    whole = set(video.indices[picked].tolist())
    where = {int(index): i for i, index in enumerate(video.indices)}
    near = getattr(detector, "near", None)
    if near is None:
        tracks = link_tracks(video.indices[picked], found)
    else:
        detections: list[Detections | None] = [None] * len(video.indices)
        for i, d in zip(picked, found):
            detections[i] = d
        follow = partial(_follow, video, near)
        tracks = link_tracks(video.indices, detections, follow=follow)
        for t in tracks:
            follow_back(t, video.indices, follow, step - 1)
    tracks, dropped = select_tracks(
        tracks, len(picked), partial(check_face, frame_of=lambda index: video.frames[where[index]],
                                     look=getattr(detector, "look", None), whole=whole),
        whole=whole)
    if near is None and step > 1:
        reach = int(np.diff(video.indices).max(initial=1)) * step
        tracks = [densify(t, video.indices, reach) for t in tracks]
    return Tracks([smooth_sizes(t) for t in tracks], dropped)


def _follow(video: Video, near, step: int, expected: np.ndarray, last: np.ndarray) -> Detections:
    """The faces `near` finds in the video's frame `step` around the expected boxes, or else around
    the last ones (where they differ: one look per frame at a track that stands still), that overlap
    the box looked around by FOLLOW_IOU; each face once (two tracks may find the same), with that
    IoU as `looked` (the face check counts it as a second look)."""
    frame = video.frames[step]
    found, iou = near([frame] * len(expected), expected)
    missed = np.flatnonzero((iou < FOLLOW_IOU) & (np.diag(box_iou(expected, last)) < 0.5))
    if len(missed):
        again, iou_again = near([frame] * len(missed), last[missed])
        better = iou_again > iou[missed]
        for k, j in zip(missed[better], np.flatnonzero(better)):
            found.boxes[k], found.scores[k], found.keypoints[k] = again.boxes[j], again.scores[j], again.keypoints[j]
            iou[k] = iou_again[j]
    keep: list[int] = []
    for k in np.flatnonzero(iou >= FOLLOW_IOU):
        if not keep or box_iou(found.boxes[k:k + 1], found.boxes[keep]).max() < 0.5:
            keep.append(int(k))
    return Detections(found.boxes[keep], found.scores[keep], found.keypoints[keep], iou[keep].astype(np.float32))


def crop_tracks(video: Video, tracks: list[Track], size: int, margin: float) -> list[np.ndarray]:
    """Square crops of every track at every frame it covers, inside the video's picture (no black bars)."""
    where = {int(index): i for i, index in enumerate(video.indices)}
    bounds = picture_bounds(video.frames)
    return [
        np.stack([crop_face(video.frames[where[i]], b, size, margin, bounds) for i, b in zip(t.indices, t.boxes)])
        for t in tracks
    ]


def find_faces(video: Video, detector: Detector, size: int = CROP_SIZE, margin: float = CROP_MARGIN,
               detect_every: int = 1) -> Faces:
    """Tracks and crops of every person in the video, and the tracks left out."""
    tracks = track_faces(video, detector, detect_every)
    return Faces(video, tracks, crop_tracks(video, tracks, size, margin), tracks.dropped)
