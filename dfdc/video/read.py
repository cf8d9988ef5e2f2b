"""Reading the frames a job needs from a video, as RGB arrays with their true frame indices.

DFDC videos are H.264 with very few keyframes, so seeking costs a decode from the start.
Decoding with PyAV and skip_frame="NONREF" skips the non-reference frames (every 2nd frame of
a DFDC video) and is the fastest reliable way measured here; OpenCV grab()/retrieve() is the
fallback when PyAV cannot open a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..defaults import SAMPLING
from ..errors import DfdcError
from .sampling import get_sampling


@dataclass
class Video:
    """Sampled frames of one video (upright, RGB uint8) and what is known of the stream."""

    path: Path
    frames: np.ndarray  # (N, H, W, 3)
    indices: np.ndarray  # (N,) true frame indices in the stream
    fps: float
    total: int  # frames in the stream

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the upright frames."""
        return self.frames.shape[2], self.frames.shape[1]


def read_video(path: str | Path, n: int = 32, sampling: str = SAMPLING,
               rng: np.random.Generator | None = None, indices: np.ndarray | None = None) -> Video:
    """Decode the n frames the sampling asks for, or exactly the frames `indices` names (every
    frame is then decoded: a fake read where its original was sampled must not move, and its
    reference frames fall elsewhere). A file that is not a readable video is a DfdcError."""
    path = Path(path)
    if not path.is_file():
        raise DfdcError("no such file", path)
    if path.stat().st_size == 0:
        raise DfdcError("empty file (0 bytes)", path)
    if indices is not None:
        exact = np.asarray(indices, np.int64)
        n, pick = len(exact), lambda total, count, rng: exact[exact < max(total, 1)] if total else exact
    else:
        pick = get_sampling(sampling)
    try:
        video = _read_pyav(path, n, pick, rng, skip_nonref=indices is None)
    except DfdcError:
        video = None
    if video is None or len(video.indices) == 0:
        video = _read_opencv(path, n, pick, rng)
    if len(video.indices) == 0:
        raise DfdcError("no decodable video frames (truncated or not a video)", path)
    return video


def _snap(targets: np.ndarray, index: int, ptr: int) -> tuple[bool, int]:
    """Whether the decoded frame `index` serves the next target(s); the new target pointer."""
    used = False
    while ptr < len(targets) and targets[ptr] <= index:
        used, ptr = True, ptr + 1
    return used, ptr


def _read_pyav(path: Path, n: int, pick: Callable[..., np.ndarray],
               rng: np.random.Generator | None, skip_nonref: bool = True) -> Video | None:
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise DfdcError(f"cannot open as a video ({type(e).__name__})", path) from e
    with container:
        if not container.streams.video:
            raise DfdcError("no video stream", path)
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 30)
        total = stream.frames or int(round(float(container.duration or 0) / 1e6 * fps))
        targets = pick(total, n, rng)
        if skip_nonref:
            stream.codec_context.skip_frame = "NONREF"
        stream.thread_type = "AUTO"
        tb, start = float(stream.time_base), stream.start_time or 0
        frames, indices, ptr = [], [], 0
        try:
            for decoded, frame in enumerate(container.decode(stream)):
                if frame.pts is None:  # no timestamps: count frames, which needs every frame decoded
                    if skip_nonref:
                        return _read_pyav(path, n, pick, rng, skip_nonref=False)
                    index = decoded
                else:
                    index = int(round((frame.pts - start) * tb * fps))
                used, ptr = _snap(targets, index, ptr)
                if used:
                    image = _rgb(frame)
                    if frame.rotation:
                        image = np.ascontiguousarray(np.rot90(image, k=round(frame.rotation / 90)))
                    frames.append(image)
                    indices.append(index)
                if ptr == len(targets):
                    break
        except av.error.FFmpegError:
            pass  # a damaged tail: keep the frames decoded before it
    if skip_nonref and len(indices) < 0.9 * len(targets):
        return _read_pyav(path, n, pick, rng, skip_nonref=False)  # a stream where NONREF skips too much
    if not frames:
        return None
    return Video(path, np.stack(frames), np.asarray(indices, np.int64), fps, max(total, indices[-1] + 1))


def _rgb(frame) -> np.ndarray:
    """RGB array of a PyAV frame; OpenCV's YUV conversion is ~10x faster than swscale here."""
    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        import cv2

        return cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2RGB_I420)
    return frame.to_ndarray(format="rgb24")


def _read_opencv(path: Path, n: int, pick: Callable[..., np.ndarray],
                 rng: np.random.Generator | None) -> Video:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise DfdcError("cannot open as a video (not a video file or truncated)", path)
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        targets = pick(total, n, rng)
        frames, indices, ptr = [], [], 0
        for index in range(total):
            if not cap.grab():
                break
            used, ptr = _snap(targets, index, ptr)
            if used:
                ok, image = cap.retrieve()
                if ok:
                    frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
                    indices.append(index)
            if ptr == len(targets):
                break
    finally:
        cap.release()
    if not frames:
        return Video(path, np.zeros((0, 0, 0, 3), np.uint8), np.zeros(0, np.int64), fps, total)
    return Video(path, np.stack(frames), np.asarray(indices, np.int64), fps, total)
