"""`dfdc kaggle ...`: the subcommands, added to the `dfdc` parser by add_kaggle_parser.

Imports stay inside the handlers: `dfdc --help` must not load torch or the kaggle client.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..cliargs import duration_arg
from ..errors import DfdcError
from . import COMPETITION, OWNER_PLACEHOLDER, UTILITY
from .metadata import LAYOUTS


def _pair(text: str) -> tuple[str, str]:
    """NAME=VALUE of --input and --env."""
    name, sep, value = text.partition("=")
    if not (sep and name and value):
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name, value


def _build_dataset(args: argparse.Namespace) -> int:
    from .dataset import build_dataset

    owner = args.owner or OWNER_PLACEHOLDER  # no account needed to build: upload-dataset fills it in
    files = build_dataset(args.out, owner, args.checkpoint, args.weights, args.wheelhouse)
    print(f"build-dataset: {len(files)} files -> {args.out} ({owner}/{UTILITY}); upload with "
          f"`dfdc kaggle upload-dataset {args.out}` (it fills in your username)")
    return 0


def _upload_dataset(args: argparse.Namespace) -> int:
    from .kernels import upload_dataset

    upload_dataset(args.folder, args.message, args.owner)
    return 0


def _image_env(args: argparse.Namespace) -> int:
    from .image import IMAGE_DATE, IMAGE_VERSIONS, PYTHON
    from .imageenv import build_image_env

    print(f"image-env: Python {PYTHON} with the Kaggle GPU image's versions of {IMAGE_DATE} (torch "
          f"{IMAGE_VERSIONS['torch']}, about 8 GB from PyPI) -> {args.out}", flush=True)
    python = build_image_env(args.out, args.python)
    print(f"image-env: done: dry-run with --image-env {args.out} (python {python})")
    return 0


def _push(args: argparse.Namespace) -> int:
    from .kernels import push

    push(args.kernel_dir, args.owner)
    return 0


def _status(args: argparse.Namespace) -> int:
    from .kernels import status

    return 1 if status(args.kernel, args.owner) == "error" else 0


def _output(args: argparse.Namespace) -> int:
    from .kernels import output

    output(args.kernel, args.out, args.owner)
    return 0


def _submit(args: argparse.Namespace) -> int:
    from .kernels import submit

    submit(args.kernel, args.version, args.message, args.file, args.owner)
    return 0


def _download_sample(args: argparse.Namespace) -> int:
    from .kernels import download_sample

    download_sample(args.out)
    return 0


def _dry_run(args: argparse.Namespace) -> int:
    from .dryrun import dry_run

    result = dry_run(args.kernel_dir, dict(args.input), time_limit=args.time_limit, checkpoints=args.checkpoint,
                     weights=args.weights, wheelhouse=args.wheelhouse, env=dict(args.env), root=args.root,
                     layout=args.layout, image_env=args.image_env)
    print(f"dry-run: {result.seconds:.0f} s of its {result.limit:.0f} s, network off ({result.network}), "
          f"{result.layout} layout; outputs in {result.working}")
    if result.differences:
        print(f"dry-run: not the Kaggle image's versions: {', '.join(result.differences)}; "
              "for those, `dfdc kaggle image-env DIR` and --image-env DIR")
    else:
        print("dry-run: the Kaggle image's Python and versions")
    if result.returncode is None:
        raise DfdcError(f"the kernel ran past its time limit ({result.limit:.0f} s) and was stopped: "
                        "on Kaggle it would fail")
    if result.returncode != 0:
        raise DfdcError(f"the kernel failed with status {result.returncode} (its output is above)")
    for problem in result.problems:
        print(f"dfdc: error: {problem}", file=sys.stderr)
    if result.submission is not None and not result.problems:
        print(f"dry-run: {result.submission}: valid submission")
    return 1 if result.problems else 0


def add_kaggle_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add `dfdc kaggle` and its subcommands to the `dfdc` parser's subcommands."""
    kaggle = subparsers.add_parser(
        "kaggle", help="the utility dataset, kernels on Kaggle, and local dry runs of them",
        description="Over the official kaggle client, with its credentials in its order: an API token "
                    "(KAGGLE_API_TOKEN, or the file ~/.kaggle/access_token; dfdc also reads "
                    "$KAGGLE_CONFIG_DIR/access_token), then the legacy KAGGLE_USERNAME/KAGGLE_KEY or "
                    "kaggle.json (mode 600), then the OAuth credentials of `kaggle auth login`. The owner is "
                    "the user the client signs in as.")
    sub = kaggle.add_subparsers(dest="kaggle_command", required=True)
    owner = argparse.ArgumentParser(add_help=False)
    owner.add_argument("--owner", help="Kaggle user owning it (default: the user the credentials belong to)")
    build = argparse.ArgumentParser(add_help=False)
    build.add_argument("--checkpoint", type=Path, action="append", default=[],
                       help="a dfdc checkpoint (*.pt) to include; repeat for an ensemble")
    build.add_argument("--weights", type=Path, help="folder with the BlazeFace weights (else $DFDC_WEIGHTS, ./weights)")
    build.add_argument("--wheelhouse", type=Path,
                       help="offline: take the dependency wheels only from this folder (pip --no-index --find-links)")

    p = sub.add_parser("build-dataset", parents=[build],
                       help="the utility dataset folder: dfdc and dependency wheels, weights, checkpoints "
                            "(no Kaggle account needed)")
    p.add_argument("out", type=Path, help="a new or empty folder, then `dfdc kaggle upload-dataset OUT`")
    p.add_argument("--owner", help=f"Kaggle user owning it (default: {OWNER_PLACEHOLDER}, filled in by upload-dataset)")
    p.set_defaults(run=_build_dataset)

    p = sub.add_parser("upload-dataset", parents=[owner],
                       help="upload a build-dataset folder, owner filled in: a new dataset or a new version")
    p.add_argument("folder", type=Path)
    p.add_argument("--message", help="version notes, for a new version (default: dfdc)")
    p.set_defaults(run=_upload_dataset)

    p = sub.add_parser("image-env", help="a venv of the Kaggle GPU image's Python and versions (PyPI, ~8 GB), "
                                         "for dry runs with --image-env")
    p.add_argument("out", type=Path, help="a new or empty folder")
    p.add_argument("--python", type=Path, help="an interpreter of the image's Python version "
                                               "(default: pythonX.Y on PATH, or one of pyenv's)")
    p.set_defaults(run=_image_env)

    p = sub.add_parser("push", parents=[owner], help="push a kernel folder (kernels/...) as a new version and run it")
    p.add_argument("kernel_dir", type=Path)
    p.set_defaults(run=_push)

    p = sub.add_parser("status", parents=[owner], help="state of a kernel's latest run")
    p.add_argument("kernel", help="a kernel folder, owner/slug, or a slug of yours")
    p.set_defaults(run=_status)

    p = sub.add_parser("output", parents=[owner], help="download a kernel's output files and log")
    p.add_argument("kernel", help="a kernel folder, owner/slug, or a slug of yours")
    p.add_argument("--out", type=Path, help="folder (default kaggle-output/<slug>)")
    p.set_defaults(run=_output)

    p = sub.add_parser(
        "submit", parents=[owner], help="submit a kernel version's submission.csv to the competition",
        description=f"Submit what a kernel version wrote to {COMPETITION}. The competition ended in 2020 and "
                    "Kaggle no longer scores late submissions (it may refuse them): score a submission "
                    "offline with `dfdc evaluate`.")
    p.add_argument("kernel", help="a kernel folder, owner/slug, or a slug of yours")
    p.add_argument("--version", type=int, help="kernel version (default: the latest, looked up on Kaggle)")
    p.add_argument("--message", default="dfdc", help="submission description")
    p.add_argument("--file", default="submission.csv", help="the output file of the kernel to submit")
    p.set_defaults(run=_submit)

    p = sub.add_parser("download-sample", help=f"{COMPETITION}'s train_sample_videos and test_videos, for dry runs")
    p.add_argument("out", type=Path)
    p.set_defaults(run=_download_sample)

    p = sub.add_parser(
        "dry-run", parents=[build], help="run a kernel here as Kaggle would (offline, image-only venv, time limit)",
        description="Runs the kernel's script in a fresh /kaggle-like tree (DFDC_KAGGLE_ROOT points the script "
                    "there), with the utility dataset built fresh unless given as an --input, in a venv holding "
                    "only what the Kaggle image provides, without network, within its time limit; checks the "
                    "submission.csv it writes.")
    p.add_argument("kernel_dir", type=Path)
    p.add_argument("--input", type=_pair, action="append", default=[], metavar="NAME=DIR",
                   help=f"a source of the kernel (e.g. {COMPETITION}) mapped to a local folder; repeat")
    p.add_argument("--time-limit", type=duration_arg, help='the kernel\'s limit, e.g. "9h" or "600" (default: the script\'s own, '
                                        "stopped at Kaggle's 12 h)")
    p.add_argument("--env", type=_pair, action="append", default=[], metavar="NAME=VALUE",
                   help="an environment variable for the kernel (e.g. DFDC_PREDICT_ARGS='--frames 8'); repeat")
    p.add_argument("--root", type=Path, help="build the tree here and keep it all (default: a temporary "
                                             "folder, of which only kaggle/working is kept)")
    p.add_argument("--layout", choices=LAYOUTS, default="current",
                   help="current: /kaggle/input/competitions/<slug>, /kaggle/input/datasets/<owner>/<slug> (as "
                        "Kaggle mounts today; default); flat: /kaggle/input/<slug> (as in 2020)")
    p.add_argument("--image-env", type=Path, default=os.environ.get("DFDC_KAGGLE_IMAGE_ENV") or None,
                   help="an image environment of `dfdc kaggle image-env`: the image's Python and versions "
                        "(default: $DFDC_KAGGLE_IMAGE_ENV, else this machine's, with the differences reported)")
    p.set_defaults(run=_dry_run)
