"""`dfdc extract`: decode and detect once, into a face cache that training reads many times.

Layout of the cache (every file a person can open):

    CACHE/settings.json           frames, size, margin, ... the cache was built with
    CACHE/index.csv               one row per finished video (INDEX_COLUMNS), rebuilt each run
    CACHE/videos/<name>/          one folder per finished video, as `dfdc faces` writes it:
        crops/t<track>_f<frame>.png   track 0 is the main person, the others are flagged by number
        faces.json                    sampled frame indices, and per track its frames, boxes, scores
        contact_sheet.png
        entry.json                    label, original, cluster, part, status, n_faces, ...

A fake is cropped at the boxes found on its ORIGINAL, at the original's sampled frames (the 1st
place's method: the fake's pixels where the real face is), so each cluster runs original first.
A video's folder is written under CACHE/tmp and renamed into videos/ when complete, so a kill
never leaves half an entry; a later run skips every finished video (failed ones are retried).
One run writes to a cache at a time: shards (`--shard K/N`) run on N machines into their own
caches, and merge_caches gathers them.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import re
import shutil
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ..atomic import atomic_path
from ..defaults import CACHE_FRAMES, CROP_MARGIN, CROP_SIZE, DETECTOR, SAMPLING
from ..device import thread_share
from ..errors import DfdcError, problem_line
from ..faces.detector import Detector, create_detector, detector_files
from ..faces.export import write_faces
from ..faces.find import Faces, crop_tracks, find_faces
from ..faces.tracks import Track
from ..metadata import read_metadata
from ..video.read import read_video, same_rate
from ..video.sampling import get_sampling

log = logging.getLogger("dfdc")

INDEX_COLUMNS = ["video", "label", "original", "cluster", "part", "folder", "n_faces", "n_tracks", "status",
                 "boxes_from", "error"]
FINAL = ("done", "dropped")  # statuses a later run skips; "failed" is tried again


@dataclass(frozen=True)
class Settings:
    """What shapes the cache: a resumed run must use the same, or crops would not match."""

    frames: int = CACHE_FRAMES
    size: int = CROP_SIZE
    margin: float = CROP_MARGIN
    min_faces: int = 10
    sampling: str = SAMPLING
    seed: int = 0
    detector: str = DETECTOR

    def check(self) -> None:
        problems = [
            (self.frames < 1, f"--frames must be at least 1, not {self.frames}"),
            (self.size < 16, f"--size must be at least 16 px, not {self.size}"),
            (self.margin < 0, f"--margin must be >= 0, not {self.margin}"),
            (not 0 <= self.min_faces <= self.frames,
             f"--min-faces must be within 0..--frames ({self.frames}), not {self.min_faces}"),
        ]
        for bad, message in problems:
            if bad:
                raise DfdcError(message)
        get_sampling(self.sampling)


def parse_shard(spec: str) -> tuple[int, int]:
    """'K/N' -> (K, N), 1 <= K <= N: this machine's share of N."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
    if m is None or not 1 <= int(m[1]) <= int(m[2]):
        raise DfdcError(f"bad shard {spec!r}: expected K/N with 1 <= K <= N, e.g. 2/4")
    return int(m[1]), int(m[2])


def select_shard(table: pd.DataFrame, shard: str | None) -> pd.DataFrame:
    """The rows of shard K/N: whole clusters by a stable hash, so a fake goes with its original
    and every machine, whatever it has seen, agrees on who does what."""
    if shard is None:
        return table
    k, n = parse_shard(shard)
    hashed = table["cluster"].map(lambda c: zlib.crc32(str(c).encode()) % n + 1)
    return table[hashed == k]


