"""Shared test fixtures: the real data in ../shared (or $DFDC_SHARED), never copied into the repo."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import CACHE_SETTINGS

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




@pytest.fixture(scope="session")
def built(tmp_path_factory, face_images_dir, weights_dir) -> Path:
    """8 small synthetic videos (3 clusters: an original and its fakes each) and their face cache,
    made once a session: base/sample (make-sample) and base/cache (extract)."""
    from dfdc.sample.synth import make_sample
    from dfdc.training.extract import run_extract

    base = tmp_path_factory.getbasetemp() / "extracted"
    make_sample(base / "sample", videos=8, seed=1, size=(320, 180), seconds=1.5, fps=10,
                faces_from=face_images_dir, weights=weights_dir)
    summary = run_extract(base / "sample", base / "cache", weights=weights_dir, **CACHE_SETTINGS)
    (base / "summary.json").write_text(json.dumps(summary))
    return base


@pytest.fixture
def videos(sample_dir, tmp_path):
    """The five real sample videos, linked into a folder of their own."""
    folder = tmp_path / "videos"
    folder.mkdir()
    for p in sample_dir.glob("*.mp4"):
        (folder / p.name).symlink_to(p)
    return folder
