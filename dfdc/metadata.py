"""DFDC labels as one table, from a folder with a metadata.json or a root of such folders (parts).

DFDC ships 50 folders `dfdc_train_part_N`, each holding videos and a `metadata.json` mapping
"x.mp4" -> {"label": "REAL"|"FAKE", "split": "train", "original": "y.mp4"|null}. Every fake is
made from one real video (its original), so the fake and its original share a `cluster`: folds
must never split a cluster, or validation sees the very face it was trained on.

Bad data is reported, not hidden: each kind of problem is counted in `df.attrs["problems"]` and
told in one warning line per metadata file; only a root with no metadata.json at all is an error.

A root's sub-folders with a metadata.json are its parts, whatever their names: `dfdc_train_part_N`
keeps its number N, other names (one dataset or identity group each) are numbered in name order;
the `folder` column names each row's folder, so folds can keep a folder whole (`by="part"`).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from sklearn.model_selection import GroupKFold

from .errors import DfdcError
from .video.files import folder_videos, listed_videos

log = logging.getLogger(__name__)

PART_RE = re.compile(r"dfdc_train_part_(\d+)")
LABELS = ("REAL", "FAKE")
COLUMNS = ["path", "name", "part", "folder", "label", "original", "cluster"]
NO_PART = -1  # the part of a folder not named dfdc_train_part_N (e.g. train_sample_videos)

# What each problem kind means, for the warning lines; rows of the first three kinds are dropped.
PROBLEMS = {
    "broken_json": "metadata.json is not a JSON object of entries; its folder is skipped",
    "unknown_label": "entries without a REAL/FAKE label dropped",
    "missing_file": "listed videos missing on disk, dropped",
    "duplicate": "videos already listed in an earlier part, dropped",
    "unlisted_file": "videos on disk not in metadata.json, ignored",
    "fake_without_original": "FAKE entries without an original, kept as their own cluster",
    "missing_original": "FAKE entries whose original is not in the data, kept",
    "no_metadata": "sub-folders without metadata.json, skipped",
}


def parse_parts(spec: str) -> list[int]:
    """'0-9,12' -> [0, 1, ..., 9, 12]: the part selection a user types, sorted and unique."""
    parts: set[int] = set()
    for item in spec.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", item)
        if m is None or (m[2] is not None and int(m[2]) < int(m[1])):
            raise DfdcError(f"bad part selection {spec!r}: expected numbers and ranges like '0-9,12'")
        parts.update(range(int(m[1]), int(m[2] or m[1]) + 1))
    return sorted(parts)


def read_metadata(root: str | Path, parts: str | Iterable[int] | None = None) -> pd.DataFrame:
    """The labelled videos under `root`, one row each, columns COLUMNS; problems in df.attrs.

    `root` is a folder with a metadata.json (one part, or a sample like train_sample_videos) or
    a folder of `dfdc_train_part_N` folders, of which `parts` ("0-9,12" or numbers) selects some.
    """
    root = Path(root)
    rows: list[dict] = []
    problems: Counter[str] = Counter()
    for part, folder in _folders(root, parts, problems):
        _read_folder(folder, part, rows, problems)
    df = pd.DataFrame(rows, columns=COLUMNS).astype({"part": int})
    _check_originals(df, root, problems)
    if df.empty:
        found = ", ".join(f"{k}: {n}" for k, n in problems.items()) or "metadata.json lists nothing"
        raise DfdcError(f"no usable videos ({found})", root)
    df = df.sort_values(["part", "name"], ignore_index=True)
    df.attrs["problems"] = dict(problems)
    return df


def _folders(root: Path, parts: str | Iterable[int] | None, problems: Counter[str]) -> list[tuple[int, Path]]:
    """(part number, folder) pairs to read: the root itself, or its (selected) sub-folders that hold a
    metadata.json; a sub-folder without one is told in a warning line and skipped."""
    if not root.is_dir():
        raise DfdcError("not a folder", root)
    if (root / "metadata.json").is_file():
        if parts is not None:
            raise DfdcError("a part selection needs a folder of dfdc_train_part_N folders, "
                            "this one holds a single metadata.json", root)
        m = PART_RE.fullmatch(root.name)
        return [(int(m[1]) if m else NO_PART, root)]
    subs = sorted(p for p in root.iterdir() if p.is_dir())
    with_meta = [p for p in subs if (p / "metadata.json").is_file()]
    numbered = {int(m[1]): p for p in subs if (m := PART_RE.fullmatch(p.name))}
    if not with_meta and not numbered:
        raise DfdcError("no metadata.json here, nor in any sub-folder (a DFDC part or dataset folder holds one)", root)
    if numbered and len(numbered) == len(subs):  # DFDC's own layout: parts by number
        wanted = sorted(numbered) if parts is None else parse_parts(parts) if isinstance(parts, str) else sorted(set(parts))
        missing = [n for n in wanted if n not in numbered]
        if missing:
            raise DfdcError(f"parts not found: {_ranges(missing)} (have {_ranges(sorted(numbered))})", root)
        for n in wanted:
            if not (numbered[n] / "metadata.json").is_file():
                raise DfdcError("no metadata.json in this part folder", numbered[n])
        return [(n, numbered[n]) for n in wanted]
    if parts is not None:
        raise DfdcError("a part selection needs a folder of dfdc_train_part_N folders only", root)
    skipped = [p.name for p in subs if p not in with_meta]
    if skipped:
        problems["no_metadata"] += len(skipped)
        log.warning("%s: %d %s (e.g. %s)", root, len(skipped), PROBLEMS["no_metadata"], ", ".join(skipped[:3]))
    return list(enumerate(with_meta))


def _read_folder(folder: Path, part: int, rows: list[dict], problems: Counter[str]) -> None:
    """Append the usable entries of one folder's metadata.json; count and warn about the rest."""
    meta_path = folder / "metadata.json"
    try:
        entries = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(entries, dict):
            raise ValueError(f"top level is a JSON {type(entries).__name__}")
    except (ValueError, UnicodeDecodeError) as e:
        problems["broken_json"] += 1
        log.warning("%s: %s (%s)", meta_path, PROBLEMS["broken_json"], str(e).splitlines()[0])
        return
    found = listed_videos(folder, [str(name) for name in entries])  # .mp4 in any case, as predict finds them
    seen = {row["name"] for row in rows}
    here: dict[str, list[str]] = {kind: [] for kind in PROBLEMS}
    for name, entry in entries.items():
        label = str(entry.get("label", "")).strip().upper() if isinstance(entry, dict) else ""
        if label not in LABELS:
            here["unknown_label"].append(name)
        elif name not in found:
            here["missing_file"].append(name)
        elif name in seen:
            here["duplicate"].append(name)
        else:
            original = entry.get("original") if label == "FAKE" else None
            if label == "FAKE" and not (isinstance(original, str) and original):
                here["fake_without_original"].append(name)
                original = None
            rows.append({"path": str(found[name]), "name": name, "part": part, "folder": folder.name, "label": label,
                         "original": original, "cluster": original or name})
            seen.add(name)
    here["unlisted_file"] = sorted({p.name for p in folder_videos(folder)} - {p.name for p in found.values()})
    for kind, names in here.items():
        if names:
            problems[kind] += len(names)
            log.warning("%s: %d %s (e.g. %s)", meta_path, len(names), PROBLEMS[kind], ", ".join(names[:3]))


