"""Kaggle credentials, found in the official client's order before the client is imported.

The client (kaggle 2.2.5, kagglesdk 0.1.38: KaggleApi.authenticate, kagglesdk.get_access_token_from_env)
signs in with the first of:
1. an API token: inside a Kaggle notebook the file $KAGGLE_API_V1_TOKEN; else KAGGLE_API_TOKEN (the
   token, or the path of a file holding it); else the file ~/.kaggle/access_token (or access_token.txt).
   The client asks Kaggle whose token it is (IntrospectToken); an expired token is skipped silently,
   yet still sent with every request, so dfdc refuses it instead (api.connect).
2. the legacy API key: kaggle.json ($KAGGLE_CONFIG_DIR, ~/.kaggle, or ~/.config/kaggle on Linux when
   ~/.kaggle does not exist) with KAGGLE_USERNAME / KAGGLE_KEY taking precedence over its fields.
3. OAuth credentials `kaggle auth login` stored in ~/.kaggle/credentials.json (a refresh token).
dfdc adds one place the client does not look: $KAGGLE_CONFIG_DIR/access_token, after the client's token
files; api.connect hands it to the client as KAGGLE_API_TOKEN=<that path>, so both use that token.

Every problem becomes one line saying how to fix it. A kaggle.json readable by group or others (the
bits the client warns about) is refused; a token file so readable gets a warning (the client checks
none). Secrets are read only to see that they are there: never kept, printed or logged. Who the
credentials belong to: the legacy key and OAuth say it; a token only once the client has asked Kaggle
(api.connect fills it in), so the owner is always the user the client acts as.
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

HOW = ("set KAGGLE_API_TOKEN, or save the token as ~/.kaggle/access_token (Kaggle > Settings > API > "
       "Generate New Token), or run `kaggle auth login`; legacy: kaggle.json with mode 600 "
       "(see kaggle.json.example) or KAGGLE_USERNAME and KAGGLE_KEY")
TOKEN = "token"
LEGACY = "legacy"
OAUTH = "oauth"


@dataclass(frozen=True)
class Credentials:
    """Which credentials the client will use, where they are, and whose (None: a token not yet asked about)."""

    method: str  # TOKEN, LEGACY or OAUTH
    source: str  # where, in words: an environment variable or a file
    username: str | None = None
    token_file: Path | None = None  # a token file dfdc must hand to the client (KAGGLE_API_TOKEN=<path>)


def config_file() -> Path:
    """kaggle.json where the client looks: $KAGGLE_CONFIG_DIR, ~/.kaggle, or on Linux the XDG folder
    when ~/.kaggle does not exist."""
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return Path(os.environ["KAGGLE_CONFIG_DIR"]) / "kaggle.json"
    folder = Path.home() / ".kaggle"
    if sys.platform.startswith("linux") and not folder.exists():
        folder = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "kaggle"
    return folder / "kaggle.json"


def oauth_file() -> Path:
    """Where `kaggle auth login` stores its OAuth credentials (kagglesdk KaggleCredentials)."""
    return Path(os.path.expanduser("~/.kaggle/credentials.json"))


def _others_may_read(path: Path) -> int:
    """The file's mode if group or others may read it (what the client warns about), else 0."""
    mode = stat.S_IMODE(path.stat().st_mode)
    return mode if mode & (stat.S_IRGRP | stat.S_IROTH) else 0


def _warn_if_readable(path: Path) -> None:
    mode = _others_may_read(path)
    if mode:
        print(f"dfdc: warning: {path}: readable by other users (mode {mode:o}): run chmod 600 {path}", file=sys.stderr)


def _has_text(path: Path) -> bool:
    """A file with something besides whitespace, as the client wants a token file."""
    try:
        return path.is_file() and bool(path.read_text(encoding="utf-8").strip())
    except (OSError, UnicodeDecodeError):
        raise DfdcError("cannot read this token file", path) from None


