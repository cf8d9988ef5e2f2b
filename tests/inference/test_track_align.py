"""A model that aligns each track by its own statistics gets whole tracks from predict's scorer: a
track's scores do not depend on what else is scored with it, nor on the batch size."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from dfdc.inference.ensemble import load_members, score_tracks
from dfdc.models.checkpoint import init_checkpoint


def _crops(path: Path, n: int, seed: int) -> np.ndarray:
    """n 224 px crops of a real face image, each shifted a little as a track's crops are."""
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    rng = np.random.default_rng(seed)
    return np.stack([cv2.resize(np.roll(image, (int(dy), int(dx)), (0, 1)), (224, 224))
                     for dy, dx in rng.integers(-12, 12, (n, 2))])


def test_each_track_is_scored_whole_and_by_itself(face_images_dir: Path, tmp_path: Path) -> None:
    device = torch.device("cpu")
    torch.manual_seed(0)
    ckpt = init_checkpoint(tmp_path / "m.pt", "frame", pretrained="lite0", backbone="tf_efficientnet_lite0",
                           pooling="last", align_block=-2)
    member = load_members([ckpt], None, device)[0]  # in the device's precision, BatchNorms folded
    assert member.model.align is not None
    a, b = _crops(face_images_dir / "1face.png", 12, 0), _crops(face_images_dir / "4faces.png", 7, 1)
    mixed = np.concatenate([a[:5], b])
    together = score_tracks(member, [[a, b], [], [mixed]], 4, device)  # batch size below a track's length
    alone = [score_tracks(member, [[t]], 64, device)[0][0] for t in (a, b, mixed)]
    assert [len(t) for t in together[0] + together[1] + together[2]] == [12, 7, 12]
    for got, want in zip(together[0] + together[2], alone):
        np.testing.assert_allclose(got, want, atol=1e-6)
    # the same crops score by the track they are in: more than the spread of the track's own scores
    assert np.abs(alone[0][:5] - alone[2][:5]).max() > np.ptp(alone[0])
