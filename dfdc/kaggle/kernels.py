"""Kernels and the competition on Kaggle: push, status, output, submit, download-sample.

Each is a thin layer over one call of the official client (KaggleApi), with the owner filled in
from the credentials and the answer told in a line or two.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ..errors import DfdcError
from ..video.files import folder_videos
from . import COMPETITION
from .api import connect, kaggle_errors
from .metadata import KERNEL_FILE, kernel_ref, read_kernel, with_owner

INVALID = {"invalid_dataset_sources": "dataset", "invalid_competition_sources": "competition",
           "invalid_kernel_sources": "kernel", "invalid_model_sources": "model", "invalid_tags": "tag"}


def push(kernel_dir: str | Path, owner: str | None = None) -> str:
    """Push a copy of the kernel folder, owner filled in, as a new version that runs; returns owner/slug."""
    kernel_dir = Path(kernel_dir)
    meta = read_kernel(kernel_dir)
    code = kernel_dir / meta["code_file"]
    if not code.is_file():
        raise DfdcError("code_file not found", code)
    api, creds = connect()
    meta = with_owner(meta, owner or creds.username)
    with tempfile.TemporaryDirectory(prefix="dfdc-push-") as tmp:
        (Path(tmp) / KERNEL_FILE).write_text(json.dumps(meta, indent=2))
        (Path(tmp) / meta["code_file"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(code, Path(tmp) / meta["code_file"])
        with kaggle_errors(f"push {meta['id']}"):
            result = api.kernels_push(tmp)
    if result.error:
        raise DfdcError(f"push {meta['id']}: Kaggle refused it: {' '.join(result.error.split())}")
    for attr, kind in INVALID.items():
        for name in getattr(result, attr) or []:
            print(f"push: warning: Kaggle does not know the {kind} source {name!r}")
    print(f"push: {meta['id']} version {result.version_number} is running: {result.url}")
    return meta["id"]


def status(kernel: str, owner: str | None = None) -> str:
    """The state of the kernel's latest run (queued, running, complete, error, ...), printed and returned."""
    api, creds = connect()
    ref = kernel_ref(kernel, owner or creds.username)
    with kaggle_errors(f"status {ref}"):
        response = api.kernels_status(ref)
    state = response.status.name.lower()
    failure = " ".join((response.failure_message or "").split())
    print(f"{ref}: {state}" + (f": {failure}" if failure else ""))
    return state


def output(kernel: str, out: str | Path | None = None, owner: str | None = None) -> list[Path]:
    """Download the output files and log of the kernel's latest run (into kaggle-output/<slug> by default)."""
    api, creds = connect()
    ref = kernel_ref(kernel, owner or creds.username)
    out = Path(out) if out is not None else Path("kaggle-output") / ref.split("/")[1]
    with kaggle_errors(f"output {ref}"):
        files, _ = api.kernels_output(ref, str(out), force=True, quiet=True)
    for path in files:
        print(f"output: {path}")
    return [Path(f) for f in files]


def submit(kernel: str, version: int | None = None, message: str = "dfdc", file_name: str = "submission.csv",
           owner: str | None = None) -> str:
    """Submit the file a kernel version wrote to the competition; returns Kaggle's answer."""
    api, creds = connect()
    ref = kernel_ref(kernel, owner or creds.username)
    with kaggle_errors(f"submit {ref}"):
        response = api.competition_submit_code(file_name, message, COMPETITION, kernel=ref,
                                               kernel_version=version, quiet=True)
    print(f"submit: {ref} -> {COMPETITION}: {response.message}")
    return response.message


def download_sample(out: str | Path) -> dict[str, int]:
    """The competition's data (train_sample_videos, test_videos, sample_submission.csv) into `out`."""
    out = Path(out)
    api, _ = connect()
    with kaggle_errors(f"download {COMPETITION}"):
        api.competition_download_files(COMPETITION, path=str(out), quiet=False, unzip=True)
    counts = {name: len(folder_videos(out / name)) for name in ("train_sample_videos", "test_videos")}
    if not any(counts.values()):
        raise DfdcError("the download holds no train_sample_videos/ or test_videos/ videos", out)
    print("download-sample: " + ", ".join(f"{n} videos in {out / name}" for name, n in counts.items()))
    return counts
