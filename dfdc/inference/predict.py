"""`dfdc predict`: test videos -> calibrated P(FAKE) per video -> an always-valid submission.csv.

Stages: worker threads decode, detect and crop upcoming videos while the main thread runs the
models on the crops of every video that is ready (batched across videos). The CSV is rewritten
atomically after each batch, with the prior for videos not yet scored, so a kill at any moment
leaves a complete file; the per-video reports let `--resume` skip what is done.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ..atomic import atomic_path
from ..defaults import CLIP, DETECTOR, PRIOR
from ..device import pick_device
from ..errors import DfdcError, problem_line
from ..faces.detector import Detector, create_detector
from ..faces.find import Faces, crop_tracks, track_faces
from ..scores.aggregation import get_aggregation, video_score
from ..video.read import read_video
from .ensemble import Member, ensemble, load_members, score_tracks, warm_up
from .governor import Governor, plans
from .submission import submission_names, write_submission

log = logging.getLogger("dfdc")
MIN_FRAMES = 2  # a "video" of one frame is not a DFDC video: it gets the prior


@dataclass
class Prepared:
    """A video after the CPU stages: its faces and, per (size, margin), the crops of each track."""

    name: str
    frames: int
    faces: Faces | None = None
    crops: dict[tuple[int, float], list[np.ndarray]] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


def prepare(path: Path, frames: int, detector: Detector, crop_keys: set[tuple[int, float]],
            detect_every: int) -> Prepared:
    """Decode, find the faces and cut the crops every member needs; errors become a message."""
    start = time.monotonic()
    item = Prepared(path.name, frames)
    try:
        video = read_video(path, frames)
        if len(video.indices) < MIN_FRAMES:
            raise DfdcError(f"only {len(video.indices)} decodable frame(s)", path)
        tracks = track_faces(video, detector, detect_every)
        item.crops = {key: crop_tracks(video, tracks, *key) for key in crop_keys}
        video.frames = np.empty((0, *video.frames.shape[1:]), np.uint8)  # the crops are all the models need
        item.faces = Faces(video, tracks, [])
    except Exception as e:  # a bad video never stops the batch
        item.error = problem_line(path, e)
    item.seconds = time.monotonic() - start
    return item


class Prefetcher:
    """Daemon threads that prepare videos ahead of the models (daemons: a stop never waits on them)."""

    def __init__(self, paths: list[Path], workers: int, governor: Governor, job) -> None:
        self.todo: queue.Queue[Path] = queue.Queue()
        for p in paths:
            self.todo.put(p)
        self.ready: queue.Queue[Prepared] = queue.Queue(maxsize=max(2, 2 * workers))
        self.stopped = threading.Event()
        for _ in range(max(1, workers)):
            threading.Thread(target=self._work, args=(governor, job), daemon=True).start()

    def _work(self, governor: Governor, job) -> None:
        while not self.stopped.is_set():
            try:
                path = self.todo.get_nowait()
            except queue.Empty:
                return
            item = job(path, governor.plan.frames)
            while not self.stopped.is_set():
                try:
                    self.ready.put(item, timeout=0.2)
                    break
                except queue.Full:
                    continue

    def take(self, timeout: float, most: int) -> list[Prepared]:
        """The next ready video (waiting up to timeout), plus any others already ready."""
        try:
            items = [self.ready.get(timeout=max(0.01, timeout))]
        except queue.Empty:
            return []
        while len(items) < most:
            try:
                items.append(self.ready.get_nowait())
            except queue.Empty:
                break
        return items


@dataclass
class Scored:
    """A video's result: the submitted label, the same without calibration, and what led to them."""

    label: float
    raw_label: float  # the ensemble of uncalibrated scores, clipped alike (for `dfdc evaluate`)
    status: str  # ok, no_face or failed
    probs: list[list[np.ndarray]]  # per member, per track: P(FAKE) per crop or clip
    raw: list[float | None]  # per member: its video score before calibration