def run_extract(data_root: str | Path, out: str | Path, parts: str | None = None, frames: int = CACHE_FRAMES,
                size: int = CROP_SIZE, margin: float = CROP_MARGIN, workers: int = 1, shard: str | None = None,
                min_faces: int = 10, weights: str | Path | None = None, sampling: str = SAMPLING,
                seed: int = 0, detector: str = DETECTOR) -> dict:
    """Fill the cache at `out` with the faces of the labelled videos under `data_root`.

    Returns (and prints) the summary: videos, done, skipped, dropped, failed, fake_boxes (how many fakes
    were not cropped at their original's boxes as they are, by reason) and the metadata problems. A bad video is counted and never stops the others.
    """
    settings = Settings(frames, size, margin, min_faces, sampling, seed, detector)
    settings.check()
    if workers < 1:
        raise DfdcError(f"--workers must be at least 1, not {workers}")
    if shard is not None:
        parse_shard(shard)
    detector_files(detector, weights)  # wrong weights fail now, in one line, not once per video
    out = Path(out)
    table = read_metadata(data_root, parts)  # before the cache exists: bad data leaves no folder behind
    _claim(out, settings)
    problems = table.attrs.get("problems", {})
    table = select_shard(table, shard)
    table = table.astype(object).where(table.notna(), None)  # JSON-ready: None, not NaN
    clusters = [g.to_dict("records") for _, g in table.groupby("cluster", sort=True)]

    counts: Counter[str] = Counter()
    with logging_redirect_tqdm(), tqdm(total=len(table), desc="extract", unit="video", smoothing=0.05) as bar:
        for results in _map_clusters(clusters, out, settings, weights, workers):
            for result in results:
                counts[result["status"]] += 1
                if result["status"] != "skipped" and result["label"] == "FAKE" and result["boxes_from"] != "original":
                    counts[f"boxes: {result['boxes_from']}"] += 1
                if result["status"] == "failed":
                    log.warning("%s", result["error"])
            bar.set_postfix({k: counts[k] for k in ("done", "skipped", "dropped", "failed")}, refresh=False)
            bar.update(len(results))
    _finish(out)
    summary = {"videos": len(table), **{k: counts[k] for k in ("done", "skipped", "dropped", "failed")},
               "fake_boxes": {k.removeprefix("boxes: "): n for k, n in sorted(counts.items()) if k.startswith("boxes: ")},
               "problems": dict(problems)}
    print(format_summary(summary, out))
    return summary


def format_summary(summary: dict, out: Path) -> str:
    """One line a person reads at the end of a run."""
    line = (f"extract: {summary['videos']} videos: {summary['done']} done, {summary['skipped']} skipped "
            f"(already in the cache), {summary['dropped']} dropped (< min faces), {summary['failed']} failed")
    if summary["fake_boxes"]:
        line += "; fakes not cropped at their original's boxes as they are: " + ", ".join(
            f"{n} {why}" for why, n in summary["fake_boxes"].items())
    if summary["problems"]:
        line += "; metadata: " + ", ".join(f"{k} {v}" for k, v in summary["problems"].items())
    return f"{line} -> {out}"


def write_index(cache: str | Path) -> pd.DataFrame:
    """Rebuild CACHE/index.csv from the entries present (so shards merged by copying their
    videos/ folders into one cache get one index); returns it."""
    cache = Path(cache)
    rows = []
    for entry in sorted((cache / "videos").glob("*/entry.json")):
        try:
            rows.append(json.loads(entry.read_text()))
        except (OSError, ValueError) as e:
            log.warning("%s: unreadable entry, left out of the index (%s)", entry, e)
    index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    with atomic_path(cache / "index.csv") as tmp:
        index.to_csv(tmp, index=False)
    return index


def _claim(out: Path, settings: Settings) -> None:
    """Create the cache or check it was built with these settings; clear a killed run's leftovers."""
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "settings.json"
    if saved.is_file():
        before = json.loads(saved.read_text())
        if before != asdict(settings):
            diff = ", ".join(f"{k}={before.get(k)}" for k, v in asdict(settings).items() if before.get(k) != v)
            raise DfdcError(f"this cache was built with {diff}; use those or a new --out", out)
    else:
        saved.write_text(json.dumps(asdict(settings), indent=1))
    shutil.rmtree(out / "tmp", ignore_errors=True)
    (out / "tmp").mkdir()
    (out / "videos").mkdir(exist_ok=True)


def _finish(out: Path) -> pd.DataFrame:
    """The index of a run that ended; its staging folder goes with it (a finished cache has no tmp/)."""
    shutil.rmtree(out / "tmp", ignore_errors=True)
    return write_index(out)


def _map_clusters(clusters: list[list[dict]], out: Path, settings: Settings, weights: str | Path | None,
                  workers: int) -> Iterator[list[dict]]:
    """Per cluster, its results: here, or in `workers` processes (each with its own detector)."""
    if workers == 1:
        extractor = Extractor(out, settings, weights)
        yield from map(extractor.cluster, clusters)
        return
    ctx = mp.get_context("spawn")  # torch is not fork-safe once its threads are running
    with ctx.Pool(workers, initializer=_init_worker, initargs=(out, settings, weights, workers)) as pool:
        yield from pool.imap_unordered(_worker_cluster, clusters)


_WORKER: "Extractor | None" = None


