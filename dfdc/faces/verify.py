"""Is a track a face? Its landmarks, and a second look at its box.

The detector sometimes calls a flag's stars, a caption, a poster on a truck, an ear or hair a face,
steadily enough to make a track; a video is as fake as its most fake track, so such a track must
not reach the models. Two checks, measured on ../shared/data/real (127 videos from FF++, Celeb-DF
and DFDC), 7 close-ups made from its DFDC videos and the 5 DFDC sample videos: all 150 face tracks
passed both, all 24 non-face tracks failed one (16 both, 8 the second look only).

- landmarks: BlazeFace places eyes, nose and mouth with each box. On a face (frontal to profile)
  the eyes lie side by side (tilted by less than 45 degrees), apart by more than 15% of the box,
  and the mouth well below them: on 73-100% of a face track's detections (a blurred face in the
  background the least), on 0-25% of a caption's, stars' or hair's.
- a second look: the box's surroundings, framed at 2.5 times its side, detected again (the
  detector's `look`): a face is found again at its box (IoU >= 0.5) on 4 to 6 of 6 looks, a
  non-face on 0 to 2 (the stars and the poster whose landmarks passed: 0 to 2).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .boxes import face_like
from .tracks import Track

MIN_FACE_LIKE = 0.5  # share of a track's detections whose landmarks must be face-like
LOOKS = 6  # second looks per track, at detected frames spread over it
MIN_LOOK_IOU = 0.5  # a look finds the face again when its best box overlaps the track's this much
MIN_FOUND = 0.5  # share of the looks that must find the face again


Look = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (frame, boxes) -> IoU per box


def check_face(track: Track, frame_of: Callable[[int], np.ndarray], look: Look | None = None,
               whole: set[int] | None = None) -> str | None:
    """None if the track is a face; else why not (for faces.json and the predict report).

    frame_of(index) gives the frame at a true frame index; look is the detector's second look
    (None: landmarks only). Detectors without landmarks (all zero) are checked by looks alone.
    whole: the frames detected whole (None: all); only their detections are checked. Between them
    the track was followed by looks around where it was expected (track.looked: the IoU of the look
    that found it there), and each such look counts as a second look (found at IoU >= MIN_LOOK_IOU;
    not found where it was not followed).
    """
    det = [i for i, d in enumerate(track.detected) if d and (whole is None or track.indices[i] in whole)]
    if not det:
        return "never detected"
    boxes = np.stack([track.boxes[i] for i in det])
    marks = np.stack([track.keypoints[i] if i < len(track.keypoints) else np.zeros((6, 2), np.float32)
                      for i in det])
    has_marks = np.abs(marks).sum((1, 2)) > 0
    if has_marks.any():
        ok = face_like(boxes[has_marks], marks[has_marks])
        if ok.mean() < MIN_FACE_LIKE:
            return f"not a face: landmarks face-like on {int(ok.sum())} of {len(ok)} detections"
    if look is None:
        return None
    picks = [det[j] for j in sorted(set(np.linspace(0, len(det) - 1, min(LOOKS, len(det))).round().astype(int)))]
    ious = np.array([look(frame_of(track.indices[i]), track.boxes[i][None])[0] for i in picks])
    between = [track.looked[k] if d and k < len(track.looked) else 0.0
               for k, (i, d) in enumerate(zip(track.indices, track.detected)) if whole is not None and i not in whole]
    found = int((ious >= MIN_LOOK_IOU).sum()) + sum(v >= MIN_LOOK_IOU for v in between)
    looks = len(picks) + len(between)
    if found < MIN_FOUND * looks:
        return f"not a face: a second look found it again on {found} of {looks} frames"
    return None
