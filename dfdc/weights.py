"""Finding and verifying weight files: --weights, then $DFDC_WEIGHTS, then ./weights."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .errors import DfdcError

# sha256 of the files of the Kaggle "blazeface-pytorch" dataset (hollance/BlazeFace-PyTorch).
BLAZEFACE_FILES = {
    "blazeface.pth": "54ecff653feaaaf1f7d44b6aff28fd2fc50e483a4e847563b6dd261369c43ba4",
    "anchors.npy": "a10bb2fb93ab54ca426d6c750bfc3aad685028a16dcf231357d03694f261fd95",
    "blazefaceback.pth": "e2c03bb3ae45e769eaaa0a7cc7d4f61f54a5e3fbae6367d870166702e7022b11",
    "anchorsback.npy": "a10bb2fb93ab54ca426d6c750bfc3aad685028a16dcf231357d03694f261fd95",
}


def weight_dirs(flag: str | Path | None = None) -> list[Path]:
    """Where to look, in order: the flag, $DFDC_WEIGHTS, ./weights."""
    if flag is not None:
        return [Path(flag)]
    dirs = []
    if os.environ.get("DFDC_WEIGHTS"):
        dirs.append(Path(os.environ["DFDC_WEIGHTS"]))
    dirs.append(Path("weights"))
    return dirs


def find_weight(name: str, flag: str | Path | None = None, subdir: str = "blazeface") -> Path:
    """Path of weight file `name`, directly in a weights dir or in its `subdir`."""
    searched = []
    for root in weight_dirs(flag):
        for candidate in (root / name, root / subdir / name):
            searched.append(str(candidate))
            if candidate.is_file():
                return candidate
    raise DfdcError(
        f"weights file not found (looked in {', '.join(searched)}); pass --weights DIR "
        "or set DFDC_WEIGHTS (see weights/README.md)",
        name,
    )


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified(path: Path, expected: str) -> Path:
    """The path, after checking its sha256: a corrupt or foreign file is refused by name."""
    actual = sha256(path)
    if actual != expected:
        raise DfdcError(f"wrong checksum (sha256 {actual[:12]}..., expected {expected[:12]}...)", path)
    return path


def blazeface_files(flag: str | Path | None = None, back: bool = False) -> tuple[Path, Path]:
    """Verified (state dict, anchors) paths of the front or back BlazeFace model."""
    names = ("blazefaceback.pth", "anchorsback.npy") if back else ("blazeface.pth", "anchors.npy")
    return tuple(verified(find_weight(n, flag), BLAZEFACE_FILES[n]) for n in names)  # type: ignore[return-value]