def _init_worker(out: Path, settings: Settings, weights: str | Path | None, workers: int) -> None:
    global _WORKER
    torch.set_num_threads(thread_share(workers))
    _WORKER = Extractor(out, settings, weights)


def _worker_cluster(rows: list[dict]) -> list[dict]:
    assert _WORKER is not None
    return _WORKER.cluster(rows)


# A fake and its original are one clip when their lengths agree this closely: a re-encode at another
# frame rate gains or loses a few frames at the ends (0.13 s at 15 fps of a 30 fps FF++ clip), while
# the fakes here whose metadata names the other clip of a pair differ by 0.77 s or more.
SAME_CLIP_SECONDS = 0.25


@dataclass
class Source:
    """What a fake needs of its original: where it was sampled and where the faces are."""

    indices: np.ndarray
    tracks: list[Track]
    size: tuple[int, int]
    total: int  # frames in the original: with its fps, the duration a fake of it must share
    fps: float

    @classmethod
    def from_json(cls, faces: dict) -> "Source":
        tracks = [Track.from_dict(t) for t in faces["tracks"]]
        return cls(np.asarray(faces["sampled_frames"], np.int64), tracks, (faces["width"], faces["height"]),
                   int(faces["frames_in_video"]), float(faces["fps"]))



class Extractor:
    """Turns one cluster (an original and its fakes) into cache entries."""

    def __init__(self, out: Path, settings: Settings, weights: str | Path | None = None) -> None:
        self.out, self.settings, self.weights = out, settings, weights
        self._detector: Detector | None = None

    @property
    def detector(self) -> Detector:
        """Loaded on first need: a run that only skips never loads it."""
        if self._detector is None:
            self._detector = create_detector(self.settings.detector, self.weights)
        return self._detector

    def cluster(self, rows: list[dict]) -> list[dict]:
        """Original first, then its fakes at the original's boxes; one result per video."""
        originals = [r for r in rows if r["label"] == "REAL" and r["name"] == r["cluster"]]
        fakes = [r for r in rows if r not in originals]
        results, source = [], "self: original not in the data"
        for row in originals:  # at most one
            results.append(self._video(row, None))
            source = self._source(row["name"])
        results += [self._video(row, source) for row in fakes]
        return results

    def _source(self, name: str) -> Source | str:
        """The original as its cache entry saw it (fresh or from an earlier run), or why it cannot serve."""
        faces = self._folder(name) / "faces.json"
        if not faces.is_file():
            return "self: original unreadable"
        source = Source.from_json(json.loads(faces.read_text()))
        return source if source.tracks else "self: no face found in the original"

    def _folder(self, name: str) -> Path:
        return self.out / "videos" / Path(name).stem

    def _video(self, row: dict, source: Source | str | None) -> dict:
        entry = {"video": row["name"], **{k: row[k] for k in ("label", "original", "cluster", "part", "folder")},
                 "n_faces": 0, "n_tracks": 0, "status": "failed", "boxes_from": None, "error": None}
        stem = Path(row["name"]).stem
        before = read_entry(self._folder(row["name"]))
        if before is not None and before["status"] in FINAL:
            return {**before, "status": "skipped"}
        try:
            faces, entry["boxes_from"] = self._faces(Path(row["path"]), row, source)
            main = faces.tracks[0].indices if faces.tracks else []
            entry.update(n_faces=len(main), n_tracks=len(faces.tracks),
                         status="done" if len(main) >= self.settings.min_faces else "dropped")
            with _staging(self.out, stem) as tmp:
                (write_faces(faces, tmp) / "entry.json").write_text(json.dumps(entry, indent=1))
        except Exception as e:  # noqa: BLE001 - one bad video (or disk hiccup) must not stop a batch
            entry.update(status="failed", error=problem_line(row["path"], e), n_faces=0, n_tracks=0)
            try:  # recorded for the index; the next run tries the video again
                with _staging(self.out, stem) as tmp:
                    (tmp / stem).mkdir()
                    (tmp / stem / "entry.json").write_text(json.dumps(entry, indent=1))
            except OSError as e2:
                log.warning("%s: could not record the failure (%s)", row["path"], e2)
        return entry

    def _faces(self, path: Path, row: dict, source: Source | str | None) -> tuple[Faces, str]:
        """The video's faces, at its original's boxes when there is one (scaled where the fake was saved
        at another frame size); and where the boxes came from ("self: <why not the original's>")."""
        s = self.settings
        if isinstance(source, Source) and row["label"] == "FAKE":
            video = read_video(path, indices=source.indices, at_fps=source.fps)  # its original's moments
            retimed = not same_rate(video.fps, source.fps)  # saved at another frame rate: in the fake's frames
            factor = video.fps / source.fps if retimed else 1.0
            tracks = _at_frames([_retimed(t, factor) for t in source.tracks], video.indices)
            boxes_from = "original" + (", at the fake's frame rate" if retimed else "")
            if video.size != source.size:
                tracks = [_scaled(t, video.size[0] / source.size[0], video.size[1] / source.size[1]) for t in tracks]
                boxes_from += ", scaled to the fake's frame size"
            seconds, original = video.total / video.fps, source.total / source.fps
            if abs(seconds - original) > SAME_CLIP_SECONDS:  # not the same clip: boxes would miss
                log.debug("%s: %.2f s long, its original %.2f s", path, seconds, original)
                source = "self: another length than the original's (another clip, or the metadata names the wrong one)"
            elif tracks:
                return Faces(video, tracks, crop_tracks(video, tracks, s.size, s.margin)), boxes_from
            else:
                source = "self: the fake lacks the original's sampled frames"
        rng = np.random.default_rng([s.seed, zlib.crc32(row["name"].encode())])
        video = read_video(path, s.frames, s.sampling, rng)
        reason = source if isinstance(source, str) and row["label"] == "FAKE" else "self"
        return find_faces(video, self.detector, s.size, s.margin), reason


