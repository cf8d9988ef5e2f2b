"""A virtual environment that holds only what the Kaggle image provides, for dry runs.

Reinstalling torch (GBs) per run is out of the question, so the distributions of image.IMAGE and
their dependencies are exposed from this interpreter's site-packages: a folder of symlinks to
their files and .dist-info (so pip sees them installed), put on the venv's path by a .pth file.
The folder lies outside the venv: pip installs the dataset's wheels into the venv and never
touches the files behind the links. The dataset's own distributions are left out of the
folder, so their wheels are the ones installed and imported.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ..errors import DfdcError
from .image import DATASET_WHEELS, IMAGE


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


def make_image_env(folder: str | Path) -> Path:
    """A venv at folder/venv seeing only the image's distributions (from folder/image); returns its python."""
    folder = Path(folder)
    site = folder / "image"
    expose(site)
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (purelib / "kaggle-image.pth").write_text(f"{site}\n")
    return venv / "bin" / "python"
