"""Seconds per video of `dfdc predict` beside ffmpeg decoding every frame, and where the time goes.

    python benchmarks/bench_predict.py ../shared/data/dfdc_sample --weights ../shared/weights [--device cuda]

Each round scores every video `--copies` times (links under other names, so loading the models is
the small share it is in a long run) and then has ffmpeg decode the same files as often, so both
see the same machine load. The target: the whole predict no slower than one full decode (ratio <= 1.0).
The stages come from predict's per-video reports: decode, detect and crop run in worker threads
while the models score earlier videos, so they overlap and add up to more than the wall time.
The default model is the frame model `dfdc cv` and `dfdc demo` train (Lite0 at 224, 32 frames).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from ffmpeg_time import ffmpeg_decode_seconds, yardstick

from dfdc.defaults import DETECT_EVERY
from dfdc.device import inference_dtype, pick_device
from dfdc.inference.predict import run_predict
from dfdc.models.checkpoint import init_checkpoint

STAGES = ("decode", "detect", "crop", "model")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("videos", type=Path)
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--backbone", default="tf_efficientnet_lite0")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--detect-every", type=int, default=DETECT_EVERY)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    device = pick_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        videos = tmp / "videos"
        videos.mkdir()
        for copy in range(args.copies):
            for v in sorted(args.videos.glob("*.mp4")):
                (videos / f"{copy}_{v.name}").symlink_to(v.resolve())
        n = len(list(videos.iterdir()))
        ckpt = init_checkpoint(tmp / "model.pt", "frame", backbone=args.backbone)
        print(f"videos={n} ({args.copies} x {n // args.copies}) frames={args.frames} backbone={args.backbone} "
              f"device={device} precision={str(inference_dtype(device)).removeprefix('torch.')} "
              f"workers={args.workers} torch_threads={torch.get_num_threads()}")
        ratios, stages = [], {s: [] for s in STAGES}
        for r in range(args.rounds):
            reports = tmp / f"report{r}"
            start = time.perf_counter()
            run_predict(videos, [ckpt], tmp / "submission.csv", frames=args.frames, device=str(device),
                        weights=args.weights, detect_every=args.detect_every, workers=args.workers,
                        report_dir=reports)
            ours = (time.perf_counter() - start) / n
            ff = sum(ffmpeg_decode_seconds(v) for v in sorted(videos.iterdir())) / n
            for report in reports.glob("*.json"):
                seconds = json.loads(report.read_text()).get("seconds") or {}
                for s in STAGES:
                    stages[s].append(seconds.get(s, 0.0))
            ratios.append(ours / ff)
            print(f"round {r + 1}: dfdc predict {ours:.2f} s/video   {yardstick()} {ff:.2f} s/video   "
                  f"ratio {ours / ff:.2f}")
    print(f"ratio (median of {args.rounds}): {statistics.median(ratios):.2f}")
    print("stage seconds per video (mean; decode, detect, crop overlap the model): "
          + "  ".join(f"{s} {statistics.mean(v):.2f}" for s, v in stages.items() if v))


if __name__ == "__main__":
    main()
