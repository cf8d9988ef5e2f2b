"""The first second of `dfdc predict`: every check that needs no model, and a valid CSV on disk.

This module imports the standard library and dfdc's light modules only (no numpy, torch, OpenCV
or PyAV): `dfdc predict` runs it before the heavy imports, so a kill at any moment after the first
fraction of a second leaves a complete submission. It checks the flags, `--out`, the checkpoint
files and every listed video, writes the first CSV (the prior for every video not yet scored), and
holds what the scoring stage shares with it: the scores so far, the one lock every write takes,
the problem lines, and the hard stop at the time limit.

An existing `--out` that is already a complete submission of these videos is kept until this run
has a score of its own: a run that fails before scoring anything leaves it as it was.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import atomic_path
from ..defaults import CLIP, DETECT_EVERY, MATCH_MIN, PRIOR
from ..errors import DfdcError
from ..video.files import file_problem, listed_videos
from .submission import HEADER, submission_names, submission_problems, write_submission

log = logging.getLogger("dfdc")
SHOWN = 5  # problem lines of one kind shown one by one; more share one summary line
EARLY = 0.5  # the hard stop fires this many seconds before the time limit, to be out within it (a C call
# holding the GIL, or a busy CPU, can delay it by a few tenths of a second)
MISSING = "listed but not in the folder"
MODELLED = ("ok", "partial")  # a video's report status when the models scored it (else it got the prior)


def process_started(fallback: float) -> float:
    """time.monotonic() at the start of this process (Linux: /proc/self/stat), so a time limit
    counts the interpreter's start-up and the imports; `fallback` where that cannot be read or
    does not make sense (it must lie before `fallback`, an instant this process saw)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        ticks = int(fields[19])  # field 22, starttime: clock ticks after boot
        since = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return fallback
    started = time.monotonic() - since
    if not fallback - 300 < started <= fallback + 0.05:  # another clock (a time namespace): do not trust it
        return fallback
    return min(started, fallback)


class Problems:
    """Warning lines about videos: one line each for up to SHOWN videos with the same problem, then
    one summary line for the rest of them, so 5,000 missing videos make a few lines, not 5,000."""

    def __init__(self) -> None:
        self.names: dict[str, list[str]] = {}
        self.outcome: dict[str, str] = {}

    def add(self, kind: str, name: str, line: str, outcome: str) -> None:
        """A problem found while the run goes on: its line, or, past SHOWN of its kind, a count."""
        names = self.names.setdefault(kind, [])
        names.append(name)
        self.outcome[kind] = outcome
        if len(names) <= SHOWN:
            log.warning("%s; %s", line, outcome)
        elif len(names) == SHOWN + 1:
            log.warning("more videos: %s; they are summed up at the end", kind)

    def add_all(self, kind: str, found: list[tuple[str, str]], outcome: str, where: str = "") -> None:
        """Problems found all at once: a line each, or one summary line for more than SHOWN."""
        if len(found) <= SHOWN:
            for name, line in found:
                self.add(kind, name, line, outcome)
            return
        names = [name for name, _ in found]
        log.warning("%d videos %s%s: %s; each %s", len(names), kind, where, _some(names), _plural(outcome))

    def summary(self) -> None:
        """One line per kind that had more than SHOWN videos during the run."""
        for kind, names in self.names.items():
            if len(names) > SHOWN:
                log.warning("%d videos in all: %s: %s; each %s", len(names), kind, _some(names),
                            _plural(self.outcome[kind]))


def _some(names: list[str]) -> str:
    return ", ".join(names[:SHOWN]) + (", ..." if len(names) > SHOWN else "")


def _plural(outcome: str) -> str:
    return outcome.removeprefix("it ")


