"""Kernels, the competition and the utility dataset on Kaggle: push, status, output, submit,
download-sample, upload-dataset.

Each is a thin layer over a call or two of the official client (KaggleApi), with the owner filled in
from the user the client signed in as, and the answer told in a line or two.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ..errors import DfdcError
from ..video.files import folder_videos
from . import COMPETITION
from .api import connect, kaggle_errors, quiet
from .metadata import (
    DATASET_FILE,
    KERNEL_FILE,
    kernel_ref,
    owned,
    read_kernel,
    with_owner,
)

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


def latest_version(api, ref: str) -> int | None:
    """The number of the kernel's latest version (GetKernel through the client), None if Kaggle gives none."""
    from kagglesdk.kernels.types.kernels_api_service import ApiGetKernelRequest

    owner, slug = ref.split("/", 1)
    request = ApiGetKernelRequest()
    request.user_name, request.kernel_slug = owner, slug
    with kaggle_errors(f"submit {ref}: looking up its latest version"), api.build_kaggle_client() as kaggle:
        response = kaggle.kernels.kernels_api_client.get_kernel(request)
    return (response.metadata.current_version_number if response.metadata else None) or None


def submit(kernel: str, version: int | None = None, message: str = "dfdc", file_name: str = "submission.csv",
           owner: str | None = None) -> str:
    """Submit the file a kernel version wrote to the competition; returns Kaggle's answer.

    A code competition wants the version (the official CLI refuses without one): the latest when none is given."""
    if version is not None and version < 1:
        raise DfdcError(f"--version {version}: kernel versions count from 1")
    api, creds = connect()
    ref = kernel_ref(kernel, owner or creds.username)
    which = f"version {version}"
    if version is None:
        version = latest_version(api, ref)
        if version is None:
            raise DfdcError(f"submit {ref}: Kaggle gives no version of this kernel: push it first, or pass --version N")
        which = f"version {version} (the latest)"
    with kaggle_errors(f"submit {ref} {which}"):
        response = api.competition_submit_code(file_name, message, COMPETITION, kernel=ref,
                                               kernel_version=version, quiet=True)
    print(f"submit: {ref} {which} -> {COMPETITION}: {response.message}")
    return response.message


def upload_dataset(folder: str | Path, message: str | None = None, owner: str | None = None) -> str:
    """Upload a folder of `dfdc kaggle build-dataset`, owner filled in: a new dataset, or a new version of it."""
    import requests

    folder = Path(folder)
    path = folder / DATASET_FILE
    if not path.is_file():
        raise DfdcError(f"no {DATASET_FILE} here: build the folder with `dfdc kaggle build-dataset`", folder)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        ref = meta["id"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise DfdcError('not valid JSON with an "id"', path) from None
    api, creds = connect()
    ref = owned(ref, owner or creds.username)
    if ref != meta["id"]:  # the placeholder of build-dataset: the client reads the owner from this file
        path.write_text(json.dumps({**meta, "id": ref}, indent=2) + "\n")
    with quiet(), kaggle_errors(f"upload {ref}"):
        try:
            api.dataset_status(ref)
            exists = True
        except requests.HTTPError as e:
            if e.response is None or e.response.status_code != 404:
                raise
            exists = False
        if exists:
            result = api.dataset_create_version(str(folder), message or "dfdc", quiet=True)
        else:
            result = api.dataset_create_new(str(folder), quiet=True)
    if result.error:
        raise DfdcError(f"upload {ref}: Kaggle refused it: {' '.join(result.error.split())}")
    print(f"upload-dataset: {ref}: {'new version' if exists else 'created'} ({result.url or result.ref})")
    return ref


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
