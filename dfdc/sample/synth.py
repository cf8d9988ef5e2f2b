"""A small DFDC-shaped dataset made from real faces, for dry runs and tests where DFDC is absent.

Faces come from real videos or images (BlazeFace finds them); each REAL video places one face
(sometimes two people) on a backdrop under a slowly panning, zooming camera, so face tracks have
something to follow. Each FAKE is a manipulation OF ITS ORIGINAL: the same scene, with the face
warped, colour-shifted and blended back under a soft elliptical mask, its strength varying per
video and flickering a little per frame, and its mean brightness kept equal to the original's, so
only the face region tells a fake apart. The output is what DFDC's folders hold: mp4 videos and a
metadata.json (in dfdc_train_part_N folders if asked), plus a sample_submission.csv and, to check
detectors and trackers against, face_boxes.json: {"x.mp4": {"boxes": [frame][person] = [x0, y0,
x1, y1] of the face, "fake": [person] = whether that face was altered}}.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd
import torch

from ..defaults import default_shared
from ..errors import DfdcError
from ..faces.detector import FaceDetector
from ..video.write import VideoWriter
from ..weights import find_weight, weight_dirs

log = logging.getLogger(__name__)

VIDEO_EXT = {".mp4", ".avi", ".mov", ".mkv", ".webm"}
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
FACE = 96  # face side in the stored face patches, px
MARGIN = 2.4  # patch side / face side: hair, ears and chin fit around the face
PATCH = round(FACE * MARGIN)
CLIP_FRAMES = 48  # frames taken from each source video (played back and forth when too short)
KEYFRAME = 6  # look for the face again every this many source frames and interpolate between
MIN_FACE = 16  # px in the source; smaller faces are too blurry to enlarge
STILL_SCORE = 0.9  # a face in a still image gets no second look, so it must be a sure find
VIDEO_SCORE = 0.8  # a face in a video must instead be found again in the keyframes,
TRACK_SCORE = 0.85  # with this mean score (0 where missed)
WORLD = 1.35  # backdrop size / frame size: room for the camera to pan and zoom


@dataclass(frozen=True)
class FaceClip:
    """One real face over time, stabilised: its box is the central FACE x FACE square of every frame."""

    frames: np.ndarray  # (T, PATCH, PATCH, 3) uint8 RGB
    fps: float  # frame rate of the source; 0 for a still image
    source: str


def make_sample(out: str | Path, videos: int = 20, seed: int = 0, *, size: tuple[int, int] = (640, 360),
                seconds: float = 3.0, fps: float = 15.0, portrait: float = 0.2, two_people: float = 0.2,
                fakes_per_original: tuple[int, int] = (1, 3), parts: int | None = None,
                faces_from: str | Path | Sequence[str | Path] | None = None,
                shared: str | Path | None = None, weights: str | Path | None = None) -> Path:
    """Write `videos` synthetic DFDC videos with metadata into the new or empty folder `out`.

    size is (width, height) of landscape videos, a `portrait` share of them turned upright;
    each original gets fakes_per_original[0]..[1] fakes. `faces_from` is one or more folders
    (or files) of videos and images holding faces; by default shared/data/dfdc_sample and
    shared/data/face_images, `shared` being that argument, $DFDC_SHARED or ../shared. `parts`
    spreads the clusters over that many dfdc_train_part_N folders. Same seed, same dataset.
    """
    out = Path(out)
    _check_args(out, videos, size, seconds, fps, portrait, two_people, fakes_per_original, parts)
    root = Path(shared) if shared is not None else default_shared()
    if faces_from is None:
        sources = [root / "data" / "dfdc_sample", root / "data" / "face_images"]
    else:
        sources = [Path(p) for p in ([faces_from] if isinstance(faces_from, (str, Path)) else faces_from)]
    bank = _load_faces(sources, FaceDetector(_weights_dir(weights, root)))

    rng = np.random.default_rng(seed)
    plan = _plan(rng, videos, fakes_per_original)
    names = iter(_names(rng, videos))
    folders = [out / f"dfdc_train_part_{i}" for i in range(parts)] if parts else [out]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    metadata: list[dict[str, dict]] = [{} for _ in folders]
    faces: dict[str, dict] = {}
    for c, (n_fakes, cluster_seed) in enumerate(zip(plan, np.random.SeedSequence(seed).spawn(len(plan)))):
        folder, meta = folders[c % len(folders)], metadata[c % len(folders)]
        original, fakes = next(names), [next(names) for _ in range(n_fakes)]
        scene_rng, *fake_rngs = (np.random.default_rng(s) for s in cluster_seed.spawn(1 + n_fakes))
        upright = scene_rng.random() < portrait
        scene = _scene(scene_rng, bank, size[::-1] if upright else size, round(seconds * fps), fps,
                       two_people=not upright and scene_rng.random() < two_people)
        manipulations = {name: _fake(r, len(scene.people)) for name, r in zip(fakes, fake_rngs)}
        boxes = _write_cluster(scene, folder, original, manipulations)
        meta[original] = {"label": "REAL", "split": "train", "original": None}
        faces[original] = {"boxes": boxes, "fake": [False] * len(scene.people)}
        for name, fake in manipulations.items():
            meta[name] = {"label": "FAKE", "split": "train", "original": original}
            faces[name] = {"boxes": boxes, "fake": [m is not None for m in fake]}
    for folder, meta in zip(folders, metadata):
        (folder / "metadata.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    (out / "face_boxes.json").write_text(json.dumps(faces, sort_keys=True))
    pd.DataFrame({"filename": sorted(faces), "label": 0.5}).to_csv(out / "sample_submission.csv", index=False)
    return out


def _check_args(out: Path, videos: int, size: tuple[int, int], seconds: float, fps: float, portrait: float,
                two_people: float, fakes: tuple[int, int], parts: int | None) -> None:
    """Refuse impossible settings, and an `out` that already holds files (never overwrite data)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DfdcError("exists and is not an empty folder; make-sample writes a new dataset", out)
    problems = [
        (videos < 1, f"videos must be at least 1, not {videos}"),
        (min(size) < 64 or size[0] % 2 or size[1] % 2, f"size must be even numbers >= 64 (H.264), not {size}"),
        (round(seconds * fps) < 1, "seconds * fps gives no frames"),
        (not (0 <= portrait <= 1 and 0 <= two_people <= 1), "portrait and two_people are shares in 0..1"),
        (not 0 <= fakes[0] <= fakes[1], f"fakes_per_original must be (low, high) with 0 <= low <= high, not {fakes}"),
        (parts is not None and parts < 1, f"parts must be at least 1, not {parts}"),
    ]
    for bad, message in problems:
        if bad:
            raise DfdcError(message)


