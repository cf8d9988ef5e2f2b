"""Scoring in the device's fast precision (bfloat16 on CPUs that have it, half on CUDA) moves the
probabilities of real face crops by far less than any model's error."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import dfdc.inference.ensemble as ensemble
from dfdc.device import inference_dtype, scoring_batch
from dfdc.inference.ensemble import load_members, score_tracks
from dfdc.models.checkpoint import init_checkpoint


def _shifted_crops(face_images_dir: Path, name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """n 224 px crops of a real face image, each shifted by up to 12 px: a track's crops as they differ."""
    image = cv2.cvtColor(cv2.imread(str(face_images_dir / name)), cv2.COLOR_BGR2RGB)
    return np.stack([cv2.resize(np.roll(image, (int(dy), int(dx)), (0, 1)), (224, 224))
                     for dy, dx in rng.integers(-12, 12, (n, 2))])


@pytest.mark.parametrize("model", ["frame", "sequence"])
def test_fast_precision_scores_real_faces_as_float32_does(model: str, face_images_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    device = torch.device("cpu")
    torch.manual_seed(0)
    ckpt = init_checkpoint(tmp_path / "m.pt", model, pretrained="lite0", backbone="tf_efficientnet_lite0")
    crops = _shifted_crops(face_images_dir, "1face.png", 12, np.random.default_rng(0))
    fast = load_members([ckpt], None, device)[0]
    assert next(fast.model.parameters()).dtype == inference_dtype(device)
    p_fast = score_tracks(fast, [[crops]], 8, device)[0][0]
    monkeypatch.setattr(ensemble, "inference_dtype", lambda device: torch.float32)
    exact = load_members([ckpt], None, device)[0]
    p_exact = score_tracks(exact, [[crops]], 8, device)[0][0]
    assert len(p_fast) == len(p_exact) > 0
    assert np.abs(p_fast - p_exact).max() < 0.02
    if model == "frame":  # the crops' scores differ by several times what the precision moves them
        assert np.abs(p_fast - p_exact).max() < 0.25 * np.ptp(p_exact)


def test_the_cpus_small_scoring_batch_gives_the_scores_a_full_batch_gives(face_images_dir: Path, tmp_path: Path) -> None:
    """On a CPU predict scores 8 crops per model call (`scoring_batch`: faster per crop than 32 or 64, the
    activations staying in cache); the batch size must not move a crop's probability."""
    device = torch.device("cpu")
    torch.manual_seed(0)
    ckpt = init_checkpoint(tmp_path / "m.pt", "frame", pretrained="lite0", backbone="tf_efficientnet_lite0")
    member = load_members([ckpt], None, device)[0]
    rng = np.random.default_rng(1)
    # two videos: batches cross from one to the next
    videos = [[_shifted_crops(face_images_dir, name, n, rng)] for name, n in (("1face.png", 21), ("3faces.png", 19))]
    small = score_tracks(member, videos, scoring_batch(device), device)
    full = score_tracks(member, videos, 64, device)
    for a, b in zip(small, full):
        assert len(a[0]) == len(b[0]) and np.ptp(b[0]) > 0.01
        assert np.abs(a[0] - b[0]).max() < 0.002
