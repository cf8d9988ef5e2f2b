"""The yardstick of the benchmarks: seconds `ffmpeg -i VIDEO -f null -` takes to decode every frame."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path


def ffmpeg_exe() -> str:
    """ffmpeg on PATH, else the binary the imageio-ffmpeg package ships."""
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_decode_seconds(video: Path) -> float:
    start = time.perf_counter()
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(video), "-f", "null", "-"], check=True)
    return time.perf_counter() - start