class BatchScorer:
    """The models' side: scores batches of prepared videos, and learns its seconds per crop so
    the time governor never starts a batch that would end past the limit."""

    def __init__(self, members: list[Member], device, batch_size: int, aggregation: str | None,
                 clip: tuple[float, float], prior: float) -> None:
        self.members, self.device, self.batch_size = members, device, batch_size
        self.aggregation, self.clip, self.prior = aggregation, clip, prior
        self.cost = {m.name: warm_up(m, device) for m in members}  # seconds per crop

    @staticmethod
    def _crops(batch: list[Prepared], m: Member) -> list[list[np.ndarray]]:
        return [it.crops.get((m.config.input_size, m.config.margin), []) for it in batch]

    def estimate(self, batch: list[Prepared], active: list[Member]) -> float:
        """Seconds the active members would take on this batch."""
        return sum(sum(len(c) for video in self._crops(batch, m) for c in video) * self.cost[m.name] for m in active)

    def __call__(self, batch: list[Prepared], active: list[Member]) -> list[Scored]:
        """Each video's scores, from the active members."""
        per_member = []
        for m in active:
            crops = self._crops(batch, m)
            n = sum(len(c) for video in crops for c in video)
            tick = time.monotonic()
            per_member.append(score_tracks(m, crops, self.batch_size, self.device))
            if n:
                self.cost[m.name] = 0.5 * self.cost[m.name] + 0.5 * (time.monotonic() - tick) / n
        out = []
        for i, item in enumerate(batch):
            probs = [pm[i] for pm in per_member]
            raw = [video_score(p, self.aggregation or m.config.aggregation) for m, p in zip(active, probs)]
            score, uncalibrated = ensemble(active, raw), ensemble(active, raw, calibrated=False)
            status = "failed" if item.error else "no_face" if score is None else "ok"
            label, raw_label = (self.prior, self.prior) if score is None else \
                (float(np.clip(score, *self.clip)), float(np.clip(uncalibrated, *self.clip)))
            out.append(Scored(label, raw_label, status, probs, raw))
        return out


def _report(item: Prepared, members: list[Member], result: Scored, level: int) -> dict:
    """The per-video JSON: tracks, per-frame probabilities, which frames looked fake, time."""
    report = {"video": item.name, "label": result.label, "raw_label": result.raw_label, "status": result.status,
              "frames": item.frames, "plan_level": level, "seconds_prepare": round(item.seconds, 3),
              "error": item.error}
    if item.faces is not None:
        report.update(item.faces.to_dict())
        for t, track in zip(report["tracks"], item.faces.tracks):
            t["fake_frames"] = {}
        report["members"] = []
        for m, probs, r in zip(members, result.probs, result.raw):
            report["members"].append({"checkpoint": m.name, "kind": m.kind, "raw_score": r,
                                      "calibrated": None if r is None else m.calibrate(r),
                                      "track_probabilities": [np.round(p, 4).tolist() for p in probs]})
            if m.kind == "frame":
                for t, track, p in zip(report["tracks"], item.faces.tracks, probs):
                    t["fake_frames"][m.name] = [i for i, q in zip(track.indices, p) if q > 0.5]
    return report


