"""Training data from the face cache: clip and frame datasets, folds, the 1:1 sampler, augmentation."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import dfdc.training.features as features
from dfdc.errors import DfdcError
from dfdc.models.clips import clip_windows
from dfdc.training.augment import ClipAugment, denormalise
from dfdc.training.dataset import (
    BalancedSampler,
    ClipDataset,
    FrameDataset,
    read_index,
    show_batch,
    split_folds,
)


@pytest.fixture(scope="module")
def cache(built):
    return built / "cache"


def test_clip_batches_have_the_shape_and_labels_of_the_index(cache):
    torch.manual_seed(0)
    data = ClipDataset(cache, frames=10, transform=ClipAugment(48))
    index = read_index(cache)
    assert len(data) == len(index) == 8
    loader = DataLoader(data, batch_size=3, sampler=BalancedSampler(data.labels), num_workers=2, drop_last=True)
    seen = []
    for x, y in loader:
        assert x.shape == (3, 10, 3, 48, 48) and x.dtype == torch.float32 and y.dtype == torch.float32
        seen += y.tolist()
    assert len(seen) == 9 and 4 <= sum(seen) <= 5  # 5 FAKE once, the 3 REAL drawn 5 times in all: 10, 9 full
    for i in range(len(data)):
        assert data[i][1].item() == float(index.at[i, "label"] == "FAKE")


def test_evaluation_clips_are_the_windows_and_repeatable(cache):
    data = ClipDataset(cache, frames=10, transform=ClipAugment(64, train=False), random_start=False)
    a, b = data[1][0], data[1][0]
    assert torch.equal(a, b)
    folder, frames = data.frames(0)  # 12 samples, clips of 10: windows start at the 1st and the 3rd
    third = cv2.imread(str(folder / "crops" / f"t00_f{frames[2]:04d}.png"))[..., ::-1]
    assert np.abs(denormalise(a[0]).astype(int) - third).max() <= 1


def test_frame_dataset_gives_every_main_track_crop(cache):
    data = FrameDataset(cache)
    index = read_index(cache)
    assert len(data) == index["n_faces"].sum() == len(data.labels)
    x, y = data[len(data) - 1]
    assert x.shape == (3, 64, 64) and y.item() == float(index["label"].iloc[-1] == "FAKE")


@pytest.mark.parametrize("kind", [FrameDataset, ClipDataset])
def test_self_blends_add_fakes_made_from_the_real_items(cache, kind):
    """blends=2: every REAL item comes twice more, labelled FAKE, as a self-blend of the same crops:
    the face centre altered, the corners (background) as they were."""
    only_blend = ClipAugment(64, p_flip=0, p_jitter=0, p_cutout=0, p_downscale=0, p_blur=0, p_noise=0, p_jpeg=0)
    fixed = {"random_start": False} if kind is ClipDataset else {}  # the same frames in both datasets
    plain = kind(cache, transform=only_blend, **fixed)
    data = kind(cache, transform=only_blend, blends=2, **fixed)
    real = np.flatnonzero(~plain.labels)
    assert len(real) and len(data) == len(plain) + 2 * len(real)
    assert data.labels[:len(plain)].tolist() == plain.labels.tolist() and data.labels[len(plain):].all()
    assert int(data.blended.sum()) == 2 * len(real) and BalancedSampler(data.labels)  # still two classes
    for k, i in enumerate(real):
        x, y = plain[i]
        b, yb = data[len(plain) + k]  # the first blended copy of REAL item i
        assert y.item() == 0.0 and yb.item() == 1.0
        a, b = denormalise(x).astype(int), denormalise(b).astype(int)
        assert np.abs(a - b)[..., 28:36, 28:36, :].mean() > 1.0  # the face centre was blended
        assert np.array_equal(a[..., :4, :4, :], b[..., :4, :4, :])  # a corner untouched
    with pytest.raises(DfdcError, match="self-blends"):
        kind(cache, transform=ClipAugment(64, train=False), blends=1)


def test_folds_never_split_a_cluster(cache):
    index = read_index(cache)
    vals = []
    for fold in range(3):
        train, val = split_folds(index, fold, folds=3)
        assert len(train) + len(val) == len(index) and len(val) > 0
        assert not set(train["cluster"]) & set(val["cluster"])
        vals += list(val["video"])
    assert sorted(vals) == sorted(index["video"])
    assert split_folds(index, 2, folds=3)[1].equals(val)  # the same split every time


@pytest.mark.parametrize("n_real,n_fake", [(3, 7), (7, 3), (4, 4), (2, 11)])
def test_epoch_uses_every_item_of_the_larger_class_and_balances_with_the_smaller(n_real, n_fake):
    labels = np.array([False] * n_real + [True] * n_fake)
    rng = np.random.default_rng(0)
    labels = labels[rng.permutation(len(labels))]
    sampler = BalancedSampler(labels, seed=5)
    more, fewer = max(n_real, n_fake), min(n_real, n_fake)
    major = bool(n_fake >= n_real)
    epochs = [list(sampler) for _ in range(3)]
    for order in epochs:
        assert len(order) == len(sampler) == 2 * more
        assert labels[order].sum() == more  # as many FAKE as REAL
        counts = np.bincount(order, minlength=len(labels))
        assert (counts[labels == major] == 1).all()  # every item of the larger class, once
        minor = counts[labels != major]  # the smaller class drawn in turn: each more / fewer times
        assert minor.min() >= more // fewer and minor.max() <= -(-more // fewer)
    again = BalancedSampler(labels, seed=5)
    assert [list(again) for _ in range(3)] == epochs
    again.set_epoch(1)
    assert list(again) == epochs[1]
    assert list(BalancedSampler(labels, seed=6)) != epochs[0]


def test_clips_are_the_windows_predict_cuts(cache):
    """Validation clips are every window of models/clips.py over the cached samples, in order; training
    draws clips_per_video random-start clips of the same length per video."""
    index = read_index(cache)
    val = ClipDataset(cache, index, frames=4, random_start=False)
    assert list(val.windows_per_video) == [len(clip_windows(int(n), 4)) for n in index["n_faces"]]
    assert len(val) == sum(val.windows_per_video)
    train = ClipDataset(cache, index, frames=4, clips_per_video=3)
    assert len(train) == 3 * len(index) and train.labels.sum() == 3 * (index["label"] == "FAKE").sum()
    assert train[0][0].shape[0] == 4


def test_augmentation_draws_once_per_clip():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)
    clip = np.stack([frame] * 4)
    every = ClipAugment(64, p_flip=1, p_jitter=1, p_cutout=1, p_downscale=1, p_blur=1, p_noise=0, p_jpeg=1)
    for seed in range(5):
        x = every(clip, np.random.default_rng(seed))
        assert x.shape == (4, 3, 64, 64) and x.dtype == torch.float32
        assert all(torch.equal(x[0], x[t]) for t in range(1, 4))  # same draw on every frame

    moving = rng.integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    flipped = ClipAugment(64).apply(moving, {"flip": True})
    assert np.array_equal(flipped, moving[:, :, ::-1])  # a flip flips all frames
    plain = ClipAugment(64, train=False)(moving)
    assert np.abs(denormalise(plain).astype(int) - moving).max() <= 1  # eval: normalise only
    noisy = ClipAugment(64, p_noise=1).apply(moving, {"noise": 5.0}, rng)
    assert noisy.dtype == np.uint8 and 2 < np.abs(noisy.astype(int) - moving).mean() < 8


def test_show_batch_draws_a_grid(cache, tmp_path):
    path, titles = show_batch(cache, tmp_path / "batch.png", n=8, frames=5, size=48)
    image = cv2.imread(str(path))
    assert image is not None and image.shape[1] == 5 * 48 and image.shape[0] > 8 * 48 and len(titles) == 8
    # half REAL, half FAKE; as `dfdc train` draws them, some FAKE rows are self-blends of REAL videos' clips
    labels = dict(zip(read_index(cache)["video"], read_index(cache)["label"]))
    blended = [t.split()[0] for t in titles if t.endswith("self-blended FAKE")]
    assert sum(t.endswith(" REAL") for t in titles) == 4 and blended
    assert all(labels[v] == "REAL" for v in blended)
    _, plain = show_batch(cache, tmp_path / "plain.png", n=8, frames=5, size=48, blends=0)
    assert not any("self-blended" in t for t in plain)


def test_cached_features_are_computed_again_when_the_drawing_code_changes(tmp_path, monkeypatch):
    calls = []

    def compute():
        calls.append(1)
        return np.full((2, 3), len(calls), np.float32)

    key = {"size": 224, "views": 2}
    first = features.cached_features(tmp_path, key, compute)
    again = features.cached_features(tmp_path, key, compute)
    assert len(calls) == 1 and np.array_equal(first, again)  # the same settings and code: read back
    saved = json.loads(next(tmp_path.glob("features-*.json")).read_text())
    assert saved["size"] == 224 and len(saved["code"]) == 16
    monkeypatch.setattr(features, "DRAWING_CODE", features.DRAWING_CODE[:-1])  # as if blend.py had changed
    changed = features.cached_features(tmp_path, key, compute)
    assert len(calls) == 2 and changed[0, 0] == 2 and len(list(tmp_path.glob("features-*.npy"))) == 2
