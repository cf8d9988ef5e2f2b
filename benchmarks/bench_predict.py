"""Seconds per video of `dfdc predict` (32 frames, EfficientNet-B0 at 224, CPU) beside ffmpeg.

    python benchmarks/bench_predict.py ../shared/data/dfdc_sample --weights ../shared/weights

The target: the whole pipeline no slower than decoding every frame once (ratio <= 1.0).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ffmpeg_time import ffmpeg_decode_seconds

from dfdc.inference.predict import run_predict
from dfdc.models.checkpoint import init_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("videos", type=Path)
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--backbone", default="efficientnet_b0")
    parser.add_argument("--detect-every", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    videos = sorted(args.videos.glob("*.mp4"))
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = init_checkpoint(Path(tmp) / "b0.pt", "frame", backbone=args.backbone)
        start = time.perf_counter()
        run_predict(args.videos, [ckpt], Path(tmp) / "submission.csv", frames=args.frames, device="cpu",
                    weights=args.weights, detect_every=args.detect_every, workers=args.workers,
                    report_dir=Path(tmp) / "report")
        ours = (time.perf_counter() - start) / len(videos)
    ff = sum(ffmpeg_decode_seconds(v) for v in videos) / len(videos)
    print(f"videos={len(videos)} frames={args.frames} backbone={args.backbone} detect_every={args.detect_every}")
    print(f"dfdc predict: {ours:.2f} s/video   ffmpeg full decode: {ff:.2f} s/video   ratio: {ours / ff:.2f}")


if __name__ == "__main__":
    main()