def _write_json(path: Path, data: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def load_reports(report_dir: Path) -> dict[str, float]:
    """Scores of the videos a previous run finished (for --resume)."""
    done = {}
    for path in sorted(report_dir.glob("*.json")):
        try:
            data = json.loads(path.read_text())
            done[data["video"]] = float(data["label"])
        except (ValueError, KeyError, TypeError):
            log.warning("%s: unreadable report, the video will be scored again", path)
    return done


def run_predict(videos_dir: Path, checkpoints: list[Path], out: Path, *,
                sample_submission: Path | None = None, time_limit: float | None = None,
                frames: int | None = None, batch_size: int = 64, device: str = "auto",
                workers: int = 2, report_dir: Path | None = None, resume: bool = False,
                prior: float = PRIOR, clip: tuple[float, float] | None = None,
                aggregation: str | None = None, ensemble_weights: list[float] | None = None,
                weights: Path | None = None, detect_every: int = 1, detector: str = DETECTOR,
                started: float | None = None) -> dict[str, float]:
    """Score every video of the folder and write the submission; returns name -> P(FAKE)."""
    started = time.monotonic() if started is None else started
    lo, hi = clip or CLIP
    if not 0 <= lo < hi <= 1:
        raise DfdcError(f"--clip {lo} {hi}: need 0 <= LO < HI <= 1")
    if batch_size < 1 or workers < 1:
        raise DfdcError(f"--batch-size and --workers must be at least 1, not {batch_size} and {workers}")
    names = submission_names(videos_dir, sample_submission)
    if aggregation is not None:
        get_aggregation(aggregation)  # an unknown name is a user error before any work
    if resume and report_dir is None:
        raise DfdcError("--resume needs --report DIR (the reports of the run to continue)")
    scores: dict[str, float] = load_reports(report_dir) if resume and report_dir.is_dir() else {}
    listed = set(names)
    scores = {k: v for k, v in scores.items() if k in listed}
    write_submission(out, scores, names, prior)  # valid from the first second
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)

    todo = []
    for name in names:
        if name in scores:
            continue
        if not (videos_dir / name).is_file():
            log.warning("%s: listed but not in the folder; it gets the prior %.2f", videos_dir / name, prior)
            scores[name] = prior
        else:
            todo.append(videos_dir / name)

    dev = pick_device(device)
    members = load_members(checkpoints, ensemble_weights, dev)
    full_frames = frames or max(m.config.frames for m in members)
    governor = Governor(time_limit, started, len(todo), plans(full_frames, len(members)))
    if governor.should_stop():  # the limit passed while loading: nothing more fits
        todo = []
    find = create_detector(detector, weights, dev)
    crop_keys = {(m.config.input_size, m.config.margin) for m in members}
    job = lambda path, n: prepare(path, n, find, crop_keys, detect_every)  # noqa: E731
    fetch = Prefetcher(todo, workers, governor, job)
    scorer = BatchScorer(members, dev, batch_size, aggregation, (lo, hi), prior) if todo else None

    with logging_redirect_tqdm(loggers=[log]), tqdm(total=len(todo), desc="predict", unit="video",
                                                     disable=not todo) as bar:
        finished = 0
        try:
            while finished < len(todo) and not governor.should_stop():
                batch = fetch.take(min(governor.left(), 5.0), most=max(1, batch_size // full_frames))
                if not batch:
                    continue
                level, active = governor.level, members[:governor.plan.members]
                if scorer.estimate(batch, active) > governor.left():
                    break  # the models would run past the limit: the rest get the prior
                for item, result in zip(batch, scorer(batch, active)):
                    scores[item.name] = result.label
                    if result.status != "ok":
                        problem = item.error or f"{videos_dir / item.name}: no face found"
                        log.warning("%s; it gets the prior %.2f", problem, prior)
                    if report_dir is not None:
                        _write_json(report_dir / f"{Path(item.name).stem}.json", _report(item, active, result, level))
                finished += len(batch)
                governor.record(len(batch))
                write_submission(out, scores, names, prior)
                bar.update(len(batch))
                rate = governor.seconds_per_video()
                bar.set_postfix(plan=f"{governor.plan.frames}f/{governor.plan.members}m",
                                s_per_video=f"{rate:.2f}" if rate else "-")
        finally:
            fetch.stopped.set()
            write_submission(out, scores, names, prior)
    left = sum(name not in scores for name in names)
    if left:
        log.warning("time limit reached: %d videos not scored get the prior %.2f", left, prior)
    return {name: scores.get(name, prior) for name in names}
