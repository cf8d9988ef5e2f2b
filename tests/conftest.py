"""Shared test fixtures: the real data in ../shared (or $DFDC_SHARED), never copied into the repo."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DFDC_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"test data not found at {SHARED}; set DFDC_SHARED")
    return SHARED


@pytest.fixture(scope="session")
def sample_dir(shared: Path) -> Path:
    """Five real DFDC videos (2 REAL, 3 FAKE, one portrait) with their metadata.json."""
    return shared / "data" / "dfdc_sample"


@pytest.fixture(scope="session")
def face_images_dir(shared: Path) -> Path:
    """128x128 images with 1, 3 and 4 faces."""
    return shared / "data" / "face_images"


@pytest.fixture(scope="session")
def weights_dir(shared: Path) -> Path:
    """Holds blazeface/ with the BlazeFace front and back weights and anchors."""
    return shared / "weights"


CACHE_SETTINGS = {"frames": 12, "size": 64, "min_faces": 6}  # small and quick; 12 frames hold 10-frame clips


@pytest.fixture(scope="session")
def built(tmp_path_factory, face_images_dir, weights_dir) -> Path:
    """8 small synthetic videos (3 clusters: an original and its fakes each) and their face cache,
    made once a session: base/sample (make-sample) and base/cache (extract)."""
    from dfdc.extract import run_extract
    from dfdc.synth import make_sample

    base = tmp_path_factory.getbasetemp() / "extracted"
    make_sample(base / "sample", videos=8, seed=1, size=(320, 180), seconds=1.5, fps=10,
                faces_from=face_images_dir, weights=weights_dir)
    summary = run_extract(base / "sample", base / "cache", weights=weights_dir, **CACHE_SETTINGS)
    (base / "summary.json").write_text(json.dumps(summary))
    return base


def add_bad_videos(folder: Path, sample_dir: Path) -> list[str]:
    """Write the bad inputs every job must survive into folder: an empty file, a text file named
    .mp4, a real video cut in half, and a real video without a face. Returns their names."""
    import numpy as np

    from dfdc.encode import write_video

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "text.mp4").write_text("a text file, named like a video\n")
    data = (sample_dir / "knqhpwoigk.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])
    rng = np.random.default_rng(0)
    write_video(folder / "noface.mp4", [rng.integers(0, 255, (180, 320, 3), np.uint8) for _ in range(12)])
    return ["empty.mp4", "text.mp4", "truncated.mp4", "noface.mp4"]
