"""Training data from the face cache: clip and frame datasets, folds, the 1:1 sampler, augmentation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

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
    loader = DataLoader(data, batch_size=3, sampler=BalancedSampler(data.labels), num_workers=2)
    seen = []
    for x, y in loader:
        assert x.shape == (3, 10, 3, 48, 48) and x.dtype == torch.float32 and y.dtype == torch.float32
        seen += y.tolist()
    assert sorted(seen) == [0.0] * 3 + [1.0] * 3  # 3 REAL, as many FAKE
    for i in range(len(data)):
        assert data[i][1].item() == float(index.at[i, "label"] == "FAKE")


def test_evaluation_clips_are_centred_and_repeatable(cache):
    data = ClipDataset(cache, frames=10, transform=ClipAugment(64, train=False), random_start=False)
    a, b = data[0][0], data[0][0]
    assert torch.equal(a, b)
    folder, frames = data.frames(0)  # 12 frames: a centred clip of 10 starts at the 2nd
    first = cv2.imread(str(folder / "crops" / f"t00_f{frames[1]:04d}.png"))[..., ::-1]
    assert np.abs(denormalise(a[0]).astype(int) - first).max() <= 1


def test_frame_dataset_gives_every_main_track_crop(cache):
    data = FrameDataset(cache)
    index = read_index(cache)
    assert len(data) == index["n_faces"].sum() == len(data.labels)
    x, y = data[len(data) - 1]
    assert x.shape == (3, 64, 64) and y.item() == float(index["label"].iloc[-1] == "FAKE")


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


@pytest.mark.parametrize("n_real,n_fake", [(3, 7), (7, 3), (4, 4)])
def test_sampler_is_one_to_one_and_goes_through_everything(n_real, n_fake):
    labels = np.array([False] * n_real + [True] * n_fake)
    rng = np.random.default_rng(0)
    labels = labels[rng.permutation(len(labels))]
    sampler = BalancedSampler(labels, seed=5)
    fewer = min(n_real, n_fake)
    seen = set()
    epochs = [list(sampler) for _ in range(3)]
    for order in epochs:
        assert len(order) == len(sampler) == 2 * fewer
        assert labels[order].sum() == fewer  # as many FAKE as REAL
        seen |= set(order)
    assert seen == set(range(len(labels)))  # three epochs reach every item of the larger class
    again = BalancedSampler(labels, seed=5)
    assert [list(again) for _ in range(3)] == epochs
    again.set_epoch(1)
    assert list(again) == epochs[1]
    assert list(BalancedSampler(labels, seed=6)) != epochs[0]


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
    path = show_batch(cache, tmp_path / "batch.png", n=4, frames=5, size=48)
    image = cv2.imread(str(path))
    assert image is not None and image.shape[1] == 5 * 48 and image.shape[0] > 4 * 48