@dataclass
class Start:
    """What the checks found and the scoring stage shares: the rows, the videos to score, the
    scores so far, and the one lock that every write and the hard stop take."""

    videos_dir: Path
    out: Path
    names: list[str]  # the submission's rows, in order
    todo: list[tuple[str, Path]]  # (row name, file) of the videos to score
    scores: dict[str, float]  # done: resumed, or the prior for a video that cannot be read
    checkpoints: list[Path]  # files, folders expanded
    prior: float
    clip: tuple[float, float]
    started: float  # time.monotonic() the time limit counts from
    keep: bool  # out is a complete submission of these rows: replaced only once this run has a score
    resumed: int = 0
    match: bool = False  # --match-prior: the modelled scores are shifted together to mean `prior` when written
    modelled: set[str] = field(default_factory=set)  # rows whose score came from the models (not the prior)
    processed: int = 0  # videos this run finished (scored, or the prior after a problem)
    problems: Problems = field(default_factory=Problems)
    lock: threading.RLock = field(default_factory=threading.RLock)
    finished: threading.Event = field(default_factory=threading.Event)

    def has_result(self) -> bool:
        return bool(self.resumed or self.processed)

    def write(self) -> bool:
        """Rewrite the CSV (atomically, under the lock), unless it is an earlier complete one and
        this run has no score yet; whether the file was written."""
        with self.lock:
            if self.keep and not self.has_result():
                return False
            write_submission(self.out, self.submitted(), self.names, self.prior)
            return True

    def submitted(self) -> dict[str, float]:
        """The rows as written: with --match-prior and MATCH_MIN modelled videos or more, their
        scores shifted together to mean `prior` (scores/matching.py); the rest as they are."""
        rows = self._matched_rows()
        if not self.match or len(rows) < MATCH_MIN:
            return self.scores
        # scipy, imported only here: once the first CSV is on disk
        from ..scores.matching import match_prior

        matched = match_prior([self.scores[name] for name in rows], self.prior, self.clip)
        return {**self.scores, **dict(zip(rows, map(float, matched)))}

    def _matched_rows(self) -> list[str]:
        """The rows --match-prior shifts: those the models scored, in submission order."""
        return [name for name in self.names if name in self.modelled]

    def left(self) -> int:
        """Rows without a score of this run (they hold the prior)."""
        return sum(name not in self.scores for name in self.names)

    def finish(self) -> None:
        """The last write, then the summary lines of the run."""
        self.write()
        self.problems.summary()
        self.closing_lines()
        if self.match:
            n = len(self._matched_rows())
            if n < MATCH_MIN:
                log.warning("--match-prior: only %d videos scored by the models (%d needed): not matched", n, MATCH_MIN)
            else:
                log.info("--match-prior: the %d videos scored by the models shifted together to mean P(FAKE) %.2f",
                         n, self.prior)

    def closing_lines(self) -> None:
        """The warning that ends a run cut short by its time limit."""
        left = self.left()
        if left and not self.has_result() and self.keep:
            log.warning("time limit reached before any video was scored: %s is left as it was", self.out)
        elif left:
            log.warning("time limit reached: %d videos not scored get the prior %.2f", left, self.prior)

    def stop_at(self, limit: float) -> threading.Thread:
        """A hard stop for a command-line run: at EARLY seconds before the limit, whatever the main
        thread is doing (loading models, decoding), the process ends with exit status 0. The CSV on
        disk is complete at every moment; the lock makes sure no write is cut short."""
        deadline = self.started + limit - min(EARLY, limit / 4)

        def watch() -> None:
            if self.finished.wait(max(0.0, deadline - time.monotonic())):
                return
            with self.lock:
                if self.finished.is_set():
                    return
                self.problems.summary()
                self.closing_lines()
                print(f"predict: {len(self.names)} rows -> {self.out}")
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(0)

        thread = threading.Thread(target=watch, name="dfdc-time-limit", daemon=True)
        thread.start()
        return thread


def load_reports(report_dir: Path) -> tuple[dict[str, float], set[str]]:
    """Scores of the videos a previous run finished (for --resume), and which of them the models
    scored (the rest got the prior). Reports hold the scores before any --match-prior shift."""
    done, modelled = {}, set()
    for path in sorted(report_dir.glob("*.json")):
        try:
            data = json.loads(path.read_text())
            done[data["video"]] = float(data["label"])
            if data.get("status") in MODELLED:
                modelled.add(data["video"])
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("%s: unreadable report, the video will be scored again", path)
    return done, modelled