def read_entry(folder: Path) -> dict | None:
    """A cache entry's entry.json, or None where there is none."""
    path = folder / "entry.json"
    return json.loads(path.read_text()) if path.is_file() else None


@contextmanager
def _staging(out: Path, stem: str) -> Iterator[Path]:
    """A fresh folder under out/tmp; its subfolder <stem> replaces out/videos/<stem> in one rename
    when the block ends without error, and nothing of it stays behind otherwise."""
    tmp = Path(tempfile.mkdtemp(dir=out / "tmp"))
    try:
        yield tmp
        final = out / "videos" / stem
        if final.exists():  # a failed entry being replaced
            shutil.rmtree(final)
        os.rename(tmp / stem, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def merge_caches(sources: list[str | Path], out: str | Path) -> pd.DataFrame:
    """Gather the caches of shards (`--shard K/N` on N machines) into `out`; returns its new index.

    All must have the same settings. A finished entry already in `out` is kept; an entry that
    failed in one cache is replaced by a finished one from another.
    """
    out = Path(out)
    for source in map(Path, sources):
        saved = source / "settings.json"
        if not saved.is_file() or not (source / "videos").is_dir():
            raise DfdcError("not a face cache (no settings.json or videos/)", source)
        try:
            settings = Settings(**json.loads(saved.read_text()))
        except (ValueError, TypeError) as e:
            raise DfdcError(f"settings.json of another dfdc version or damaged ({e})", saved) from None
        _claim(out, settings)
        for folder in sorted(p for p in (source / "videos").iterdir() if (p / "entry.json").is_file()):
            have = read_entry(out / "videos" / folder.name)
            if have is not None and (have["status"] in FINAL or read_entry(folder)["status"] not in FINAL):
                continue
            with _staging(out, folder.name) as tmp:
                shutil.copytree(folder, tmp / folder.name)
    return _finish(out)


def _at_frames(tracks: list[Track], indices: np.ndarray) -> list[Track]:
    """The tracks cut to the frames the video has (all of them, unless the fake is shorter)."""
    have = set(indices.tolist())
    cut = []
    for track in tracks:
        kept = Track(track.id)
        for i, box, score, detected in zip(track.indices, track.boxes, track.scores, track.detected):
            if i in have:
                kept.add(i, box, score, detected)
        if kept.indices:
            cut.append(kept)
    return cut


def _retimed(track: Track, factor: float) -> Track:
    """The track with its frame indices in a video at `factor` times the frame rate (one box per index)."""
    if factor == 1:
        return track
    out, seen = Track(track.id), set()
    for i, box, score, detected in zip(track.indices, track.boxes, track.scores, track.detected):
        j = int(round(i * factor))
        if j not in seen:
            seen.add(j)
            out.add(j, box, score, detected)
    return out


def _scaled(track: Track, sx: float, sy: float) -> Track:
    """The track with its boxes scaled to another frame size (a fake saved at 832x480 of a 854x480 original)."""
    return Track(track.id, list(track.indices), [b * np.float32([sx, sy, sx, sy]) for b in track.boxes],
                 list(track.scores), list(track.detected))
