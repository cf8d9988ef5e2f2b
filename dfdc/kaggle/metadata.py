"""Kaggle's metadata files: kernel-metadata.json of a kernel folder, dataset-metadata.json of the utility dataset.

The committed kernel folders name their owner OWNER_PLACEHOLDER; the real owner (from the
credentials or --owner) is filled in only in the copy that is pushed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import DfdcError
from . import OWNER_PLACEHOLDER, UTILITY

KERNEL_FILE = "kernel-metadata.json"
# Where a kernel's sources appear under /kaggle/input: "current" as Kaggle mounts them today
# (competitions/<slug>, datasets/<owner>/<slug>, notebooks/<owner>/<slug>), "flat" as 2020's kernels
# saw them (<slug>). The kernels' find_input looks in both.
LAYOUTS = ("current", "flat")
DATASET_FILE = "dataset-metadata.json"


def read_kernel(folder: str | Path) -> dict[str, Any]:
    """The kernel-metadata.json of a kernel folder, with at least an id and a code_file."""
    folder = Path(folder)
    path = folder / KERNEL_FILE
    if not path.is_file():
        what = "no folder" if not folder.is_dir() else f"no {KERNEL_FILE} here"
        raise DfdcError(f"{what}: a kernel folder holds {KERNEL_FILE} and its script (see kernels/)", folder)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise DfdcError(f"not valid JSON ({e})", path) from None
    if not isinstance(meta, dict) or not all(isinstance(meta.get(k), str) for k in ("id", "code_file")):
        raise DfdcError('needs "id" (owner/slug) and "code_file"', path)
    return meta


def owned(ref: str, owner: str) -> str:
    """owner/slug with the placeholder owner replaced; other owners are kept."""
    first, _, rest = ref.partition("/")
    return f"{owner}/{rest}" if first == OWNER_PLACEHOLDER and rest else ref


def with_owner(meta: dict[str, Any], owner: str) -> dict[str, Any]:
    """The metadata with the placeholder owner replaced in its id and its sources."""
    out = dict(meta, id=owned(meta["id"], owner))
    for key in ("dataset_sources", "kernel_sources"):
        if key in out:
            out[key] = [owned(ref, owner) for ref in out[key]]
    return out


def input_names(meta: dict[str, Any]) -> list[str]:
    """The folder names the kernel's sources get under /kaggle/input: competition and dataset slugs."""
    refs = [*meta.get("competition_sources", []), *meta.get("dataset_sources", []), *meta.get("kernel_sources", [])]
    return [ref.rsplit("/", 1)[-1] for ref in refs]


def input_paths(meta: dict[str, Any], layout: str = "current") -> dict[str, str]:
    """Each source's folder name (as input_names gives it) -> its folder under /kaggle/input in `layout`."""
    if layout not in LAYOUTS:
        raise DfdcError(f"unknown layout {layout!r} (one of {', '.join(LAYOUTS)})")
    paths = {ref: ref if layout == "flat" else f"competitions/{ref}" for ref in meta.get("competition_sources", [])}
    for key, kind in (("dataset_sources", "datasets"), ("kernel_sources", "notebooks")):
        for ref in meta.get(key, []):
            owner, _, slug = ref.rpartition("/")
            paths[slug] = slug if layout == "flat" else f"{kind}/{owner}/{slug}"
    return paths


def kernel_ref(kernel: str, owner: str | None) -> str:
    """owner/slug of a kernel given as a kernel folder, owner/slug, or a slug of `owner`'s."""
    if Path(kernel, KERNEL_FILE).is_file():
        ref = read_kernel(kernel)["id"]
    elif "/" in kernel:
        ref = kernel
    else:
        ref = f"{OWNER_PLACEHOLDER}/{kernel}"
    if ref.startswith(f"{OWNER_PLACEHOLDER}/"):
        if owner is None:
            raise DfdcError(f"whose kernel is {kernel!r}? give owner/slug or --owner")
        ref = owned(ref, owner)
    return ref


def dataset_metadata(owner: str) -> dict[str, Any]:
    """dataset-metadata.json of the utility dataset, as `kaggle datasets create` wants it."""
    return {
        "title": "DFDC utility",
        "id": f"{owner}/{UTILITY}",
        "subtitle": "dfdc wheel, pinned dependency wheels, BlazeFace weights, checkpoints",
        "description": "Made by `dfdc kaggle build-dataset`, for kernels with the internet off: "
                       "`pip install --no-index --find-links <this folder> <its wheels>`. "
                       "BlazeFace weights: Apache 2.0 (github.com/hollance/BlazeFace-PyTorch).",
        "licenses": [{"name": "other"}],
    }
