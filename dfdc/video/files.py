"""Which files are videos: one name rule (.mp4, any case) for every command that lists videos,
and what keeps a listed video from being read, found with the standard library alone (no decoder:
`dfdc predict` checks its list before the heavy imports)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import DfdcError

VIDEO_SUFFIXES = (".mp4",)


def is_video_name(name: str | Path) -> bool:
    """Whether the name is a video's: DFDC's .mp4, matched case-insensitively (UPPER.MP4 too)."""
    return Path(name).suffix.lower() in VIDEO_SUFFIXES


def folder_videos(folder: Path) -> list[Path]:
    """The sorted video-named entries of a folder (a damaged entry is found, and reported, later)."""
    return sorted(p for p in folder.iterdir() if is_video_name(p.name))


def video_files(path: Path) -> list[Path]:
    """The video itself, or the videos of a folder; a folder without any is the user's mistake."""
    if path.is_dir():
        videos = folder_videos(path)
        if not videos:
            raise DfdcError("no .mp4 files in this folder", path)
        return videos
    if not path.exists():
        raise DfdcError("no such file or folder", path)
    return [path]


def _key(name: str) -> tuple[str, str]:
    """A name as the name rule compares it: the stem exactly, the suffix in any case."""
    stem, dot, suffix = name.rpartition(".")
    return (stem, suffix.lower()) if dot else (name, "")


def listed_videos(folder: Path, names: list[str]) -> dict[str, Path]:
    """The file of each listed name found in the folder: the name itself, else the one entry whose
    name differs only in the case of the suffix (a list's abc.mp4 is the folder's abc.MP4). Names
    with no entry are left out; entries are listed, not opened (file_problem says what they are)."""
    try:
        entries = os.listdir(folder)
    except OSError as e:
        raise DfdcError(f"cannot list the videos folder ({e.strerror})", folder) from None
    present = set(entries)
    by_key: dict[tuple[str, str], list[str]] = {}
    for entry in entries:
        by_key.setdefault(_key(entry), []).append(entry)
    out = {}
    for name in names:
        if name in present:
            out[name] = folder / name
        else:
            match = by_key.get(_key(name), [])
            if len(match) == 1:
                out[name] = folder / match[0]
    return out


def file_problem(path: str | Path) -> tuple[str, str] | None:
    """(kind, message) of what keeps `path` from being read as a video file, or None when it is a
    readable, non-empty regular file. Never blocks (a pipe is named, not opened)."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return "broken link", f"broken symbolic link (to {os.readlink(path)}, which does not exist)"
        return "no such file", "no such file"
    except PermissionError:
        return "permission denied", "permission denied (cannot reach the file)"
    except OSError as e:
        return "not a file", f"cannot reach the file ({e.strerror})"
    if stat.S_ISDIR(st.st_mode):
        return "not a file", "a folder, not a video file"
    if not stat.S_ISREG(st.st_mode):
        return "not a file", "not a regular file (a device, pipe or socket)"
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        return "permission denied", "permission denied (cannot read the file)"
    except OSError as e:
        return "not a file", f"cannot open the file ({e.strerror})"
    if st.st_size == 0:
        return "empty file", "empty file (0 bytes)"
    return None
