"""`dfdc faces`: per video, face crops as image files, faces.json and a contact sheet."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from .detect import FaceDetector
from .errors import DfdcError
from .faces import Faces, find_faces
from .sheet import contact_sheet
from .video import read_video

log = logging.getLogger("dfdc")


def video_files(path: Path) -> list[Path]:
    """The video itself, or the sorted *.mp4 files of a folder."""
    if path.is_dir():
        videos = sorted(p for p in path.iterdir() if p.suffix.lower() == ".mp4")
        if not videos:
            raise DfdcError("no .mp4 files in this folder", path)
        return videos
    if not path.exists():
        raise DfdcError("no such file or folder", path)
    return [path]


def write_faces(faces: Faces, out: Path) -> Path:
    """out/<video>/: crops/t<track>_f<frame>.png, faces.json, contact_sheet.png."""
    folder = out / faces.video.path.stem
    crops_dir = folder / "crops"
    crops_dir.mkdir(parents=True, exist_ok=True)
    for track, crops in zip(faces.tracks, faces.crops):
        for index, crop in zip(track.indices, crops):
            cv2.imwrite(str(crops_dir / f"t{track.id:02d}_f{index:04d}.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    (folder / "faces.json").write_text(json.dumps(faces.to_dict(), indent=1))
    rows = [(f"{faces.video.path.name} track {t.id}: {sum(t.detected)}/{len(faces.video.indices)} frames detected",
             c) for t, c in zip(faces.tracks, faces.crops)]
    contact_sheet(rows or [(f"{faces.video.path.name}: no face found", faces.video.frames[:0])],
                  folder / "contact_sheet.png")
    return folder


def run_faces(source: Path, out: Path, frames: int = 32, size: int = 224, margin: float = 0.3,
              weights: Path | None = None, detect_every: int = 1, device: str = "cpu") -> list[str]:
    """Process every video; returns the one-line problems (a bad video never stops the others)."""
    videos = video_files(source)
    detector = FaceDetector(weights, device=device)
    problems = []
    with logging_redirect_tqdm(loggers=[log]):
        for path in tqdm(videos, desc="faces", unit="video", disable=len(videos) < 2):
            problems += _one_video(path, out, detector, frames, size, margin, detect_every)
    return problems


def _one_video(path: Path, out: Path, detector: FaceDetector, frames: int, size: int, margin: float,
               detect_every: int) -> list[str]:
    """Faces of one video written under out; its problem in a one-line list (empty when fine)."""
    try:
        faces = find_faces(read_video(path, frames), detector, size, margin, detect_every)
        write_faces(faces, out)
        if not faces.tracks:
            raise DfdcError("no face found in the sampled frames", path)
        return []
    except DfdcError as e:
        problem = str(e)
    except Exception as e:  # a bad video never stops the others
        problem = f"{path}: {type(e).__name__}: {e}"
    log.warning("%s", problem)
    return [problem]
