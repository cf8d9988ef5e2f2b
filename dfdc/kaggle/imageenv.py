"""Environments that hold only what the Kaggle image provides, for dry runs.

Two kinds. By default the distributions of image.IMAGE and their dependencies are exposed from
this interpreter's site-packages (reinstalling torch per run is out of the question): a folder
of symlinks to their files and .dist-info (so pip sees them installed), put on the venv's path
by a .pth file. The folder lies outside the venv: pip installs the dataset's wheels into the venv
and never touches the files behind the links. The dataset's own distributions are left out of
the folder, so their wheels are the ones installed and imported. That is this machine's Python
and versions, not the image's: `differences` says which differ.

Or an image environment made once by `dfdc kaggle image-env DIR` (build_image_env): a venv of
the image's Python with image.IMAGE_VERSIONS installed from PyPI (torch's CUDA build, as on
Kaggle: about 8 GB). A dry run then makes the kernel's venv from that Python, with DIR's
site-packages on its path by a .pth file: the dataset's wheels go into the kernel's venv and
shadow the image's copies (as pip replaces them on Kaggle), DIR stays as it was.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ..errors import DfdcError
from .image import DATASET_WHEELS, IMAGE, IMAGE_VERSIONS, PYTHON, differences

VERSIONS = """import json, sys
from importlib import metadata
out = {}
for name in sys.argv[1:]:
    try:
        out[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        out[name] = None
print(json.dumps({"python": sys.version.split()[0], "versions": out}))
"""


def closure(names: tuple[str, ...]) -> set[str]:
    """The installed distributions `names` need, themselves included (extras followed, markers evaluated)."""
    seen: set[tuple[str, str]] = set()
    todo = [(canonicalize_name(n), "") for n in names]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            raise DfdcError(f"{name} is not installed here, so the dry run cannot provide it "
                            "as the Kaggle image would") from None
        for line in requires:
            req = Requirement(line)
            if req.marker.evaluate({"extra": extra}) if req.marker else not extra:
                dep = canonicalize_name(req.name)
                todo += [(dep, ""), *((dep, e) for e in req.extras)]
    return {name for name, _ in seen}


def expose(site: Path) -> list[str]:
    """Fill `site` with symlinks to the files of the image's distributions; returns their names."""
    site.mkdir(parents=True, exist_ok=True)
    names = sorted(closure(IMAGE) - {canonicalize_name(n) for n in DATASET_WHEELS})
    for name in names:
        dist = metadata.distribution(name)
        root = Path(dist.locate_file(""))
        for top in sorted({Path(f).parts[0] for f in dist.files or [] if not str(f).startswith("..")}):
            link = site / top
            if top != "__pycache__" and not top.endswith(".pth") and (root / top).exists() and not link.exists():
                link.symlink_to(root / top)
    return names


def _site_packages(python: Path) -> list[str]:
    """purelib and platlib of the environment of `python` (one folder on Linux)."""
    code = "import json, sysconfig; print(json.dumps(sorted({sysconfig.get_path('purelib'), sysconfig.get_path('platlib')})))"
    return json.loads(subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True).stdout)


def image_python(image_env: str | Path) -> Path:
    """The python of an image environment made by `dfdc kaggle image-env`, checked."""
    python = Path(image_env) / "bin" / "python"
    if not python.is_file():
        raise DfdcError("not an image environment (no bin/python): make one with `dfdc kaggle image-env DIR`",
                        image_env)
    return python


def make_image_env(folder: str | Path, image_env: str | Path | None = None) -> Path:
    """A venv at folder/venv seeing only the image's distributions; returns its python.

    From this interpreter's (folder/image holds the links), or from the image environment `image_env`."""
    folder = Path(folder)
    venv = folder / "venv"
    if image_env is None:
        base, sites = Path(sys.executable), [str(folder / "image")]
        expose(folder / "image")
    else:
        base = image_python(image_env)
        sites = _site_packages(base)
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = next(Path(p) for p in _site_packages(python))
    (purelib / "kaggle-image.pth").write_text("".join(f"{s}\n" for s in sites))
    return python


def env_versions(python: str | Path) -> tuple[str, dict[str, str | None]]:
    """The Python version of `python` and the versions of the image's distributions it sees."""
    done = subprocess.run([str(python), "-c", VERSIONS, *IMAGE], capture_output=True, text=True)
    if done.returncode != 0:
        raise DfdcError(f"cannot run the environment's python: {(done.stderr.strip().splitlines() or ['?'])[-1]}",
                        python)
    found = json.loads(done.stdout)
    return found["python"], found["versions"]


def kernel_differences(python: str | Path) -> list[str]:
    """What the kernel's environment has otherwise than the image (the dataset's own wheels aside)."""
    version, versions = env_versions(python)
    return differences(version, versions, tuple(n for n in IMAGE if n not in DATASET_WHEELS))


def find_python(wanted: str = PYTHON) -> Path | None:
    """An interpreter of Python `wanted` (major.minor): on PATH, or one pyenv installed."""
    found = shutil.which(f"python{wanted}")
    candidates = [found] if found else []
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates += sorted(glob.glob(f"{root}/versions/{wanted}.*/bin/python{wanted}"), reverse=True)
    for candidate in candidates:
        done = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                              capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip() == wanted:
            return Path(candidate)
    return None


def build_image_env(out: str | Path, python: str | Path | None = None) -> Path:
    """A venv at `out` of the image's Python with IMAGE_VERSIONS installed (from PyPI); returns its python."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DfdcError("exists and is not empty: make the image environment in a new folder", out)
    base = Path(python) if python else find_python()
    if base is None:
        raise DfdcError(f"no Python {PYTHON} here (the Kaggle image's): install one (e.g. `pyenv install {PYTHON}`) "
                        "and pass --python PATH")
    version, _ = env_versions(base)
    if ".".join(version.split(".")[:2]) != PYTHON:
        raise DfdcError(f"is Python {version}, the Kaggle image has {PYTHON}", base)
    subprocess.run([str(base), "-m", "venv", str(out)], check=True)
    env_python = out / "bin" / "python"
    pins = [f"{name}=={version}" for name, version in IMAGE_VERSIONS.items()]
    done = subprocess.run([str(env_python), "-m", "pip", "install", "-q", *pins], capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.startswith("ERROR")]
        raise DfdcError(f"pip install of the image's versions failed: {(lines or ['see pip'])[-1].strip()} "
                        f"(the folder is left as it was: remove it before trying again)", out)
    return env_python

