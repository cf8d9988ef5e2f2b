"""Time each face-engine stage per video (decode, detect, crop) beside a full ffmpeg decode.

    python benchmarks/bench_faces.py ../shared/data/dfdc_sample --weights ../shared/weights

Prints one row per video and the ratio (our stages) / (ffmpeg decoding every frame once), and
the detector's work: network inputs (128 px windows: whole view, tiles and second looks) per frame.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from ffmpeg_time import ffmpeg_decode_seconds

from dfdc.defaults import DETECT_EVERY
from dfdc.faces.detector import create_detector
from dfdc.faces.find import crop_tracks, track_faces
from dfdc.video.read import read_video


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("videos", type=Path)
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--detect-every", type=int, default=DETECT_EVERY)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    detector = create_detector(weights=args.weights)
    print(f"frames={args.frames} detect_every={args.detect_every} torch_threads={args.threads}")
    print(f"{'video':16} {'decode':>7} {'detect':>7} {'crop':>6} {'total':>7} {'ffmpeg':>7} {'ratio':>6} {'win/fr':>6}")
    totals = [0.0, 0.0]
    for path in sorted(args.videos.glob("*.mp4")):
        t0 = time.perf_counter()
        video = read_video(path, args.frames)
        t1 = time.perf_counter()
        before = getattr(detector, "windows_run", 0)
        tracks = track_faces(video, detector, args.detect_every)
        work = (getattr(detector, "windows_run", 0) - before) / max(len(video.indices), 1)
        t2 = time.perf_counter()
        crop_tracks(video, tracks, 224, 0.3)
        t3 = time.perf_counter()
        ff = ffmpeg_decode_seconds(path)
        total = t3 - t0
        totals[0] += total
        totals[1] += ff
        print(f"{path.name:16} {t1 - t0:7.2f} {t2 - t1:7.2f} {t3 - t2:6.2f} {total:7.2f} {ff:7.2f} {total / ff:6.2f}"
              f" {work:6.2f}")
    print(f"{'all':16} {'':7} {'':7} {'':6} {totals[0]:7.2f} {totals[1]:7.2f} {totals[0] / totals[1]:6.2f}")


if __name__ == "__main__":
    main()
