"""Shared test fixtures: the real data in ../shared (or $DFDC_SHARED), never copied into the repo."""

from __future__ import annotations

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
