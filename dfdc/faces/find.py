"""Video -> face tracks -> crops: the core that training, inference and the kernels share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..defaults import CROP_MARGIN, CROP_SIZE
from ..video.read import Video
from .crops import crop_face
from .detector import Detector
from .tracks import Track, build_tracks, densify


@dataclass
class Faces:
    """The people of one video: tracks (main first) and, per track, its crops in frame order."""

    video: Video
    tracks: list[Track]
    crops: list[np.ndarray]  # per track: (n, size, size, 3) uint8 RGB

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
        }


def track_faces(video: Video, detector: Detector, detect_every: int = 1) -> list[Track]:
    """Face tracks over the video's sampled frames, detecting on every `detect_every`-th one."""
    step = max(1, detect_every)
    picked = np.arange(0, len(video.indices), step)
    if len(video.indices) and picked[-1] != len(video.indices) - 1:
        picked = np.append(picked, len(video.indices) - 1)
    detections = detector(video.frames[picked])
    tracks = build_tracks(video.indices[picked], detections)
    if step == 1:
        return tracks
    reach = int(np.diff(video.indices).max(initial=1)) * step
    return [densify(t, video.indices, reach) for t in tracks]


def crop_tracks(video: Video, tracks: list[Track], size: int, margin: float) -> list[np.ndarray]:
    """Square crops of every track at every frame it covers."""
    where = {int(index): i for i, index in enumerate(video.indices)}
    return [
        np.stack([crop_face(video.frames[where[i]], b, size, margin) for i, b in zip(t.indices, t.boxes)])
        for t in tracks
    ]


def find_faces(video: Video, detector: Detector, size: int = CROP_SIZE, margin: float = CROP_MARGIN,
               detect_every: int = 1) -> Faces:
    """Tracks and crops of every person in the video."""
    tracks = track_faces(video, detector, detect_every)
    return Faces(video, tracks, crop_tracks(video, tracks, size, margin))
