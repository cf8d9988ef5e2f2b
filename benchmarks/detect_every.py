"""What `--detect-every K` costs and changes: detector work and each video's tracks, against K = 1.

    python benchmarks/detect_every.py ../shared/data/dfdc_sample ../shared/data/real --weights ../shared/weights

For every video (32 sampled frames) and each K of --every: the tracks kept, the main track's frames
(covered / found by the detector, not interpolated) and its centre; a video whose main track moves
(another person) or loses frames against the first K is marked. Ends with detector windows (128 px
network inputs: whole views, tiles, follows and second looks) per sampled frame for each K.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dfdc.faces.detector import create_detector
from dfdc.faces.find import track_faces
from dfdc.video.files import is_video_name
from dfdc.video.read import read_video


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folders", type=Path, nargs="+", help="folders of videos (searched recursively)")
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--every", default="1,4", help="the K values, the first the reference")
    parser.add_argument("--frames", type=int, default=32)
    args = parser.parse_args()
    ks = [int(k) for k in args.every.split(",")]
    detector = create_detector(weights=args.weights)
    windows = {k: 0 for k in ks}
    frames = marked = videos = 0
    for path in [v for folder in args.folders for v in sorted(folder.rglob("*")) if is_video_name(v)]:
        video = read_video(path, args.frames)
        frames += len(video.indices)
        videos += 1
        row = []
        for k in ks:
            before = detector.windows_run
            tracks = track_faces(video, detector, k)
            windows[k] += detector.windows_run - before
            main = tracks[0] if tracks else None
            centre = np.median([(b[:2] + b[2:]) / 2 for b in main.boxes], 0) if main else None
            row.append((len(tracks), len(main.indices) if main else 0, sum(main.detected) if main else 0, centre))
        ref = row[0]
        moved = any((r[3] is None) != (ref[3] is None) or (r[3] is not None and np.abs(r[3] - ref[3]).max() > 50)
                    for r in row[1:])
        shorter = any(r[1] < ref[1] for r in row[1:])
        marked += moved or shorter
        cells = "  ".join(f"K={k}: {n} tracks, main {c}/{f}" for k, (n, c, f, _) in zip(ks, row))
        print(f"{path.parent.name[:14]:14} {path.name[:36]:36} {cells}"
              + ("  <- another main track" if moved else "  <- fewer frames" if shorter else ""), flush=True)
    print(f"{videos} videos, {marked} marked; detector windows per sampled frame: "
          + "  ".join(f"K={k}: {w / max(frames, 1):.2f}" for k, w in windows.items()))


if __name__ == "__main__":
    main()
