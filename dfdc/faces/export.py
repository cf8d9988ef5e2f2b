"""`dfdc faces`: per video, face crops as image files, faces.json and a contact sheet."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ..defaults import CROP_MARGIN, CROP_SIZE, DETECT_EVERY, DETECTOR, VIDEO_FRAMES
from ..device import pick_device
from ..errors import DfdcError, problem_line
from ..video.files import video_files
from ..video.read import read_video
from .detector import Detector, create_detector
from .find import Faces, crop_tracks, find_faces
from .sheet import contact_sheet

log = logging.getLogger("dfdc")


def write_faces(faces: Faces, out: Path) -> Path:
    """out/<video>/: crops/t<track>_f<frame>.png, faces.json, contact_sheet.png (the tracks' crops,
    then the dropped tracks' with the reason)."""
    folder = out / faces.video.path.stem
    crops_dir = folder / "crops"
    crops_dir.mkdir(parents=True, exist_ok=True)
    for track, crops in zip(faces.tracks, faces.crops):
        for index, crop in zip(track.indices, crops):
            cv2.imwrite(str(crops_dir / f"t{track.id:02d}_f{index:04d}.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    (folder / "faces.json").write_text(json.dumps(faces.to_dict(), indent=1))
    n = len(faces.video.indices)
    rows = [(f"{faces.video.path.name} track {t.id}: {sum(t.detected)}/{n} frames detected", c)
            for t, c in zip(faces.tracks, faces.crops)]
    if faces.dropped and len(faces.video.frames):  # what was left out, and why, to check by eye
        size = faces.crops[0].shape[1] if faces.crops else CROP_SIZE
        left_out = crop_tracks(faces.video, [d.track for d in faces.dropped], size, CROP_MARGIN)
        rows += [(f"dropped track {d.track.id} ({sum(d.track.detected)}/{n}): {d.reason}", c)
                 for d, c in zip(faces.dropped, left_out)]
    contact_sheet(rows or [(f"{faces.video.path.name}: no face found", faces.video.frames[:0])],
                  folder / "contact_sheet.png")
    return folder


def run_faces(source: Path, out: Path, frames: int = VIDEO_FRAMES, size: int = CROP_SIZE, margin: float = CROP_MARGIN,
              weights: Path | None = None, detect_every: int = DETECT_EVERY, device: str = "cpu",
              detector: str = DETECTOR) -> list[str]:
    """Process every video; returns the one-line problems (a bad video never stops the others)."""
    videos = video_files(source)
    find = create_detector(detector, weights, pick_device(device))
    problems = []
    with logging_redirect_tqdm(loggers=[log]):
        for path in tqdm(videos, desc="faces", unit="video", disable=len(videos) < 2):
            problems += _one_video(path, out, find, frames, size, margin, detect_every)
    return problems


def _one_video(path: Path, out: Path, detector: Detector, frames: int, size: int, margin: float,
               detect_every: int) -> list[str]:
    """Faces of one video written under out; its problem in a one-line list (empty when fine)."""
    try:
        faces = find_faces(read_video(path, frames), detector, size, margin, detect_every)
        write_faces(faces, out)
        if not faces.tracks:
            raise DfdcError("no face found in the sampled frames", path)
        return []
    except Exception as e:  # a bad video never stops the others
        problem = problem_line(path, e)
    log.warning("%s", problem)
    return [problem]