def _token() -> Credentials | None:
    """The API token the client will take first, if any (steps of kagglesdk.get_access_token_from_env)."""
    if os.environ.get("KAGGLE_KERNEL_RUN_TYPE") is not None and os.environ.get("KAGGLE_DATA_PROXY_URL"):
        path = os.environ.get("KAGGLE_API_V1_TOKEN")
        if path and _has_text(Path(path)):
            return Credentials(TOKEN, "KAGGLE_API_V1_TOKEN (in a Kaggle notebook)")
    value = os.environ.get("KAGGLE_API_TOKEN")
    if value:
        if Path(value).exists():
            if not _has_text(Path(value)):
                raise DfdcError("KAGGLE_API_TOKEN names this file, and it holds no token", value)
            _warn_if_readable(Path(value))
            return Credentials(TOKEN, f"KAGGLE_API_TOKEN ({value})")
        return Credentials(TOKEN, "KAGGLE_API_TOKEN")
    for name in ("access_token", "access_token.txt"):
        path = Path(os.path.expanduser(f"~/.kaggle/{name}"))
        if _has_text(path):
            _warn_if_readable(path)
            return Credentials(TOKEN, str(path))
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        path = Path(os.environ["KAGGLE_CONFIG_DIR"]) / "access_token"
        if _has_text(path):
            _warn_if_readable(path)
            return Credentials(TOKEN, str(path), token_file=path.resolve())
    return None


def _legacy() -> tuple[Credentials | None, str | None]:
    """The legacy key (kaggle.json, KAGGLE_USERNAME/KAGGLE_KEY over it), or why kaggle.json is unusable."""
    path = config_file()
    data: dict = {}
    problem = None
    if path.is_file():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            data = loaded if isinstance(loaded, dict) else {}
            problem = None if data else "not a JSON object"
        except (OSError, UnicodeDecodeError, ValueError):
            problem = "not a readable JSON kaggle.json"
    env = {field: os.environ[var] for field, var in (("username", "KAGGLE_USERNAME"), ("key", "KAGGLE_KEY"))
           if os.environ.get(var)}
    merged = {**{k: data[k] for k in ("username", "key") if k in data}, **env}
    if set(merged) != {"username", "key"}:
        if data and problem is None:
            problem = 'needs "username" and "key"'
        return None, problem
    if set(env) == {"username", "key"}:
        return Credentials(LEGACY, "KAGGLE_USERNAME/KAGGLE_KEY", env["username"]), None
    mode = _others_may_read(path)
    if mode:
        raise DfdcError(f"readable by other users (mode {mode:o}): run chmod 600 {path}", path)
    if not all(isinstance(merged[k], str) and merged[k] for k in ("username", "key")):
        raise DfdcError(f'needs "username" and "key" as text ({HOW})', path)
    if merged["username"] == OWNER_PLACEHOLDER:
        raise DfdcError("still holds the example values: put your own key there, or better a token "
                        "in ~/.kaggle/access_token (Kaggle > Settings > API)", path)
    source = str(path) + (" with KAGGLE_USERNAME" if "username" in env else "") + (" with KAGGLE_KEY" if "key" in env else "")
    return Credentials(LEGACY, source, merged["username"]), None


def _oauth() -> Credentials | None:
    """The OAuth credentials of `kaggle auth login`, if usable (a refresh token, as KaggleCredentials.load wants)."""
    path = oauth_file()
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or not data.get("refresh_token"):
        return None
    _warn_if_readable(path)
    return Credentials(OAUTH, f"OAuth credentials {path}", data.get("username") or None)


def find_credentials() -> Credentials:
    """The credentials the client will use, or a DfdcError saying what to do."""
    token = _token()
    if token:
        return token
    legacy, problem = _legacy()
    if legacy:
        return legacy
    oauth = _oauth()
    if oauth:
        return oauth
    if problem:
        raise DfdcError(f"{problem} ({HOW})", config_file())
    raise DfdcError(f"no Kaggle credentials: {HOW}")
