"""The `dfdc` command: one subcommand per job, each a thin layer over the package."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .errors import DfdcError

log = logging.getLogger("dfdc")


def _faces(args: argparse.Namespace) -> int:
    from .faces_job import run_faces, video_files

    total = len(video_files(args.source))
    problems = run_faces(args.source, args.out, args.frames, args.size, args.margin, args.weights,
                         args.detect_every, args.device)
    print(f"faces: {total - len(problems)}/{total} videos with faces -> {args.out}")
    return 1 if len(problems) == total else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dfdc", description="Deepfake detection for DFDC face videos.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("faces", help="face tracks and crops of a video or a folder of videos")
    p.add_argument("source", type=Path, help="an .mp4 file or a folder of them")
    p.add_argument("--out", type=Path, required=True, help="output folder (one subfolder per video)")
    p.add_argument("--frames", type=int, default=32, help="frames sampled evenly per video")
    p.add_argument("--size", type=int, default=224, help="side of the square crops in pixels")
    p.add_argument("--margin", type=float, default=0.3, help="margin added on each side, as a fraction of the box")
    p.add_argument("--weights", type=Path, help="folder with the BlazeFace weights (else $DFDC_WEIGHTS, ./weights)")
    p.add_argument("--detect-every", type=int, default=1, help="detect on every k-th sampled frame, interpolate between")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.set_defaults(run=_faces)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="dfdc: %(levelname)s: %(message)s")
    try:
        return args.run(args)
    except DfdcError as e:
        print(f"dfdc: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dfdc: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
