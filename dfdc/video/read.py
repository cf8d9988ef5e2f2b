"""Reading the frames a job needs from a video, as RGB arrays with their true frame indices.

DFDC videos are H.264 with very few keyframes, so seeking costs a decode from the start.
Decoding with PyAV and skip_frame="NONREF" skips the non-reference frames (every 2nd frame of
a DFDC video) and is the fastest reliable way measured here; OpenCV grab()/retrieve() is the
fallback when PyAV cannot open a file.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..defaults import SAMPLING
from ..errors import DfdcError
from .files import file_problem
from .sampling import get_sampling

# OpenCV's own FFmpeg prints to stderr ("moov atom not found") unless told not to; it reads this
# once, when it first opens a video. PyAV leaves libav's logging off unless asked.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
TAIL = 2  # frames a stream may end short of its header's count (NONREF skips, rounding) and be whole


@dataclass
class Video:
    """Sampled frames of one video (upright, RGB uint8) and what is known of the stream."""

    path: Path
    frames: np.ndarray  # (N, H, W, 3)
    indices: np.ndarray  # (N,) true frame indices in the stream
    fps: float
    total: int  # frames in the stream
    sampled: int = 0  # frames the sampling asked for (0: not known)
    last: int = -1  # index of the last frame decoded (used or not)
    stopped: str | None = None  # why decoding ended before the stream's end (a damaged or cut file)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the upright frames."""
        return self.frames.shape[2], self.frames.shape[1]

    @property
    def partial(self) -> bool:
        """Whether decoding ended early and some sampled frames are missing."""
        return self.stopped is not None and len(self.indices) < self.sampled

    def decoded(self) -> str:
        """What decoded, e.g. "decoded 4 of 8 sampled frames, up to 4.3 s of 10 s"."""
        fps = self.fps or 30.0
        end = max(self.last + 1, 0) / fps
        return (f"decoded {len(self.indices)} of {self.sampled} sampled frames, "
                f"up to {end:.1f} s of {round(self.total / fps, 1):g} s")


class FrameBuffer:
    """Memory for the sampled frames of one video after another, for a caller that is done with
    each video's frames before it reads the next (predict's workers, one buffer each). A new array
    for every video cost its pages again (200 MB at 1080p, zeroed by the kernel on first touch):
    read_video took 0.23-0.26 s of system time per DFDC sample video, 0.02-0.15 with one buffer."""

    def __init__(self) -> None:
        self._memory = np.empty(0, np.uint8)

    def take(self, shape: tuple[int, ...]) -> np.ndarray:
        """A uint8 array of this shape over the buffer's memory (grown where it is too small)."""
        size = math.prod(shape)
        if self._memory.size < size:
            self._memory = np.empty(size, np.uint8)
        return self._memory[:size].reshape(shape)


def read_video(path: str | Path, n: int = 32, sampling: str = SAMPLING,
               rng: np.random.Generator | None = None, indices: np.ndarray | None = None,
               at_fps: float | None = None, threads: int = 0, buffer: FrameBuffer | None = None) -> Video:
    """Decode the n frames the sampling asks for, or exactly the frames `indices` names (every
    frame is then decoded: a fake read where its original was sampled must not move, and its
    reference frames fall elsewhere). With `at_fps`, `indices` are frames of a stream at that rate
    (an original's) and mean the same moments of this one, whatever its rate: one decode, as the
    rate is known once the file is open. A file that is not a readable video is a DfdcError whose
    kind says why: not a file, permission denied, empty file, no video stream, cannot decode.
    A file that decodes only in part gives the frames before the damage, with `stopped` set.
    `threads`: the decoder's threads (0: libav's choice, one per core); a caller that decodes
    several videos at once on few cores gives each its share (`dfdc.device.thread_share`).
    `buffer`: PyAV's path writes the frames into its memory, which the next read with it overwrites."""
    path = Path(path)
    problem = file_problem(path)
    if problem:
        raise DfdcError(problem[1], path, kind=problem[0])
    if indices is not None:
        exact = np.asarray(indices, np.int64)

        def pick(total: int, count: int, rng, fps: float) -> np.ndarray:
            moments = exact if at_fps is None or same_rate(fps, at_fps) else np.unique(np.round(exact * fps / at_fps))
            moments = moments.astype(np.int64)
            return moments[moments < max(total, 1)] if total else moments

        n = len(exact)
    else:
        sampler = get_sampling(sampling)

        def pick(total: int, count: int, rng, fps: float) -> np.ndarray:
            return sampler(total, count, rng)
    try:
        video = _read_pyav(path, n, pick, rng, skip_nonref=indices is None, threads=threads,
                           buffer=buffer)
    except _NotOpened as e:  # OpenCV's FFmpeg build may know a container PyAV's does not
        video = _read_opencv(path, n, pick, rng)
        if len(video.indices) == 0:
            raise DfdcError(f"cannot open as a video: {_what_it_is(path)}", path, kind="cannot decode",
                            detail=e.detail) from None
        return video
    if len(video.indices) == 0:
        fallback = _read_opencv(path, n, pick, rng)
        if len(fallback.indices):
            return fallback
        raise DfdcError("cannot decode any frame of its video stream", path, kind="cannot decode",
                        detail=video.stopped)
    return video


def same_rate(fps: float, other: float) -> bool:
    """Whether two frame rates are one (within 1%: 29.97 and 30 are, 15 and 30 are not)."""
    return abs(fps - other) <= 0.01 * other


