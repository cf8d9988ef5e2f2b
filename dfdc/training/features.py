"""Frozen-backbone features of every cached main-track crop, computed once and kept on disk.

Cross-validating K models that each fine-tune a backbone costs hours on a CPU; with the backbone
frozen, its features are the same for every fold, so they are computed once and each fold only
fits the head (seconds). The file is named by what shaped it, so a changed setting recomputes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..atomic import atomic_path
from .augment import ClipAugment
from .dataset import FrameDataset

log = logging.getLogger("dfdc")


def crop_features(model: nn.Module, cache: Path, index: pd.DataFrame, size: int, mean, std,
                  device: torch.device, batch_size: int = 32) -> np.ndarray:
    """(crops, F) float32: model.features of every main-track crop, video by video in index order."""
    data = FrameDataset(cache, index, ClipAugment(size, tuple(mean), tuple(std), train=False))
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=0)
    model.eval()
    out = []
    with torch.inference_mode():
        for x, _ in tqdm(loader, desc="features", unit="batch", leave=False):
            out.append(model.features(x.to(device)).float().cpu().numpy())
    return np.concatenate(out)


def cached_features(folder: Path, key: dict, compute) -> np.ndarray:
    """The features stored under `folder` for `key` (a JSON-able dict of what shaped them), or
    compute() them and store them atomically."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = folder / f"features-{digest}.npy"
    if path.is_file():
        log.info("features: reusing %s", path)
        return np.load(path)
    features = compute()
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, features)
    (folder / f"features-{digest}.json").write_text(json.dumps(key, indent=1))
    return features
