"""`dfdc kaggle build-dataset`: the utility dataset a kernel with the internet off installs dfdc from.

One flat folder (`kaggle datasets version` skips sub-folders unless told to zip them):
the dfdc wheel, the wheels of DATASET_WHEELS at the versions installed here (for the image's
Python and platform; each wheel's tags are checked against them), the BlazeFace weights, the
checkpoints, and dataset-metadata.json. It is built beside OUT and renamed into place when
complete, so OUT never holds half a dataset or a stale wheel of an earlier build. Building needs
no Kaggle account: the owner is the placeholder unless given, filled in by `upload-dataset`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from ..errors import DfdcError
from ..faces.detector import detector_files, list_detectors
from . import OWNER_PLACEHOLDER
from .image import DATASET_WHEELS, PLATFORMS, PYTHON
from .metadata import DATASET_FILE, dataset_metadata

PACKAGING = ("setup.py", "setup.cfg", "pyproject.toml", "MANIFEST.in", "README.md")  # what a build reads


def source_dir() -> Path:
    """The dfdc checkout this package runs from: a wheel is built from source, not from an install."""
    root = Path(__file__).resolve().parents[2]
    if not any((root / name).is_file() for name in ("setup.py", "pyproject.toml")):
        raise DfdcError("not a dfdc source checkout (no setup.py): install dfdc with `pip install -e` "
                        "from the repository to build the dataset", root)
    return root


def _pip(args: list[str], what: str) -> None:
    """Run pip here; a failure is one line: pip's last error line."""
    done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")] or lines or ["no output"]
        raise DfdcError(f"{what} failed: {errors[-1].strip()}")


def build_wheel(dest: Path) -> None:
    """dfdc's wheel, built from a copy of the source (an in-tree build/ can keep deleted modules)."""
    root = source_dir()
    with tempfile.TemporaryDirectory(prefix="dfdc-src-") as tmp:
        for name in PACKAGING:
            if (root / name).is_file():
                shutil.copy2(root / name, tmp)
        shutil.copytree(root / "dfdc", Path(tmp) / "dfdc", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        _pip(["wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dest), tmp], "pip wheel of dfdc")


def pins() -> list[str]:
    """name==version of each DATASET_WHEELS distribution, as installed here."""
    out = []
    for name in DATASET_WHEELS:
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            raise DfdcError(f"{name} is not installed here, and the dataset carries the versions installed here: "
                            "pip install -c constraints.txt -e '.[test]'") from None
    return out


def download_wheels(dest: Path, wheelhouse: Path | None = None) -> None:
    """The pinned wheels for the Kaggle image's platform: from PyPI, or only from `wheelhouse` (offline)."""
    target = ["--only-binary=:all:", "--implementation", "cp", "--python-version", PYTHON,
              *(f"--platform={p}" for p in PLATFORMS)]
    source = ["--no-index", "--find-links", str(wheelhouse)] if wheelhouse else []
    _pip(["download", "--no-deps", "-q", *target, *source, "-d", str(dest), *pins()], "pip download")


def image_tags() -> set:
    """The wheel tags pip accepts on the image: its CPython (abi3 and pure wheels included) on its platforms."""
    from packaging.tags import compatible_tags, cpython_tags

    version = tuple(int(p) for p in PYTHON.split("."))
    return {*cpython_tags(version, platforms=PLATFORMS),
            *compatible_tags(version, f"cp{version[0]}{version[1]}", platforms=PLATFORMS)}


def check_wheels(folder: Path) -> list[str]:
    """Each wheel of `folder` that would not install on the image's Python, with its tags."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    accepted = image_tags()
    problems = []
    for wheel in sorted(folder.glob("*.whl")):
        try:
            tags = parse_wheel_filename(wheel.name)[3]
        except InvalidWheelFilename:
            problems.append(f"{wheel.name}: not a wheel's name")
            continue
        if not tags & accepted:
            problems.append(f"{wheel.name}: does not install on the Kaggle image's CPython {PYTHON} (manylinux x86_64)")
    return problems


def _checked_checkpoints(checkpoints: list[Path]) -> list[Path]:
    """The checkpoints, each a readable dfdc checkpoint named *.pt, no two with one name."""
    from ..models.checkpoint import read_checkpoint

    names: set[str] = set()
    for path in checkpoints:
        if path.suffix != ".pt":
            raise DfdcError("a checkpoint must be named *.pt (the kernel takes every *.pt of the dataset)", path)
        if path.name in names:
            raise DfdcError("two checkpoints with this name: the dataset is flat, rename one", path)
        names.add(path.name)
        read_checkpoint(path)
    return checkpoints


def build_dataset(out: str | Path, owner: str = OWNER_PLACEHOLDER, checkpoints: Sequence[str | Path] = (),
                  weights: str | Path | None = None, wheelhouse: str | Path | None = None) -> list[Path]:
    """Build the utility dataset into the new or empty folder `out`; returns its files."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DfdcError("exists and is not empty: build the dataset into a new folder", out)
    if wheelhouse is not None and not Path(wheelhouse).is_dir():
        raise DfdcError("wheelhouse folder not found", wheelhouse)
    ckpts = _checked_checkpoints([Path(c) for c in checkpoints])
    weight_files = sorted({f for name in list_detectors() for f in detector_files(name, weights)})  # any --detector works there
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        build_wheel(staging)
        download_wheels(staging, Path(wheelhouse) if wheelhouse else None)
        problems = check_wheels(staging)
        if problems:
            raise DfdcError(f"the dataset would not install on Kaggle: {'; '.join(problems)}")
        for path in [*weight_files, *ckpts]:
            shutil.copyfile(path, staging / path.name)
        (staging / DATASET_FILE).write_text(json.dumps(dataset_metadata(owner), indent=2) + "\n")
        staging.chmod(0o755)  # mkdtemp makes it owner-only
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(out.iterdir())