def _what_it_is(path: Path) -> str:
    """Why a file does not open as a video: an MP4 without its index (cut short), or no video at all."""
    with open(path, "rb") as f:
        head = f.read(12)
    if head[4:8] == b"ftyp":
        return "a damaged MP4 (truncated, or its index is missing)"
    return "not a video file (no known container format)"


class _NotOpened(Exception):
    """PyAV could not open the file as a media container."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _detail(error: BaseException) -> str:
    """A library error in a few words, without the path it repeats."""
    text = getattr(error, "strerror", None) or str(error)
    return " ".join(str(text).split()) or type(error).__name__


def _snap(targets: np.ndarray, index: int, ptr: int) -> tuple[bool, int]:
    """Whether the decoded frame `index` serves the next target(s); the new target pointer."""
    used = False
    while ptr < len(targets) and targets[ptr] <= index:
        used, ptr = True, ptr + 1
    return used, ptr


def _ended_early(targets: np.ndarray, ptr: int, last: int) -> bool:
    """Whether sampled frames are missing because the stream ended before them (not merely a
    skipped non-reference frame or a header's count off by one at the very end)."""
    return ptr < len(targets) and int(targets[ptr]) > last + TAIL


def _read_pyav(path: Path, n: int, pick: Callable[..., np.ndarray],
               rng: np.random.Generator | None, skip_nonref: bool = True, threads: int = 0,
               buffer: FrameBuffer | None = None) -> Video:
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise _NotOpened(_detail(e)) from e
    with container:
        if not container.streams.video:
            others = sorted({s.type for s in container.streams})
            what = f"only {' and '.join(others)}" if others else "no streams at all"
            raise DfdcError(f"no video stream ({what})", path, kind="no video stream")
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 30)
        total = stream.frames or int(round(float(container.duration or 0) / 1e6 * fps))
        targets = pick(total, n, rng, fps)
        if skip_nonref:
            stream.codec_context.skip_frame = "NONREF"
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        tb, start = float(stream.time_base), stream.start_time or 0
        frames, indices, ptr, last, stopped = None, [], 0, -1, None
        try:
            for decoded, frame in enumerate(container.decode(stream)):
                if frame.pts is None:  # no timestamps: count frames, which needs every frame decoded
                    if skip_nonref:
                        return _read_pyav(path, n, pick, rng, False, threads, buffer)
                    index = decoded
                else:
                    index = int(round((frame.pts - start) * tb * fps))
                last = max(last, index)
                used, ptr = _snap(targets, index, ptr)
                if used:
                    frames = _keep(frame, frames, len(indices), len(targets), buffer)
                    indices.append(index)
                if ptr == len(targets):
                    break
        except av.error.FFmpegError as e:
            stopped = _detail(e)  # a damaged tail: keep the frames decoded before it
    if skip_nonref and len(indices) < 0.9 * len(targets):
        return _read_pyav(path, n, pick, rng, False, threads, buffer)  # a stream where NONREF skips too much
    if stopped is None and _ended_early(targets, ptr, last):
        stopped = "the stream ends before its header says"
    if stopped is not None and ptr == len(targets):
        stopped = None  # the damage lies after every sampled frame
    if frames is None:
        return Video(path, np.zeros((0, 0, 0, 3), np.uint8), np.zeros(0, np.int64), fps, total, len(targets),
                     last, stopped)
    return Video(path, frames[:len(indices)], np.asarray(indices, np.int64), fps, max(total, indices[-1] + 1),
                 len(targets), last, stopped)


def _keep(frame, frames: np.ndarray | None, k: int, n: int, buffer: FrameBuffer | None) -> np.ndarray:
    """Put the frame, upright RGB, at row k of the (n, H, W, 3) array of sampled frames (made at
    the first one): written in place, not gathered and stacked, which cost a sixth of the decode
    (every 1080p frame's pages touched twice). A frame of another size than the first (a stream
    that changes resolution) is resized to it."""
    import cv2

    turns = round(frame.rotation / 90) if frame.rotation else 0  # quarter turns to upright
    h, w = (frame.width, frame.height) if turns % 2 else (frame.height, frame.width)
    if frames is None:
        frames = buffer.take((n, h, w, 3)) if buffer is not None else np.empty((n, h, w, 3), np.uint8)
    out = frames[k]
    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:  # OpenCV: ~10x swscale
        if not turns and (h, w) == out.shape[:2]:
            cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2RGB_I420, dst=out)
            return frames
        image = cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2RGB_I420)
    else:
        image = frame.to_ndarray(format="rgb24")
    if turns:
        image = np.rot90(image, k=turns)
    out[:] = image if image.shape[:2] == out.shape[:2] else cv2.resize(image, out.shape[1::-1])
    return frames


def _read_opencv(path: Path, n: int, pick: Callable[..., np.ndarray],
                 rng: np.random.Generator | None) -> Video:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return Video(path, np.zeros((0, 0, 0, 3), np.uint8), np.zeros(0, np.int64), 30.0, 0)
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        targets = pick(total, n, rng, fps)
        frames, indices, ptr, last = [], [], 0, -1
        for index in range(total):
            if not cap.grab():
                break
            last = index
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
    stopped = "the stream ends before its header says" if _ended_early(targets, ptr, last) else None
    if not frames:
        return Video(path, np.zeros((0, 0, 0, 3), np.uint8), np.zeros(0, np.int64), fps, total, len(targets),
                     last, stopped)
    return Video(path, np.stack(frames), np.asarray(indices, np.int64), fps, total, len(targets), last, stopped)