def write_json(path: Path, data: dict, lock: threading.RLock | None = None) -> None:
    """A report file, atomically (under the run's lock: the hard stop never leaves a temp file)."""
    with lock or threading.RLock(), atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def checkpoint_files(paths: list[str | Path]) -> list[Path]:
    """The checkpoint files named: a file as it is, a folder as its *.pt files in name order (the fold
    models `dfdc cv` writes form an ensemble this way). A folder without any is the user's mistake."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(path.glob("*.pt"))
            if not found:
                raise DfdcError("no .pt checkpoints in this folder", path)
            files += found
        else:
            files.append(path)
    return files


def checkpoint_paths(paths: list[Path]) -> list[Path]:
    """The checkpoint files, each checked without torch: a readable regular file that starts like a
    torch file (a zip archive with its index, or a pickle). The full check (format, checksum) comes
    when it is loaded."""
    files = checkpoint_files(paths)
    for path in files:
        problem = file_problem(path)
        if problem:
            raise DfdcError(f"checkpoint: {problem[1]}", path)
        with open(path, "rb") as f:
            head = f.read(4)
        if head[:2] == b"PK":
            try:
                with zipfile.ZipFile(path) as z:
                    z.infolist()
            except (zipfile.BadZipFile, OSError, EOFError):
                raise DfdcError("checkpoint: a damaged torch file (a cut-short or broken zip archive)", path) from None
        elif head[:1] != b"\x80":
            raise DfdcError("checkpoint: not a torch file (neither a zip archive nor a pickle)", path)
    return files


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_out(out: Path, sample_submission: Path | None = None) -> None:
    """A one-line DfdcError unless the CSV can be written at `out` without destroying anything but
    an earlier submission: not a folder, not a device, not the sample submission, not another
    kind of file, and its folder writable (tried with a probe file, which root's permissions and
    read-only file systems make the only sure test)."""
    out = Path(out)
    if out.is_dir():
        raise DfdcError("--out is a folder; give the CSV file's path, e.g. submission/submission.csv", out)
    if out.exists() and not out.is_file():
        raise DfdcError("--out is not a regular file (a device, pipe or socket)", out)
    if sample_submission is not None and _same_file(out, Path(sample_submission)):
        raise DfdcError("--out is the sample submission; writing there would destroy it", out)
    if out.is_file() and out.stat().st_size > 0:
        try:
            with open(out, encoding="utf-8", errors="replace") as f:
                first = f.readline().strip()
        except OSError as e:
            raise DfdcError(f"--out cannot be read ({e.strerror})", out) from None
        if first.replace('"', "") != ",".join(HEADER):
            raise DfdcError(f"--out exists and is not a submission CSV (its first line is not "
                            f"{','.join(HEADER)!r}); not overwriting it", out)
    problem = _unwritable(out.parent)
    if problem:
        raise DfdcError(f"--out cannot be written in {out.parent} ({problem})", out)


def _unwritable(folder: Path) -> str | None:
    """Why files cannot be made in `folder` (made if missing), or None: tried with a probe file,
    which root's permissions and read-only file systems make the only sure test."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".{uuid.uuid4().hex}.probe"
        probe.open("x").close()
        probe.unlink()
    except OSError as e:
        return e.strerror or type(e).__name__
    return None


def _report_folder(report_dir: Path) -> None:
    problem = _unwritable(report_dir)
    if problem:
        raise DfdcError(f"--report folder cannot be written ({problem})", report_dir)


