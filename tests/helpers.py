"""Helpers the tests share: writing small real videos, the bad inputs every job must survive, the devices."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pytest
import torch

from dfdc.video.write import VideoWriter

# The devices a test of a job runs on: the CPU always, CUDA where there is one (skipped elsewhere).
DEVICES = ("cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")))
CACHE_SETTINGS = {"frames": 12, "size": 64, "min_faces": 6}  # small and quick; 12 frames hold 10-frame clips


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float = 30.0) -> Path:
    """Encode a sequence of RGB uint8 frames, all of one even size, as an mp4 file."""
    frames = iter(frames)
    first = next(frames)
    with VideoWriter(path, (first.shape[1], first.shape[0]), fps) as writer:
        writer.write(first)
        for frame in frames:
            writer.write(frame)
    return Path(path)


def add_bad_videos(folder: Path, sample_dir: Path) -> list[str]:
    """Write the bad inputs every job must survive into folder: an empty file, a text file named
    .mp4, a real video cut in half, and a real video without a face. Returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "text.mp4").write_text("a text file, named like a video\n")
    data = (sample_dir / "knqhpwoigk.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])
    rng = np.random.default_rng(0)
    write_video(folder / "noface.mp4", [rng.integers(0, 255, (180, 320, 3), np.uint8) for _ in range(12)])
    return ["empty.mp4", "text.mp4", "truncated.mp4", "noface.mp4"]


def ffmpeg(*args: object) -> None:
    """Run the ffmpeg bundled with imageio-ffmpeg (quiet, overwriting)."""
    import subprocess

    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", *map(str, args)], check=True)


def make_clip(source: Path, out: Path, seconds: float = 2.0, width: int = 640, faststart: bool = True) -> Path:
    """A real H.264 mp4 cut from a real video: its first `seconds`, scaled to `width`, no audio;
    faststart puts the index first, so a cut-short copy still decodes up to the cut."""
    flags = ["-movflags", "+faststart"] if faststart else []
    ffmpeg("-i", source, "-t", seconds, "-vf", f"scale={width}:-2", "-c:v", "libx264", "-preset", "ultrafast",
           "-an", *flags, out)
    return Path(out)


def cut_short(source: Path, out: Path, fraction: float) -> Path:
    """The first `fraction` of a file's bytes, as a download or a copy cut short would leave it."""
    data = Path(source).read_bytes()
    Path(out).write_bytes(data[: int(len(data) * fraction)])
    return Path(out)
