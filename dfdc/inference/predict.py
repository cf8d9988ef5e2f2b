"""`dfdc predict`: test videos -> calibrated P(FAKE) per video -> an always-valid submission.csv.

Stages: start.py checks the input and writes the first CSV before anything heavy is imported;
then worker threads decode, detect and crop upcoming videos while the main thread runs the
models on the crops of every video that is ready (batched across videos). The CSV is rewritten
atomically after each batch, with the prior for videos not yet scored, so a kill at any moment
leaves a complete file; the per-video reports let `--resume` skip what is done.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ..defaults import DETECT_EVERY, DETECTOR, PRIOR
from ..device import (
    keep_freed_memory,
    pick_device,
    scoring_batch,
    thread_share,
    torch_threads,
)
from ..errors import DfdcError, problem_kind, problem_line
from ..faces.detector import Detector, create_detector
from ..faces.find import Faces, crop_tracks, track_faces
from ..scores.aggregation import get_aggregation, video_score
from ..video.read import FrameBuffer, read_video
from .ensemble import Member, ensemble, load_members, score_tracks, warm_up
from .governor import Governor, plans
from .start import MODELLED, Start, load_reports, start_predict, write_json

__all__ = ["load_reports", "prepare", "run_predict"]

log = logging.getLogger("dfdc")
MIN_FRAMES = 2  # a "video" of one frame is not a DFDC video: it gets the prior
PARTIAL = "it is scored from the frames that decode"


@dataclass
class Prepared:
    """A video after the CPU stages: its faces and, per (size, margin), the crops of each track."""

    name: str  # the submission's row (the file's name may differ in the case of its suffix)
    frames: int
    path: Path | None = None
    faces: Faces | None = None
    crops: dict[tuple[int, float], list[np.ndarray]] = field(default_factory=dict)
    error: str | None = None
    kind: str | None = None  # the problem's name, shared by videos with the same one
    warning: str | None = None  # decoded in part ("decoded 4 of 8 sampled frames, ..."): scored from what decodes
    decoded: dict | None = None  # what decoded, for the report
    detail: str | None = None  # what a library said, for the report only
    seconds: dict[str, float] = field(default_factory=dict)  # per stage: decode, detect, crop, model


def prepare(path: Path, frames: int, detector: Detector, crop_keys: set[tuple[int, float]],
            detect_every: int, name: str | None = None, threads: int = 0,
            buffer: FrameBuffer | None = None) -> Prepared:
    """Decode (with `threads` decoder threads, 0: one per core; into `buffer`, reused video after
    video), find the faces and cut the crops every member needs; errors become a message."""
    tick = time.monotonic()
    item = Prepared(name or path.name, frames, path)

    def lap(stage: str) -> None:
        nonlocal tick
        now = time.monotonic()
        item.seconds[stage] = round(now - tick, 3)
        tick = now

    try:
        video = read_video(path, frames, threads=threads, buffer=buffer)
        lap("decode")
        fps = video.fps or 30.0
        item.decoded = {"frames": len(video.indices), "sampled": video.sampled, "complete": not video.partial,
                        "up_to_s": round((video.last + 1) / fps, 2), "duration_s": round(video.total / fps, 2)}
        if video.partial:
            item.detail = video.stopped
        if len(video.indices) < MIN_FRAMES:
            if video.partial:
                raise DfdcError(f"only {len(video.indices)} of {video.sampled} sampled frames decodable "
                                f"({video.decoded()})", path, kind="too few frames decodable")
            raise DfdcError(f"only {len(video.indices)} frame in the video: not a video to score", path,
                            kind="a single frame")
        if video.partial:
            item.warning = video.decoded()
        tracks = track_faces(video, detector, detect_every)
        lap("detect")
        item.crops = {key: crop_tracks(video, tracks, *key) for key in crop_keys}
        lap("crop")
        video.frames = np.empty((0, *video.frames.shape[1:]), np.uint8)  # the crops are all the models need
        # (and the buffer's memory is the next video's)
        item.faces = Faces(video, tracks, [], tracks.dropped)
    except Exception as e:  # a bad video never stops the batch
        item.error, item.kind = problem_line(path, e), problem_kind(e)
        item.detail = getattr(e, "detail", None) or item.detail or (None if isinstance(e, DfdcError) else repr(e))
    return item


class Prefetcher:
    """Daemon threads that prepare videos ahead of the models (daemons: a stop never waits on them)."""

    def __init__(self, todo: list[tuple[str, Path]], workers: int, governor: Governor, job) -> None:
        self.todo: queue.Queue[tuple[str, Path]] = queue.Queue()
        for p in todo:
            self.todo.put(p)
        self.ready: queue.Queue[Prepared] = queue.Queue(maxsize=max(2, 2 * workers))
        self.stopped = threading.Event()
        for _ in range(max(1, workers)):
            threading.Thread(target=self._work, args=(governor, job), daemon=True).start()

    def _work(self, governor: Governor, job) -> None:
        buffer = FrameBuffer()  # this thread's: its video's frames are done with before it reads the next
        while not self.stopped.is_set():
            try:
                name, path = self.todo.get_nowait()
            except queue.Empty:
                return
            item = job(name, path, governor.plan.frames, buffer)
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
            counts = [sum(len(c) for c in video) for video in crops]
            tick = time.monotonic()
            per_member.append(score_tracks(m, crops, self.batch_size, self.device))
            if sum(counts):
                per_crop = (time.monotonic() - tick) / sum(counts)
                self.cost[m.name] = 0.5 * self.cost[m.name] + 0.5 * per_crop
                for item, n in zip(batch, counts):  # the batch's time, shared by crops
                    item.seconds["model"] = round(item.seconds.get("model", 0.0) + n * per_crop, 3)
        out = []
        for i, item in enumerate(batch):
            probs = [pm[i] for pm in per_member]
            raw = [video_score(p, self.aggregation or m.config.aggregation) for m, p in zip(active, probs)]
            score, uncalibrated = ensemble(active, raw), ensemble(active, raw, calibrated=False)
            status = "failed" if item.error else "no_face" if score is None else "partial" if item.warning else "ok"
            label, raw_label = (self.prior, self.prior) if score is None else \
                (float(np.clip(score, *self.clip)), float(np.clip(uncalibrated, *self.clip)))
            out.append(Scored(label, raw_label, status, probs, raw))
        return out


def _problem(item: Prepared, result: Scored) -> tuple[str, str, str] | None:
    """(kind, row name, line) of the one warning a video gets, or None when all went well."""
    if item.error:
        return item.kind or "failed", item.name, item.error
    note = f" ({item.warning})" if item.warning else ""
    if result.status == "no_face":
        return "no face found", item.name, f"{item.path}: no face found{note}"
    if item.warning:
        return "decoded in part", item.name, f"{item.path}: {item.warning}"
    return None


def _report(item: Prepared, members: list[Member], result: Scored, level: int) -> dict:
    """The per-video JSON: tracks, per-frame probabilities, which frames looked fake, time."""
    report = {"video": item.name, "label": result.label, "raw_label": result.raw_label, "status": result.status,
              "frames": item.frames, "plan_level": level, "seconds": item.seconds,
              "error": item.error, "problem": item.kind, "decoded": item.decoded,
              "warning": _problem(item, result)[2] if item.warning else None,
              "library_detail": item.detail}
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


def run_predict(videos_dir: Path, checkpoints: list[Path], out: Path, *,
                sample_submission: Path | None = None, time_limit: float | None = None,
                frames: int | None = None, batch_size: int | None = None, device: str = "auto",
                workers: int = 2, report_dir: Path | None = None, resume: bool = False,
                prior: float = PRIOR, clip: tuple[float, float] | None = None,
                aggregation: str | None = None, ensemble_weights: list[float] | None = None,
                weights: Path | None = None, detect_every: int = DETECT_EVERY, detector: str = DETECTOR,
                started: float | None = None, start: Start | None = None, match: bool = False) -> dict[str, float]:
    """Score every video of the folder and write the submission; returns name -> P(FAKE).

    `start` is what start_predict found and wrote (the command line calls it before importing
    this module); without it, start_predict runs here with the same arguments."""
    if start is None:
        start = start_predict(videos_dir, checkpoints, out, sample_submission=sample_submission,
                              report_dir=report_dir, resume=resume, prior=prior, clip=clip,
                              batch_size=batch_size, workers=workers, frames=frames,
                              ensemble_weights=ensemble_weights, detect_every=detect_every, started=started,
                              match=match)
    if aggregation is not None:
        get_aggregation(aggregation)  # an unknown name is a user error before any work
    names, prior, todo = start.names, start.prior, list(start.todo)
    keep_freed_memory()
    try:
        if todo:
            with torch_threads(thread_share(workers)):
                _score(start, todo, time_limit, frames, batch_size, device, workers, report_dir, aggregation,
                       ensemble_weights, weights, detect_every, detector)
    except BaseException:
        start.write()
        raise
    start.finish()
    written = start.submitted()
    return {name: written.get(name, prior) for name in names}


def _score(start: Start, todo: list[tuple[str, Path]], time_limit: float | None, frames: int | None,
           batch_size: int | None, device: str, workers: int, report_dir: Path | None, aggregation: str | None,
           ensemble_weights: list[float] | None, weights: Path | None, detect_every: int, detector: str) -> None:
    """The models' loop: load, then score the batches that fit in the time left."""
    scores, prior = start.scores, start.prior
    dev = pick_device(device)
    batch_size = batch_size or scoring_batch(dev)
    members = load_members(start.checkpoints, ensemble_weights, dev, matched=start.match)
    full_frames = frames or max(m.config.frames for m in members)
    governor = Governor(time_limit, start.started, len(todo), plans(full_frames, len(members)))
    if governor.should_stop():  # the limit passed while loading: nothing more fits
        return
    find = create_detector(detector, weights, dev)
    crop_keys = {(m.config.input_size, m.config.margin) for m in members}
    threads = thread_share(workers)  # the workers decode side by side: the cores shared out, as torch's threads
    job = lambda name, path, n, buffer: prepare(path, n, find, crop_keys, detect_every, name, threads,  # noqa: E731
                                                buffer)
    fetch = Prefetcher(todo, workers, governor, job)
    scorer = BatchScorer(members, dev, batch_size, aggregation, start.clip, prior)
    outcome = f"it gets the prior {prior:.2f}"

    with logging_redirect_tqdm(loggers=[log]), tqdm(total=len(todo), desc="predict", unit="video") as bar:
        finished = 0
        try:
            while finished < len(todo) and not governor.should_stop():
                batch = fetch.take(min(governor.left(), 5.0), most=max(1, batch_size // full_frames))
                if not batch:
                    continue
                level, active = governor.level, members[:governor.plan.members]
                if scorer.estimate(batch, active) > governor.left():
                    break  # the models would run past the limit: the rest get the prior
                results = scorer(batch, active)
                with start.lock:
                    for item, result in zip(batch, results):
                        scores[item.name] = result.label
                        if result.status in MODELLED:
                            start.modelled.add(item.name)
                        start.processed += 1
                        line = _problem(item, result)
                        if line:
                            start.problems.add(*line, outcome if result.status != "partial" else PARTIAL)
                        if report_dir is not None:
                            write_json(report_dir / f"{Path(item.name).stem}.json",
                                       _report(item, active, result, level), start.lock)
                    start.write()
                finished += len(batch)
                governor.record(len(batch))
                bar.update(len(batch))
                rate = governor.seconds_per_video()
                bar.set_postfix(plan=f"{governor.plan.frames}f/{governor.plan.members}m",
                                s_per_video=f"{rate:.2f}" if rate else "-")
        finally:
            fetch.stopped.set()