def _weights_dir(weights: str | Path | None, shared: Path) -> Path | None:
    """The given weights, else the project's usual places ($DFDC_WEIGHTS, ./weights), else shared/weights."""
    if weights is not None:
        return Path(weights)
    for folder in [*weight_dirs(), shared / "weights"]:
        try:
            find_weight("blazeface.pth", folder)
            return folder
        except DfdcError:
            continue
    return None  # the detector then says where it looked


# --- faces -------------------------------------------------------------------------------------

def _load_faces(sources: Sequence[Path], detector: FaceDetector) -> list[FaceClip]:
    """Every face BlazeFace finds in the videos and images of `sources` (folders or files)."""
    clips: list[FaceClip] = []
    for source in sources:
        if not source.exists():
            raise DfdcError("face source not found", source)
        files = [source] if source.is_file() else sorted(source.iterdir())
        for path in files:
            suffix = path.suffix.lower()
            if suffix in VIDEO_EXT:
                clips += _video_faces(path, detector)
            elif suffix in IMAGE_EXT:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is None:
                    log.warning("%s: not a readable image, skipped", path)
                    continue
                image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
                clips += [FaceClip(_crop(image, box)[None], 0.0, f"{path}#{i}")
                          for i, box in enumerate(_find_faces(image, detector))]
    if not clips:
        raise DfdcError(f"no faces of {MIN_FACE} px or more found in these videos or images",
                        ", ".join(map(str, sources)))
    return clips


def _find_faces(image: np.ndarray, detector: FaceDetector, min_score: float = STILL_SCORE) -> np.ndarray:
    """(n, 4) sure face boxes x0, y0, x1, y1 in an RGB image of any size and shape."""
    found = detector(image[None])[0]
    sides = np.minimum(found.boxes[:, 2] - found.boxes[:, 0], found.boxes[:, 3] - found.boxes[:, 1])
    return found.boxes[(found.scores >= min_score) & (sides >= MIN_FACE)]


