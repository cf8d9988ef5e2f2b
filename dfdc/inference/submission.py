"""The Kaggle submission CSV (`filename,label`, label = P(FAKE)): always complete on disk, and checkable.

A kernel can be killed at any moment (time limit, out of memory), so the file is rewritten whole
and swapped in atomically: a reader sees the old complete file or the new one, never half of one.
"""

from __future__ import annotations

import csv
import logging
import math
from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping

from ..atomic import atomic_path
from ..errors import DfdcError
from ..video.files import folder_videos

HEADER = ("filename", "label")
SHOWN = 5  # names listed in one problem line before "..."
log = logging.getLogger("dfdc")


def _label(score: float | None, prior: float) -> float:
    """A valid label: the prior for a missing or non-finite score, else the score clipped to [0, 1]."""
    if score is None or not math.isfinite(score):
        return prior
    return min(max(float(score), 0.0), 1.0)


def write_submission(
    path: str | Path, scores: Mapping[str, float | None], names: Iterable[str], prior: float = 0.5
) -> Path:
    """Write one row per name, in order, atomically (temp file in the same folder, fsync, os.replace).

    Names without a usable score get `prior`, so the file is valid whatever failed upstream.
    If writing fails, the previous file is left as it was and the temp file is removed.
    """
    if not 0 <= prior <= 1:
        raise DfdcError(f"prior must be in [0, 1], not {prior}")
    path = Path(path)
    with atomic_path(path, fsync=True) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(HEADER)
        for name in names:
            writer.writerow((name, repr(_label(scores.get(name), prior))))
    return path


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows as strings, blank lines skipped; an unreadable or ragged file is a DfdcError naming it.

    The csv module rather than pandas: pandas quietly reads a row with an extra field as an index.
    """
    if not path.is_file():
        raise DfdcError("file not found", path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise DfdcError("file is empty", path)
            rows = []
            for row in reader:
                if not row:
                    continue
                if len(row) != len(header):
                    fields = _count(len(row), "field")
                    raise DfdcError(f"line {reader.line_num} has {fields}, expected {len(header)}", path)
                rows.append(row)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DfdcError(f"not a readable CSV ({' '.join(str(exc).split())})", path) from exc
    return header, rows


def _some(names: list[str]) -> str:
    return ", ".join(names[:SHOWN]) + (", ..." if len(names) > SHOWN else "")


def _repeated(names: list[str]) -> list[str]:
    return sorted(name for name, n in Counter(names).items() if n > 1)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def submission_names(videos_dir: str | Path | None, sample_submission: str | Path | None = None) -> list[str]:
    """The rows a submission needs, in order: the sample submission's if given, else the sorted video
    names of the folder (.mp4 in any case). A name the sample submission repeats gets one row, at its
    first place, and one warning line."""
    if sample_submission is not None:
        path = Path(sample_submission)
        header, rows = _read_csv(path)
        if "filename" not in header:
            raise DfdcError("sample submission has no 'filename' column", path)
        names = [row[header.index("filename")] for row in rows]
        if not names:
            raise DfdcError("sample submission lists no videos", path)
        dupes = _repeated(names)
        if dupes:
            log.warning("%s: sample submission lists %s more than once: %s; each gets one row",
                        path, _count(len(dupes), "video"), _some(dupes))
            names = list(dict.fromkeys(names))
        return names
    if videos_dir is None:
        raise DfdcError("need a videos folder or a sample submission to know which videos to submit")
    folder = Path(videos_dir)
    if not folder.is_dir():
        raise DfdcError("videos folder not found", folder)
    names = [p.name for p in folder_videos(folder)]
    if not names:
        raise DfdcError("no .mp4 videos in folder", folder)
    return names


def _label_problem(text: str) -> str | None:
    """What keeps a label cell from being a probability, or None when it is one."""
    try:
        value = float(text)
    except ValueError:
        return "not a number"
    if not math.isfinite(value):
        return "not finite"
    if not 0 <= value <= 1:
        return "outside [0, 1]"
    return None


def check_submission(
    csv_path: str | Path, videos_dir: str | Path | None = None, sample_submission: str | Path | None = None
) -> list[str]:
    """What is wrong with a submission CSV, one line per problem; an empty list means valid.

    Videos are compared with the sample submission if given, else with the *.mp4 in videos_dir,
    else not at all. A missing or broken reference raises DfdcError: that is the caller's mistake.
    """
    expected = None
    reference = ""
    if sample_submission is not None or videos_dir is not None:
        expected = submission_names(videos_dir, sample_submission)
        reference = "the sample submission" if sample_submission is not None else str(videos_dir)
    return submission_problems(csv_path, expected, reference)


def submission_problems(csv_path: str | Path, expected: list[str] | None = None, reference: str = "") -> list[str]:
    """check_submission's lines for a file, against the names it must hold (None: any names)."""
    where = str(Path(csv_path))  # as DfdcError writes it
    try:
        header, rows = _read_csv(Path(csv_path))
    except DfdcError as exc:
        return [str(exc)]
    if header != list(HEADER):
        return [f"{where}: header is {','.join(header)!r}, expected {','.join(HEADER)!r}"]
    if not rows:
        return [f"{where}: no rows after the header"]

    problems = []
    names = [name for name, _ in rows]
    dupes = _repeated(names)
    if dupes:
        problems.append(f"{where}: {_count(len(dupes), 'video')} listed more than once: {_some(dupes)}")
    if expected is not None:
        given = set(names)
        missing = [n for n in expected if n not in given]
        extra = sorted(given - set(expected))
        if missing:
            problems.append(f"{where}: {_count(len(missing), 'video')} missing: {_some(missing)}")
        if extra:
            problems.append(f"{where}: {_count(len(extra), 'video')} not in {reference}: {_some(extra)}")

    bad: dict[str, list[str]] = {"not a number": [], "not finite": [], "outside [0, 1]": []}
    for name, text in rows:
        kind = _label_problem(text)
        if kind:
            bad[kind].append(f"{name} ({text!r})")
    problems += [f"{where}: {_count(len(c), 'label')} {kind}: {_some(c)}" for kind, c in bad.items() if c]
    return problems
