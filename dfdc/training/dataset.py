"""Training data from the face cache (`dfdc extract`): clips, single crops, folds and a balanced sampler.

Only the main track (track 0) of a video is used: in a FAKE video with two people only one may be
manipulated, so the other tracks' labels are unknown. Labels are 1.0 for FAKE, 0.0 for REAL. With
`blends`, each REAL item also comes that many times more as a self-blended fake of itself (label
1.0; training/blend.py), so a model learns the blend's seam that face swaps share, not the people.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from ..defaults import SELF_BLENDS
from ..errors import DfdcError
from ..faces.sheet import contact_sheet
from ..metadata import assign_folds
from ..models.clips import clip_windows
from .augment import ClipAugment, denormalise

Transform = Callable[[np.ndarray, np.random.Generator], torch.Tensor]


def read_index(cache: str | Path) -> pd.DataFrame:
    """The cache's usable videos: rows of index.csv with status "done"."""
    path = Path(cache) / "index.csv"
    if not path.is_file():
        raise DfdcError("no index.csv: not a face cache (run `dfdc extract` first)", cache)
    index = pd.read_csv(path, keep_default_na=False, na_values={"original": [""], "error": [""]})
    done = index[index["status"] == "done"].reset_index(drop=True)
    if done.empty:
        raise DfdcError("the cache holds no finished videos", cache)
    return done


