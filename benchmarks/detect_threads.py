"""Two threads finding faces at once, as predict's workers do, with the detector's network run in the
calling threads or in one thread of its own (the default on CUDA), side by side in one run.

    python benchmarks/detect_threads.py ../shared/data/dfdc_sample/abofeumbvv.mp4 \
        --weights ../shared/weights --device cuda

PyTorch keeps the cuDNN kernels it chose per thread, and a new thread chooses them again for every
batch shape: on an H100 two threads at once took 15-22 s for two videos where one took 0.3-0.6 s
for one. Each row: one video's tracks found alone (after a warm-up), then by two new threads at once.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

from dfdc.defaults import DETECT_EVERY
from dfdc.device import pick_device
from dfdc.faces.detector import FaceDetector
from dfdc.faces.find import track_faces
from dfdc.video.read import read_video


def _two_at_once(video, detector: FaceDetector) -> float:
    threads = [threading.Thread(target=track_faces, args=(video, detector, DETECT_EVERY)) for _ in range(2)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("video", type=Path)
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=32)
    args = parser.parse_args()
    device = pick_device(args.device)
    video = read_video(args.video, args.frames)
    print(f"video={args.video.name} frames={args.frames} detect_every={DETECT_EVERY} device={device}")
    together = {}
    for own in (False, True):
        detector = FaceDetector(args.weights, device=device, own_thread=own)
        track_faces(video, detector, DETECT_EVERY)  # warm-up
        start = time.perf_counter()
        track_faces(video, detector, DETECT_EVERY)
        alone = time.perf_counter() - start
        together[own] = _two_at_once(video, detector)
        where = "its own thread" if own else "the callers' threads"
        print(f"network in {where}: one video alone {alone:.3f} s, "
              f"two at once in new threads {together[own]:.3f} s")
    print(f"ratio (two at once, own thread / callers' threads): {together[True] / together[False]:.2f}")


if __name__ == "__main__":
    main()