def _video_faces(path: Path, detector: FaceDetector) -> list[FaceClip]:
    """The faces of a video's first CLIP_FRAMES frames, found on the first and followed.

    A face must be found again, in place and of its size, surely on average over the keyframes:
    furniture and hands that fool BlazeFace once rarely do so steadily.
    """
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            fps = float(stream.average_rate or 30)
            frames = [f.to_ndarray(format="rgb24") for f in islice(container.decode(stream), CLIP_FRAMES)]
    except (av.FFmpegError, IndexError) as e:
        log.warning("%s: not a readable video (%s), skipped", path, e)
        return []
    if not frames:
        return []
    keys = np.arange(0, len(frames), KEYFRAME)
    clips = []
    for i, first in enumerate(_find_faces(frames[0], detector, VIDEO_SCORE)):
        found, scores = _refind([frames[k] for k in keys], first, detector)
        if scores.mean() < TRACK_SCORE:
            continue
        ok = scores > 0
        t = np.arange(len(frames))
        centres = np.stack([np.interp(t, keys[ok], c) for c in _centre(found[ok]).T], 1)
        side = float(np.median(found[ok, 2:] - found[ok, :2]))
        boxes = np.concatenate([centres - side / 2, centres + side / 2], 1)
        clips.append(FaceClip(np.stack([_crop(f, b) for f, b in zip(frames, boxes)]), fps, f"{path}#{i}"))
    return clips


def _refind(frames: list[np.ndarray], box: np.ndarray, detector: FaceDetector) -> tuple[np.ndarray, np.ndarray]:
    """The face like `box` (near it, about its size) in each frame, looking in a square 3 faces wide.

    Returns (n, 4) boxes and (n,) scores; a frame without such a face has score 0.
    """
    h, w = frames[0].shape[:2]
    face = box[2] - box[0]
    side = int(min(3 * face, h, w))
    cx, cy = _centre(box)
    x0, y0 = int(np.clip(cx - side / 2, 0, w - side)), int(np.clip(cy - side / 2, 0, h - side))
    crops = np.stack([cv2.resize(f[y0:y0 + side, x0:x0 + side], (128, 128), interpolation=cv2.INTER_AREA)
                      for f in frames])
    found, scores = np.zeros((len(frames), 4)), np.zeros(len(frames))
    for j, det in enumerate(detector.model.detect(torch.from_numpy(crops))):
        boxes = det.boxes * side / 128 + [x0, y0, x0, y0]
        like = ((np.abs(_centre(boxes) - [cx, cy]).max(1) < 0.3 * face)
                & (np.abs(np.log((boxes[:, 2] - boxes[:, 0]) / face)) < np.log(1.3)))
        if like.any():
            best = np.flatnonzero(like)[det.scores[like].argmax()]
            found[j], scores[j] = boxes[best], det.scores[best]
    return found, scores


def _centre(box: np.ndarray) -> np.ndarray:
    return (box[..., :2] + box[..., 2:]) / 2


