"""Writing frames as an H.264 mp4, as DFDC videos are: for synthetic samples and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import av
import numpy as np


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float = 30.0, crf: int = 23) -> Path:
    """Encode RGB uint8 frames (all of one even size) with libx264, yuv420p, like DFDC's files."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = None
        for frame in frames:
            if stream is None:
                stream = container.add_stream("libx264", rate=round(fps))
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(crf), "preset": "veryfast"}
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        if stream is not None:
            container.mux(stream.encode())
    return path
