"""The released checkpoints of the 1st-place DFDC solution (selimsef/dfdc_deepfake_challenge), as dfdc
`frame` checkpoints."""

from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import CheckpointConfig, save_checkpoint
from .registry import create_model
from .torchfile import load_strict, read_state_dict

# What the 1st-place solution ran: B7 (noisy student) at 380 px on crops with a third of the box added
# on each side, 32 frames per video, ImageNet mean/std (timm's config of this backbone).
SELIMSEF_BACKBONE = "tf_efficientnet_b7.ns_jft_in1k"
SELIMSEF_CONFIG = {"input_size": 380, "margin": 1 / 3, "frames": 32}


def selimsef_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A 1st-place DFDC checkpoint as a dfdc `frame` state dict: DataParallel's `module.` stripped and the
    encoder's ImageNet classifier dropped (their forward pools forward_features and applies `fc`)."""
    state = {k.removeprefix("module."): v for k, v in read_state_dict(path).items()}
    return {k: v for k, v in state.items() if not k.startswith("encoder.classifier.")}


def import_selimsef(src: str | Path, dst: str | Path) -> Path:
    """Write the selimsef checkpoint `src` as the dfdc `frame` checkpoint `dst`, with that solution's
    preprocessing (380 px, ImageNet mean/std, margin 1/3, 32 frames)."""
    model = create_model("frame", backbone=SELIMSEF_BACKBONE, dropout=0.0)
    load_strict(model, selimsef_state_dict(src), src)
    training = {"source": "selimsef/dfdc_deepfake_challenge (1st place)", "file": Path(src).name}
    return save_checkpoint(dst, model, CheckpointConfig.for_model(model, **SELIMSEF_CONFIG, training=training))
