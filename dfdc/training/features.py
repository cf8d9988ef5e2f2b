"""Frozen-backbone features of every cached main-track crop, computed once and kept on disk.

Cross-validating K models that each fine-tune a whole backbone costs hours on a CPU; with the
backbone (or its early blocks) frozen, its features are the same for every fold, so they are
computed once and each fold trains only what follows: a head in seconds, or the last blocks in
about a minute. The file is named by what shaped it, so a changed setting recomputes.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..atomic import atomic_path
from ..device import scoring_precision
from . import augment as augment_code
from . import blend, dataset
from .augment import ClipAugment
from .dataset import FrameDataset

log = logging.getLogger("dfdc")
# The code that reads the crops and draws each view (its ranges live in the code, not in the key's
# settings): features drawn by an earlier version of it are computed again, not reused.
DRAWING_CODE = (dataset, augment_code, blend)


def crop_features(features: Callable[[torch.Tensor], torch.Tensor], cache: Path, index: pd.DataFrame,
                  augments: Sequence[ClipAugment], device: torch.device, seed: int = 0,
                  batch_size: int = 32) -> np.ndarray:
    """(crops, views, ...) float32 features of every main-track crop, video by video in index order, one
    view per augment (each drawn from `seed` and its place): e.g. the crop as predict sees it, then
    random training augmentations of it, so a head trained on cached features still sees JPEG, blur,
    flips and the rest. Computed in the precision predict scores in on this device (inference_dtype):
    what the trained blocks learn from is what they will be given, at twice float32's speed on a
    CPU with native bfloat16."""
    out = []
    views = len(augments)
    for view, augment in enumerate(augments):
        torch.manual_seed(seed + view)  # the dataset's generator follows torch's seed
        data = FrameDataset(cache, index, augment)
        loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=0)
        maps = []
        with torch.inference_mode(), scoring_precision(device):
            for x, _ in tqdm(loader, desc=f"features (view {view + 1}/{views})", unit="batch", leave=False):
                maps.append(features(x.to(device)).float().cpu().numpy())
        out.append(np.concatenate(maps))
    return np.stack(out, 1)


def cached_features(folder: Path, key: dict, compute) -> np.ndarray:
    """The features stored under `folder` for `key` (a JSON-able dict of what shaped them) and the
    source of DRAWING_CODE, or compute() them and store them atomically."""
    code = "".join(inspect.getsource(module) for module in DRAWING_CODE)
    key = {**key, "code": hashlib.sha256(code.encode()).hexdigest()[:16]}
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