def start_predict(videos_dir: Path, checkpoints: list[Path], out: Path, *,
                  sample_submission: Path | None = None, report_dir: Path | None = None,
                  resume: bool = False, prior: float = PRIOR, clip: tuple[float, float] | None = None,
                  batch_size: int | None = None, workers: int = 2, frames: int | None = None,
                  ensemble_weights: list[float] | None = None, detect_every: int = DETECT_EVERY,
                  started: float | None = None, match: bool = False) -> Start:
    """Check everything that needs no model, then write the first CSV: the prior for every video
    not yet scored (unless `out` already holds a complete submission of these videos: it is kept
    until this run has a score). A user mistake raises a one-line DfdcError before any write."""
    started = time.monotonic() if started is None else started
    videos_dir, out = Path(videos_dir), Path(out)
    lo, hi = clip or CLIP
    if not 0 <= lo < hi <= 1:
        raise DfdcError(f"--clip {lo} {hi}: need 0 <= LO < HI <= 1")
    if not 0 <= prior <= 1:
        raise DfdcError(f"--prior {prior}: need a probability in [0, 1]")
    if match and not 0 < prior < 1:
        raise DfdcError(f"--match-prior --prior {prior}: a test set's FAKE fraction to match must lie strictly "
                        f"between 0 and 1")
    if (batch_size is not None and batch_size < 1) or workers < 1:
        raise DfdcError(f"--batch-size and --workers must be at least 1, not {batch_size} and {workers}")
    if (frames is not None and frames < 1) or detect_every < 1:
        raise DfdcError(f"--frames and --detect-every must be at least 1, not {frames} and {detect_every}")
    if resume and report_dir is None:
        raise DfdcError("--resume needs --report DIR (the reports of the run to continue)")
    check_out(out, sample_submission)
    files = checkpoint_paths(checkpoints)
    if ensemble_weights is not None and len(ensemble_weights) != len(files):
        raise DfdcError(f"{len(ensemble_weights)} ensemble weights for {len(files)} checkpoints")
    names = submission_names(videos_dir, sample_submission)
    if report_dir is not None:
        if report_dir.exists() and not report_dir.is_dir():
            raise DfdcError("--report is a file, not a folder", report_dir)
        _report_folder(report_dir)

    listed = set(names)
    done, modelled = load_reports(report_dir) if resume else ({}, set())
    scores = {k: v for k, v in done.items() if k in listed}
    resumed = len(scores)
    found = listed_videos(videos_dir, names) if videos_dir.is_dir() else {}
    todo, missing, unreadable = [], [], {}
    for name in names:
        if name in scores:
            continue
        path = found.get(name)
        problem = ("", "") if path is None else file_problem(path)
        if path is None:
            missing.append((name, f"{videos_dir / name}: {MISSING}"))
        elif problem:
            unreadable.setdefault(problem[0], []).append((name, f"{path}: {problem[1]}"))
        else:
            todo.append((name, path))
    for name, _ in missing + [p for group in unreadable.values() for p in group]:
        scores[name] = prior
    keep = out.is_file() and out.stat().st_size > 0 and not submission_problems(out, names)
    start = Start(videos_dir, out, names, todo, scores, files, prior, (lo, hi), started, keep, resumed,
                  match, modelled & listed)
    start.write()  # valid from the first second

    outcome = f"it gets the prior {prior:.2f}"
    start.problems.add_all(MISSING, missing, outcome, f" {videos_dir}")
    for kind, group in unreadable.items():
        start.problems.add_all(kind, group, outcome)
    if keep and not start.has_result():
        log.debug("%s is a complete submission of these videos: it is replaced once this run has a score", out)
    return start


@contextmanager
def libraries_to(path: Path | None) -> Iterator[None]:
    """Send what C libraries print on the process's stderr (libav, OpenCV, torch's C++ warnings)
    to `path` (os.devnull when None), while Python's own lines (dfdc's log, errors, tqdm) still
    reach the screen: fd 2 is pointed at the file and sys.stderr at a copy of the old fd 2.
    Does nothing where sys.stderr is not the process's fd 2 (a test capturing it)."""
    try:
        real = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        real = False
    if not real:
        yield
        return
    old = sys.stderr
    old.flush()
    screen = os.dup(2)
    target = os.open(path or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(target, 2)
    os.close(target)
    new = open(screen, "w", buffering=1, encoding=old.encoding, errors="backslashreplace")  # noqa: SIM115
    handlers = [h for h in logging.getLogger("dfdc").handlers + logging.getLogger().handlers
                if isinstance(h, logging.StreamHandler) and h.stream is old]
    sys.stderr = new
    for h in handlers:
        h.setStream(new)
    try:
        yield
    finally:
        new.flush()
        os.dup2(screen, 2)
        sys.stderr = old
        for h in handlers:
            h.setStream(old)
        new.close()