def _crop(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The PATCH x PATCH uint8 patch around a face box, the face scaled to FACE px."""
    k = FACE / max(box[2] - box[0], box[3] - box[1])
    cx, cy = _centre(box)
    if k < 1:  # smooth the region first, or shrinking makes hair and fabric alias
        reach = (PATCH / 2 + 4) / k
        x0, y0 = max(int(cx - reach), 0), max(int(cy - reach), 0)
        image = cv2.GaussianBlur(image[y0:int(cy + reach) + 1, x0:int(cx + reach) + 1], (0, 0), 0.4 / k)
        cx, cy = cx - x0, cy - y0
    m = np.float32([[k, 0, PATCH / 2 - k * cx], [0, k, PATCH / 2 - k * cy]])
    return cv2.warpAffine(image, m, (PATCH, PATCH), flags=cv2.INTER_LINEAR if k < 1 else cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)


def _ellipse(centre_y: float, axes: tuple[float, float], feather: float) -> np.ndarray:
    """A soft ellipse over the patch, (PATCH, PATCH, 1) float32 in 0..1, centred at x = PATCH / 2."""
    hard = np.zeros((PATCH, PATCH), np.float32)
    cv2.ellipse(hard, (PATCH // 2, round(centre_y)), tuple(round(a) for a in axes), 0, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(hard, (0, 0), feather)[..., None]


HEAD_ALPHA = _ellipse(PATCH / 2 + 0.05 * FACE, (0.85 * FACE, 0.95 * FACE), 0.07 * FACE)
FACE_MASK = _ellipse(PATCH / 2 + 0.05 * FACE, (0.42 * FACE, 0.55 * FACE), 0.07 * FACE)


def _support(mask: np.ndarray) -> tuple[slice, slice]:
    """The rows and columns where a soft mask is not ~0: all of the patch a fake changes."""
    rows, cols = np.nonzero(mask[..., 0] > 1e-3)
    return slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)


MASK_BOX = _support(FACE_MASK)


# --- scenes ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Person:
    """A face clip placed in the world, swaying a little."""

    clip: FaceClip
    start: int  # clip frame shown first
    x: float  # face centre in world px
    y: float
    face: float  # face side in world px
    sway: np.ndarray  # amplitude x, y (px), rotation (degrees), period (s), phase


@dataclass(frozen=True)
class Scene:
    """One original video: a backdrop, a camera path and the people in front of it."""

    world: np.ndarray  # (H, W, 3) float32 backdrop, WORLD times the frame
    size: tuple[int, int]  # width, height of the video
    frames: int
    fps: float
    zoom: tuple[float, float]  # at the first and last frame
    path: np.ndarray  # (2, 2) camera centre in the world at the first and last frame
    people: tuple[Person, ...]


def _scene(rng: np.random.Generator, bank: list[FaceClip], size: tuple[int, int], frames: int, fps: float,
           two_people: bool) -> Scene:
    """A random scene: most cameras pan and zoom slowly, some stand still as in DFDC."""
    w, h = size
    world = _backdrop(rng, round(w * WORLD), round(h * WORLD))
    mid = np.array([world.shape[1], world.shape[0]]) / 2 + rng.uniform(-0.04, 0.04, 2) * size
    moving = rng.random() < 0.8
    pan = rng.uniform(-1, 1, 2) * [0.08 * w, 0.04 * h] * moving
    zoom = (1.0 + rng.uniform(0, 0.15) * moving, 1.0 + rng.uniform(0, 0.15) * moving)
    n = 2 if two_people else 1
    clips = rng.choice(len(bank), n, replace=len(bank) < n)
    xs = [rng.uniform(-0.15, 0.15)] if n == 1 else [-rng.uniform(0.18, 0.24), rng.uniform(0.18, 0.24)]
    people = []
    for clip_index, dx in zip(clips, xs):
        clip = bank[clip_index]
        face = rng.uniform(0.14, 0.22) * min(size) * (0.85 if n == 2 else 1.0)
        sway = np.array([rng.uniform(0, 0.06) * face, rng.uniform(0, 0.04) * face, rng.uniform(0, 4),
                         rng.uniform(2, 5), rng.uniform(0, 2 * np.pi)])
        people.append(Person(clip, int(rng.integers(len(clip.frames))), mid[0] + dx * w,
                             mid[1] + rng.uniform(-0.08, 0.02) * h, face, sway))
    return Scene(world, size, frames, fps, zoom, np.stack([mid - pan / 2, mid + pan / 2]), tuple(people))


def _backdrop(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A room-like backdrop: a muted wall, furniture-like shapes, uneven light and fine texture."""
    def muted() -> tuple[float, ...]:
        grey = rng.uniform(50, 210)
        return tuple(float(c) for c in grey + (rng.uniform(0, 255, 3) - grey) * rng.uniform(0.1, 0.45))

    img = np.empty((h, w, 3), np.float32)
    img[:] = muted()
    for _ in range(rng.integers(4, 10)):
        x0, x1 = sorted(int(v) for v in rng.integers(0, w, 2))
        y0, y1 = sorted(int(v) for v in rng.integers(0, h, 2))
        if rng.random() < 0.7:
            cv2.rectangle(img, (x0, y0), (x1, y1), muted(), -1)
        else:
            cv2.ellipse(img, ((x0 + x1) // 2, (y0 + y1) // 2), ((x1 - x0) // 2 + 1, (y1 - y0) // 2 + 1),
                        0, 0, 360, muted(), -1)
    light = rng.uniform(0.65, 1.15, (3, 4)).astype(np.float32)
    img *= cv2.resize(light, (w, h), interpolation=cv2.INTER_CUBIC)[..., None]
    img += cv2.GaussianBlur(rng.normal(0, 6, (h, w, 3)).astype(np.float32), (0, 0), 0.8)
    return np.clip(cv2.GaussianBlur(img, (0, 0), 1.0), 0, 255)


def _camera(scene: Scene, t: int) -> np.ndarray:
    """3x3 world -> frame transform at frame t: an eased pan and zoom."""
    s = t / max(scene.frames - 1, 1)
    s = s * s * (3 - 2 * s)
    z = scene.zoom[0] + (scene.zoom[1] - scene.zoom[0]) * s
    cx, cy = scene.path[0] + (scene.path[1] - scene.path[0]) * s
    w, h = scene.size
    return np.array([[z, 0, w / 2 - z * cx], [0, z, h / 2 - z * cy], [0, 0, 1]])


def _placement(person: Person, t: int, fps: float) -> np.ndarray:
    """3x3 patch -> world transform of a person at frame t: scaled, swaying and tilting."""
    ax, ay, deg, period, phase = person.sway
    wave = np.sin(2 * np.pi * t / fps / period + phase)
    k = person.face / FACE
    a = np.deg2rad(deg * wave)
    rot = k * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    centre = np.array([person.x + ax * wave, person.y + ay * np.cos(2 * np.pi * t / fps / period + phase)])
    return np.vstack([np.hstack([rot, (centre - rot @ [PATCH / 2, PATCH / 2])[:, None]]), [0, 0, 1]])


def _clip_frame(person: Person, t: int, fps: float) -> np.ndarray:
    """The clip frame at video frame t, at the source's pace, played back and forth past its end."""
    clip = person.clip
    n = len(clip.frames)
    i = (person.start + round(t / fps * clip.fps)) % max(2 * n - 2, 1)
    return clip.frames[i if i < n else 2 * n - 2 - i].astype(np.float32)


# --- fakes -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Manipulation:
    """How one fake alters one face: fixed for the video, plus a little flicker per frame."""

    maps: np.ndarray  # (h, w, 2) float32 patch coordinates to sample MASK_BOX from: small affine + elastic warp
    gain: np.ndarray  # (3,) colour gain
    shift: np.ndarray  # (3,) colour offset
    blur: float  # Gaussian sigma of the altered face; negative: sharpened by that much instead
    strength: float  # blend weight at the mask's centre
    flicker: float  # per-frame jitter of strength, colour and position
    rng: np.random.Generator  # draws the flicker, frame after frame


def _fake(rng: np.random.Generator, people: int) -> list[Manipulation | None]:
    """The manipulation of each person of a fake: one face altered, or sometimes all."""
    targets = set(range(people)) if rng.random() < 0.3 else {int(rng.integers(people))}
    return [_manipulation(rng) if p in targets else None for p in range(people)]


def _manipulation(rng: np.random.Generator) -> Manipulation:
    """Random warp, colour shift, blur and strength, each within what looks like a plausible face."""
    a = np.deg2rad(rng.uniform(-4, 4))
    k = 1 + rng.uniform(-0.05, 0.05)
    shift = rng.uniform(-0.03, 0.03, 2) * FACE
    c = PATCH / 2
    inverse = np.linalg.inv(np.array([[k * np.cos(a), -k * np.sin(a)], [k * np.sin(a), k * np.cos(a)]]))
    yy, xx = np.mgrid[0:PATCH, 0:PATCH].astype(np.float32)
    pts = np.stack([xx - c - shift[0], yy - c - shift[1]], -1) @ inverse.T + c
    elastic = cv2.resize(rng.normal(0, 0.02 * FACE, (4, 4, 2)).astype(np.float32), (PATCH, PATCH),
                         interpolation=cv2.INTER_CUBIC)
    return Manipulation(
        maps=(pts + elastic)[MASK_BOX].astype(np.float32),
        gain=1 + rng.uniform(-0.07, 0.07, 3),
        shift=rng.uniform(-8, 8, 3),
        blur=float(rng.uniform(0.4, 1.5) if rng.random() < 0.7 else -rng.uniform(0.3, 0.8)),
        strength=float(rng.uniform(0.7, 1.0)),
        flicker=float(rng.uniform(0.01, 0.04)),
        rng=rng,
    )


def _manipulate(patch: np.ndarray, m: Manipulation) -> np.ndarray:
    """The patch with its face replaced by an altered copy, blended in under FACE_MASK.

    The altered face keeps the original's mean brightness under the blend, so the frame's
    brightness cannot tell the fake from its original.
    """
    jitter = m.rng.normal(0, m.flicker, 6)
    moved = cv2.remap(patch, m.maps + (jitter[:2] * 20).astype(np.float32), None, cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REFLECT)
    altered = moved * (m.gain * (1 + jitter[2:5])) + m.shift
    blurred = cv2.GaussianBlur(altered, (0, 0), abs(m.blur))
    altered = blurred if m.blur > 0 else altered + (altered - blurred) * 1.5
    alpha = FACE_MASK[MASK_BOX] * float(np.clip(m.strength + jitter[5] * 2, 0, 1))
    face = patch[MASK_BOX]
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    gap = ((face - altered) * alpha).sum((0, 1)) @ luma / max(float(alpha.sum()), 1e-6)
    out = patch.copy()
    out[MASK_BOX] = face + (altered + gap - face) * alpha
    return out


# --- rendering and writing ---------------------------------------------------------------------

def _write_cluster(scene: Scene, folder: Path, original: str,
                   fakes: dict[str, list[Manipulation | None]]) -> list[list[list[float]]]:
    """Render the original and its fakes frame by frame into their mp4 files; the face boxes per frame."""
    w, h = scene.size
    boxes = []
    lo, hi = (PATCH - FACE) / 2, (PATCH + FACE) / 2
    corners = np.array([[lo, lo, 1], [hi, lo, 1], [lo, hi, 1], [hi, hi, 1]])
    with ExitStack() as stack:
        writers = {name: stack.enter_context(VideoWriter(folder / name, scene.size, scene.fps))
                   for name in [original, *fakes]}
        for t in range(scene.frames):
            camera = _camera(scene, t)
            frame = cv2.warpAffine(scene.world, camera[:2], (w, h), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT)
            layers = [((camera @ _placement(p, t, scene.fps))[:2], _clip_frame(p, t, scene.fps))
                      for p in scene.people]
            boxes.append([[round(float(v), 1) for v in (*xy.min(0), *xy.max(0))]
                          for xy in (corners @ m.T for m, _ in layers)])
            writers[original].write(_composite(frame, layers))
            for name, manipulations in fakes.items():
                writers[name].write(_composite(frame, [
                    (m, patch if man is None else _manipulate(patch, man))
                    for (m, patch), man in zip(layers, manipulations)]))
    return boxes


def _composite(background: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Each (patch -> frame transform, patch) over the background under HEAD_ALPHA, as uint8 RGB.

    Only the region a patch lands on is warped and blended: a face is a small part of the frame.
    """
    frame = background.copy()
    h, w = frame.shape[:2]
    square = np.array([[0, 0, 1], [PATCH, 0, 1], [0, PATCH, 1], [PATCH, PATCH, 1]])
    for m, patch in layers:
        xy = square @ m.T
        x0, y0 = np.clip(np.floor(xy.min(0)).astype(int), 0, [w, h])
        x1, y1 = np.clip(np.ceil(xy.max(0)).astype(int) + 1, 0, [w, h])
        if x1 <= x0 or y1 <= y0:
            continue
        rgba = cv2.warpAffine(np.dstack([patch, HEAD_ALPHA]), m - [[0, 0, x0], [0, 0, y0]], (x1 - x0, y1 - y0),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        roi = frame[y0:y1, x0:x1]
        roi += (rgba[..., :3] - roi) * rgba[..., 3:]
    return np.clip(frame + 0.5, 0, 255).astype(np.uint8)


# --- names and cluster sizes -------------------------------------------------------------------

def _plan(rng: np.random.Generator, videos: int, fakes: tuple[int, int]) -> list[int]:
    """Fakes per original until `videos` are planned: about 1 original to 1-3 fakes, as in DFDC."""
    plan: list[int] = []
    left = videos
    while left > 0:
        n = min(int(rng.integers(fakes[0], fakes[1] + 1)), left - 1)
        plan.append(n)
        left -= n + 1
    return plan


def _names(rng: np.random.Generator, n: int) -> list[str]:
    """n distinct DFDC-like names: ten random lowercase letters and .mp4."""
    names: dict[str, None] = {}
    while len(names) < n:
        names["".join(chr(97 + i) for i in rng.integers(0, 26, 10)) + ".mp4"] = None
    return list(names)
