"""Writing frames as an mp4, H.264 as DFDC's videos are: for the synthetic sample (and tests)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def video_codec() -> str:
    """H.264 as in DFDC where this PyAV build can encode it, else MPEG-4 part 2 (always built in)."""
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


class VideoWriter:
    """An mp4 file written frame by frame from RGB uint8 arrays (even sizes) with PyAV, yuv420p."""

    def __init__(self, path: str | Path, size: tuple[int, int], fps: float, codec: str | None = None) -> None:
        codec = codec or video_codec()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        self.stream.width, self.stream.height = size
        self.stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            # Without MB-tree: with it, this x264 wrote different bytes for the same frames from run
            # to run (measured, AVX-512 machine), and the same seed must give the same videos.
            self.stream.options = {"crf": "23", "preset": "veryfast", "x264-params": "mbtree=0"}
        else:
            self.stream.bit_rate = int(0.2 * size[0] * size[1] * fps)  # 0.2 bit a pixel: clean at these sizes

    def write(self, rgb: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        self.container.mux(self.stream.encode(frame))

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.container.mux(self.stream.encode())
        self.container.close()