def _check_originals(df: pd.DataFrame, root: Path, problems: Counter[str]) -> None:
    """Count the fakes whose original was not read: normal for a sample, a gap for full parts."""
    absent = df["original"].notna() & ~df["original"].isin(set(df["name"]))
    if absent.any():
        problems["missing_original"] += int(absent.sum())
        log.warning("%s: %d %s (e.g. %s)", root, absent.sum(), PROBLEMS["missing_original"],
                    ", ".join(df.loc[absent, "original"].head(3)))


def _ranges(numbers: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5', the inverse of parse_parts for messages."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def assign_folds(df: pd.DataFrame, k: int = 5, by: str = "cluster", seed: int = 0) -> pd.DataFrame:
    """A copy of `df` with a `fold` column 0..k-1; rows sharing `by` (cluster or part) share a fold.

    By cluster, a fake and its original always land in the same fold, so validation never holds
    a face the model trained on; by part, folds follow DFDC's own folders.
    """
    if by not in ("cluster", "part"):
        raise DfdcError(f"unknown fold grouping {by!r}; use 'cluster' or 'part'")
    n_groups = df[by].nunique()
    if k < 2 or n_groups < k:
        raise DfdcError(f"cannot make {k} folds from {n_groups} {by}s (need k >= 2 and k <= {by}s)")
    out = df.copy()
    out["fold"] = -1
    splitter = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for fold, (_, val) in enumerate(splitter.split(out, groups=out[by].to_numpy())):
        out.iloc[val, out.columns.get_loc("fold")] = fold
    return out


def read_labels(path: Path) -> pd.Series:
    """video name -> 1 (FAKE) / 0 (REAL) from a DFDC metadata.json."""
    try:
        meta = json.loads(path.read_text())
        return pd.Series({name: int(entry["label"] == "FAKE") for name, entry in meta.items()}, name="label")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise DfdcError(f"not a DFDC metadata.json ({type(e).__name__}: {e})", path) from None
