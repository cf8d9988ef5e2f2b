"""Which files are videos: one name rule (.mp4, any case) for every command that lists videos."""

from __future__ import annotations

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
