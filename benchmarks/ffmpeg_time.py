"""The yardstick of the benchmarks: seconds to decode every frame of a video once.

`ffmpeg -i VIDEO -f null -` where an ffmpeg binary exists (on PATH, or imageio-ffmpeg's); else
PyAV decoding every frame with the same libav decoder and threads (0.61 s per DFDC sample video
against ffmpeg's 0.70 on our 2-core machine: the stricter yardstick), and the benchmarks say which.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path


def ffmpeg_exe() -> str | None:
    """ffmpeg on PATH, else the binary the imageio-ffmpeg package ships, else None."""
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    return imageio_ffmpeg.get_ffmpeg_exe()


def yardstick() -> str:
    return "ffmpeg full decode" if ffmpeg_exe() else "PyAV full decode (no ffmpeg here)"


def ffmpeg_decode_seconds(video: Path) -> float:
    exe = ffmpeg_exe()
    start = time.perf_counter()
    if exe:
        subprocess.run([exe, "-v", "error", "-i", str(video), "-f", "null", "-"], check=True)
    else:
        import av

        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for _ in container.decode(stream):
                pass
    return time.perf_counter() - start
