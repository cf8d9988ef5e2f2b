"""BatchNorm folded into the conv before it: the same scores on real face crops, fewer layers; a
model where a BN is not its preceding conv's is left as it is."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn

from dfdc.inference.ensemble import load_members
from dfdc.models.checkpoint import init_checkpoint, load_checkpoint
from dfdc.models.fold import fold_batchnorm


def _norms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def _faces(face_images_dir: Path) -> torch.Tensor:
    """12 shifted 224 px views of a real face, normalised as ImageNet models take them."""
    image = cv2.cvtColor(cv2.imread(str(face_images_dir / "1face.png")), cv2.COLOR_BGR2RGB)
    rng = np.random.default_rng(0)
    crops = np.stack([cv2.resize(np.roll(image, (int(dy), int(dx)), (0, 1)), (224, 224))
                      for dy, dx in rng.integers(-12, 12, (12, 2))])
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255
    return (x - torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1)) / 0.5


def test_a_folded_lite0_scores_real_faces_as_the_original(face_images_dir: Path, tmp_path: Path) -> None:
    ckpt = init_checkpoint(tmp_path / "m.pt", "frame", pretrained="lite0", backbone="tf_efficientnet_lite0")
    model, _ = load_checkpoint(ckpt)
    x = _faces(face_images_dir)
    folded = fold_batchnorm(model, x[:2])
    assert folded is not model and _norms(model) > 40 and _norms(folded) == 0
    with torch.inference_mode():
        want, got = model(x), folded(x)
    assert want.std() > 0.05  # the crops' scores differ, so agreeing is not trivial
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4)
    assert _norms(load_members([ckpt], None, torch.device("cpu"))[0].model) == 0  # predict scores folded


class _NormFirst(nn.Module):
    """A conv registered before the BN that in fact normalises its input: not a pair to fold."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3)  # as many channels out as in: the pair looks foldable
        self.bn = nn.BatchNorm2d(3)
        self.kind = "frame"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.bn(x)).mean((1, 2, 3))


def test_a_bn_that_is_not_its_convs_is_left_unfolded(face_images_dir: Path) -> None:
    torch.manual_seed(0)
    model = _NormFirst().eval()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-1, 1)
        model.bn.running_var.uniform_(0.2, 3)
    assert fold_batchnorm(model, _faces(face_images_dir)[:2]) is model
