"""Command-line pieces several subcommands share: argument types and parent parsers, one source per flag.

A flag that means the same thing in several commands is defined once here and added to each
command as a parent parser, so its name, default and help cannot drift apart.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import defaults


def parse_duration(text: str | float | None) -> float | None:
    """Seconds from "32400", "9h", "30m", "90s" or "1h30m"; None means no limit."""
    if text is None or isinstance(text, (int, float)):
        return None if text is None else float(text)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    total, number = 0.0, ""
    for ch in text.strip().lower():
        if ch.isdigit() or ch == ".":
            number += ch
        elif ch in units and number:
            total, number = total + float(number) * units[ch], ""
        else:
            raise ValueError(f"not a duration: {text!r} (use seconds or e.g. 8h, 30m, 1h30m)")
    if number:
        total += float(number)
    if total <= 0:
        raise ValueError(f"not a positive duration: {text!r}")
    return total


def duration_arg(text: str) -> float:
    """parse_duration as an argparse type: a bad --time-limit is argparse's one-line usage error."""
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def count_arg(text: str) -> int:
    """A whole number of at least 0 as an argparse type (--blends of train and cv): a bad one is
    argparse's one-line usage error, worded once for every command."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, not {value}")
    return value


def parents(*names: str) -> list[argparse.ArgumentParser]:
    """The shared flag groups `names` (keys of FLAGS), as parent parsers for add_parser(parents=...)."""
    out = []
    for name in names:
        p = argparse.ArgumentParser(add_help=False)
        FLAGS[name](p)
        out.append(p)
    return out


def _weights(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", type=Path, help="folder with the face detector weights (else $DFDC_WEIGHTS, ./weights)")


def _device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu or cuda")


def _crops(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", type=int, default=defaults.CROP_SIZE, help="side of the square crops in pixels")
    p.add_argument("--margin", type=float, default=defaults.CROP_MARGIN,
                   help="margin added on each side of the face box, as a fraction of its side")


def _detection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--detector", default=defaults.DETECTOR, help="face detector by name (dfdc.faces.detector)")
    p.add_argument("--detect-every", type=int, default=defaults.DETECT_EVERY,
                   help="detect faces in whole frames on every k-th sampled frame; between, each face is found "
                        "again around where its track is expected")


def _time_limit(p: argparse.ArgumentParser) -> None:
    p.add_argument("--time-limit", type=duration_arg, help='seconds, or e.g. "8h", "30m": the job ends within it')


def _scoring(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", type=int, help="frames per video (default: the checkpoints')")
    p.add_argument("--batch-size", type=int, help="crops per model call (default: 8 on a CPU, 64 on CUDA)")
    p.add_argument("--aggregation", "--strategy", dest="aggregation",
                   help="how frame scores make a video score: confident, mean, ... (default: the checkpoints'; "
                        "--strategy is the old name)")
    p.add_argument("--match-prior", action="store_true",
                   help=f"the test set's FAKE fraction is known (0.5, or predict's --prior): shift all scores "
                        f"together so their mean is that fraction (from {defaults.MATCH_MIN} scored videos on)")


FLAGS = {"weights": _weights, "device": _device, "crops": _crops, "detection": _detection,
         "time_limit": _time_limit, "scoring": _scoring}
