"""Kaggle credentials, checked before the `kaggle` client is imported.

Importing the client authenticates at once and, on a problem, prints several lines and exits;
a world-readable kaggle.json only earns a warning. So the same places are looked at here first
(KAGGLE_USERNAME + KAGGLE_KEY, else kaggle.json in KAGGLE_CONFIG_DIR or ~/.kaggle) and every
problem becomes one line saying how to fix it. The key itself is never kept, printed or logged.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import DfdcError
from . import OWNER_PLACEHOLDER

HOW = "see kaggle.json.example; or set KAGGLE_USERNAME and KAGGLE_KEY"


@dataclass(frozen=True)
class Credentials:
    """Who the client will act as, and where that came from (never the key)."""

    username: str
    source: str


def config_file() -> Path:
    """kaggle.json where the client looks: $KAGGLE_CONFIG_DIR, ~/.kaggle, or on Linux the XDG folder
    when ~/.kaggle does not exist."""
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return Path(os.environ["KAGGLE_CONFIG_DIR"]) / "kaggle.json"
    folder = Path.home() / ".kaggle"
    if sys.platform.startswith("linux") and not folder.exists():
        folder = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "kaggle"
    return folder / "kaggle.json"


def find_credentials() -> Credentials:
    """The credentials the client will use, or a DfdcError saying what to do."""
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return Credentials(os.environ["KAGGLE_USERNAME"], "KAGGLE_USERNAME/KAGGLE_KEY")
    path = config_file()
    if not path.is_file():
        raise DfdcError(f"no Kaggle API token: save it there with mode 600 ({HOW})", path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise DfdcError(f"readable by other users (mode {mode:o}): run chmod 600 {path}", path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        raise DfdcError(f"not a readable JSON kaggle.json ({HOW})", path) from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) and data[k] for k in ("username", "key")):
        raise DfdcError(f'needs "username" and "key" ({HOW})', path)
    if data["username"] == OWNER_PLACEHOLDER:
        raise DfdcError("still holds the example values: put your own token there (Kaggle > Settings > API)", path)
    return Credentials(os.environ.get("KAGGLE_USERNAME") or data["username"], str(path))
