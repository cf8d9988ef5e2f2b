"""A checkpoint: ONE file with everything inference needs, rebuilt from the file alone.

It holds the model's registry name and arguments, its weights, the preprocessing (input size, mean/std,
frames per video, crop margin), the calibrator and the training facts. Loading never executes pickled
code (torch.load weights_only=True), rebuilds the model through the registry, loads strictly, and checks
a sha256 of config and tensors, so a corrupted or edited file is refused rather than silently used.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..atomic import atomic_path
from ..defaults import AGGREGATION, CROP_MARGIN
from ..errors import DfdcError
from .backbones import Pretrained
from .registry import create_model
from .torchfile import load_file, load_strict

FORMAT = "dfdc-checkpoint/1"


@dataclass
class CheckpointConfig:
    """What inference needs besides the weights; plain JSON-like values only."""

    model: str  # registry name, as create_model takes it
    model_kwargs: dict[str, Any]  # every argument that shapes the model
    input_size: int  # square crop side, pixels
    mean: list[float]  # per-channel normalisation of RGB in [0, 1]
    std: list[float]
    frames: int  # frames sampled evenly per video, as the face cache it was trained on
    margin: float = CROP_MARGIN  # fraction of the face box's side added on each side of the crop (as dfdc faces)
    aggregation: str = AGGREGATION  # how predict turns frame or clip scores into a video score, as validation did
    clip_length: int | None = None  # sequence models: T consecutive samples per clip (models/clips.py)
    calibrator: dict[str, Any] | None = None  # opaque, from the calibration module
    matched_calibrator: dict[str, Any] | None = None  # the map before test-set prior matching (scores/matching.py)
    training: dict[str, Any] = field(default_factory=dict)  # data, epochs, validation scores...

    @property
    def clip_frames(self) -> int:
        """T of a sequence model's clips (checkpoints from before clip_length: its `frames`)."""
        return self.clip_length or self.frames

    @classmethod
    def for_model(cls, model: nn.Module, **overrides: Any) -> CheckpointConfig:
        """The config of a model from create_model: its name, arguments and default_config, then overrides."""
        fields = {"model": model.model_name, "model_kwargs": model.model_kwargs, **model.default_config}
        return cls(**{**fields, **overrides})


def _plain(config: CheckpointConfig) -> dict[str, Any]:
    """The config as JSON values (tuples -> lists, numpy floats -> floats), as it will read back."""
    return json.loads(json.dumps(asdict(config)))


def _digest(config: dict[str, Any], state: dict[str, torch.Tensor]) -> str:
    """sha256 of the config and every tensor (name, dtype, shape, bytes): catches corruption and edits."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for name in sorted(state):
        tensor = state[name]
        h.update(f"\n{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def save_checkpoint(path: str | Path, model: nn.Module, config: CheckpointConfig | dict[str, Any]) -> Path:
    """Write the checkpoint atomically (a temporary file beside it, then os.replace): readers see the old
    file or the new one, never half of one."""
    path = Path(path)
    if isinstance(config, dict):
        config = CheckpointConfig(**config)
    if (config.model, config.model_kwargs) != (model.model_name, model.model_kwargs):
        raise ValueError(f"config describes {config.model} {config.model_kwargs}, the model is "
                         f"{model.model_name} {model.model_kwargs}")
    plain = _plain(config)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "config": plain, "state_dict": state, "sha256": _digest(plain, state)}
    with atomic_path(path, fsync=True) as tmp, open(tmp, "xb") as f:
        torch.save(payload, f)
    return path


def read_checkpoint(path: str | Path) -> tuple[CheckpointConfig, dict[str, torch.Tensor]]:
    """The verified config and tensors of a checkpoint file; anything else is refused in one line."""
    obj = load_file(path)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise DfdcError("a plain state dict, not a dfdc checkpoint (it names no model)", path)
        raise DfdcError(f"not a dfdc checkpoint (no format {FORMAT!r})", path)
    config, state, digest = obj.get("config"), obj.get("state_dict"), obj.get("sha256")
    if not (isinstance(config, dict) and isinstance(state, dict) and isinstance(digest, str)):
        raise DfdcError("damaged dfdc checkpoint (config, state_dict or sha256 missing)", path)
    try:
        intact = all(isinstance(v, torch.Tensor) for v in state.values()) and _digest(config, state) == digest
    except (TypeError, ValueError):  # a config that is not JSON was never written by save_checkpoint
        intact = False
    if not intact:
        raise DfdcError("checksum mismatch: the file changed after it was saved", path)
    try:
        return CheckpointConfig(**config), state
    except TypeError as e:
        raise DfdcError(f"config of another dfdc version ({e})", path) from None


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, CheckpointConfig]:
    """The model (eval mode, on `device`) and config of a checkpoint, rebuilt from the file alone."""
    config, state = read_checkpoint(path)
    try:
        model = create_model(config.model, **config.model_kwargs)
    except DfdcError as e:
        raise DfdcError(str(e), path) from None
    load_strict(model, state, path)
    return model.to(device).eval(), config


def init_checkpoint(path: str | Path, model: str = "frame", pretrained: Pretrained = False, **kwargs: Any) -> Path:
    """An untrained, inference-ready checkpoint (ImageNet backbone if `pretrained`), for dry runs."""
    net = create_model(model, pretrained=pretrained, **kwargs)
    source = str(pretrained) if pretrained else None
    training = {"epochs": 0, "backbone_weights": source}
    return save_checkpoint(path, net, CheckpointConfig.for_model(net, training=training))