def split_folds(index: pd.DataFrame, fold: int, folds: int = 5, seed: int = 0,
                by: str = "cluster") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, val) with fold `fold` of `folds` as validation, grouped by cluster (a fake and its
    original never sit on both sides) or by part (a folder of the data root is never split); the
    same index and seed give the same split."""
    if not 0 <= fold < folds:
        raise DfdcError(f"fold must be within 0..{folds - 1}, not {fold}")
    val = assign_folds(index, k=folds, by=by, seed=seed)["fold"] == fold
    return index[~val].reset_index(drop=True), index[val].reset_index(drop=True)


class _CacheDataset(Dataset):
    """Reading a video's main-track crops from the cache, with a per-process random generator."""

    def __init__(self, cache: str | Path, index: pd.DataFrame | None, transform: Transform | None,
                 blends: int = 0) -> None:
        self.cache = Path(cache)
        self.index = read_index(cache) if index is None else index.reset_index(drop=True)
        if transform is None:
            size = json.loads((self.cache / "settings.json").read_text())["size"]
            transform = ClipAugment(size, train=False)
        if blends < 0 or (blends and not (isinstance(transform, ClipAugment) and transform.train)):
            raise DfdcError(f"self-blends need a training ClipAugment and a count of at least 0, not {blends}")
        self.transform, self.blends = transform, blends
        self.blend_transform = replace(transform, p_blend=1.0) if blends else None
        self._rng: tuple[int, np.random.Generator] | None = None
        self._frames: dict[int, tuple[Path, list[int]]] = {}

    def rng(self) -> np.random.Generator:
        """A generator per process, seeded from torch's: DataLoader workers differ and every epoch
        differs, yet all follows from torch.manual_seed."""
        if self._rng is None or self._rng[0] != os.getpid():
            self._rng = (os.getpid(), np.random.default_rng(int(torch.randint(0, 2 ** 62, ()).item())))
        return self._rng[1]

    def frames(self, row: int) -> tuple[Path, list[int]]:
        """The video's folder and the frame indices of its main track (faces.json read once)."""
        if row not in self._frames:
            folder = self.cache / "videos" / Path(self.index.at[row, "video"]).stem
            tracks = json.loads((folder / "faces.json").read_text())["tracks"]
            self._frames[row] = (folder, tracks[0]["frames"] if tracks else [])
        return self._frames[row]

    def load(self, folder: Path, frames: list[int]) -> np.ndarray:
        """(n, H, W, 3) uint8 RGB crops of the main track at these frames."""
        crops = []
        for f in frames:
            image = cv2.imread(str(folder / "crops" / f"t00_f{f:04d}.png"), cv2.IMREAD_COLOR)
            if image is None:
                raise DfdcError("crop missing or unreadable", folder / "crops" / f"t00_f{f:04d}.png")
            crops.append(image[..., ::-1])
        return np.stack(crops)

    def with_blends(self, video: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(order, blended, labels) of items of these videos: every item once, then `blends` more
        times each REAL one, to be shown as its self-blended fake."""
        fake = (self.index["label"] == "FAKE").to_numpy()[video]
        extra = np.tile(np.flatnonzero(~fake), self.blends)
        blended = np.arange(len(video) + len(extra)) >= len(video)
        return np.concatenate([np.arange(len(video)), extra]), blended, np.concatenate([fake, blended[len(video):]])

    def item(self, row: int, crops: np.ndarray, blended: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(crops as the model takes them, label): a self-blended fake of them where `blended`."""
        transform = self.blend_transform if blended else self.transform
        label = 1.0 if blended else float(self.index.at[row, "label"] == "FAKE")
        return transform(crops, self.rng()), torch.tensor(label)


class ClipDataset(_CacheDataset):
    """(T, C, H, W) clips of T consecutive sampled frames of a video's main track, and the label
    (models/clips.py: the same clips `dfdc predict` cuts).

    Training: `clips_per_video` items per video, each at a random start. Evaluation
    (random_start=False): every window of clip_windows, in video order, as predict scores them.
    A track shorter than T holds its last frame.
    """

    def __init__(self, cache: str | Path, index: pd.DataFrame | None = None, frames: int = 10,
                 transform: Transform | None = None, random_start: bool = True, clips_per_video: int = 1,
                 blends: int = 0) -> None:
        super().__init__(cache, index, transform, blends)
        self.length, self.random_start = frames, random_start
        counts = self.index["n_faces"].to_numpy()
        if random_start:
            windows = [[None] * clips_per_video for _ in counts]
        else:
            windows = [clip_windows(int(n), frames) for n in counts]
        items = [(v, w) for v, ws in enumerate(windows) for w in ws]
        self.windows_per_video = np.array([len(ws) for ws in windows])
        order, self.blended, self.labels = self.with_blends(np.array([v for v, _ in items], int))
        self.items = [items[i] for i in order]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        row, window = self.items[i]
        folder, frames = self.frames(row)
        if window is None:
            spare = max(0, len(frames) - self.length)
            start = int(self.rng().integers(0, spare + 1))
            window = np.minimum(np.arange(start, start + self.length), len(frames) - 1)
        picked = [frames[k] for k in window]
        return self.item(row, self.load(folder, picked), self.blended[i])


class FrameDataset(_CacheDataset):
    """(C, H, W) single crops of every main-track frame of every video, and the label (frame models)."""

    def __init__(self, cache: str | Path, index: pd.DataFrame | None = None,
                 transform: Transform | None = None, blends: int = 0) -> None:
        super().__init__(cache, index, transform, blends)
        counts = self.index["n_faces"].to_numpy()
        items = np.stack([np.repeat(np.arange(len(counts)), counts), np.concatenate([np.arange(n) for n in counts])], 1)
        order, self.blended, self.labels = self.with_blends(items[:, 0])
        self.items = items[order]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        row, k = (int(v) for v in self.items[i])
        folder, frames = self.frames(row)
        x, label = self.item(row, self.load(folder, [frames[k]]), self.blended[i])
        return x[0], label


class BalancedSampler(Sampler[int]):
    """REAL and FAKE 1:1 each epoch, using all the data: every item of the larger class once (DFDC
    is ~84% FAKE), and as many of the smaller, taken in turn from its reshuffled items, so each of
    them comes several times, with other frames and augmentations. Deterministic given the seed and
    the epoch (advanced by each iteration, or set_epoch).
    """

    def __init__(self, labels: np.ndarray, seed: int = 0) -> None:
        labels = np.asarray(labels).astype(bool)
        self.fake, self.real = np.flatnonzero(labels), np.flatnonzero(~labels)
        if len(self.fake) == 0 or len(self.real) == 0:
            raise DfdcError(f"cannot balance {len(self.real)} REAL with {len(self.fake)} FAKE items: need both")
        self.seed, self.epoch = seed, 0

    def __len__(self) -> int:
        return 2 * max(len(self.fake), len(self.real))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        fewer, more = sorted((self.real, self.fake), key=len)
        n, m = len(fewer), len(more)
        rest = m % n  # every smaller-class item m // n times, and `rest` more taken in turn across epochs
        start = epoch * rest  # where this epoch starts in the endless stream of the reshuffled smaller class
        rounds = range(start // n, (start + rest - 1) // n + 1) if rest else range(0)
        stream = np.concatenate([np.random.default_rng([self.seed, r]).permutation(fewer) for r in rounds] or [[]])
        taken = np.concatenate([np.tile(fewer, m // n), stream[start % n:start % n + rest]]).astype(int)
        order = np.random.default_rng([self.seed, epoch, 1]).permutation(np.concatenate([more, taken]))
        return iter(order.tolist())


def show_batch(cache: str | Path, out_png: str | Path, n: int = 8, frames: int = 10, size: int = 224,
               seed: int = 0, transform: ClipAugment | None = None,
               blends: int = SELF_BLENDS) -> tuple[Path, list[str]]:
    """A PNG grid of n training clips as the model sees them (augmented), one row per clip, half
    REAL and half FAKE, so a person can check the augmentations by eye; with `blends` (as `dfdc
    train` draws them) some FAKE rows are self-blended fakes of REAL clips. The PNG and each row's title."""
    transform = transform or ClipAugment(size)
    torch.manual_seed(seed)
    data = ClipDataset(cache, frames=frames, transform=transform, blends=blends)
    picked = list(BalancedSampler(data.labels, seed))[:n]
    rows = []
    for i in picked:
        clip, label = data[i]
        what = "self-blended FAKE" if data.blended[i] else ("FAKE" if label else "REAL")
        video = data.index.at[data.items[i][0], "video"]
        rows.append((f"{video} {what}", denormalise(clip, transform.mean, transform.std)))
    return contact_sheet(rows, Path(out_png), columns=frames, thumb=min(size, 160)), [title for title, _ in rows]
