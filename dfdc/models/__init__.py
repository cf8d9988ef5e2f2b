"""Stage 3, crops -> logits: the models by name, create_model("frame" | "sequence" | "sequence_spatial", **kwargs),
registered in registry; backbones from timm with local weights (backbones, torchfile); the one-file
checkpoint (checkpoint) and the 1st-place import (selimsef).

Every model has `kind` ("frame": (B, C, H, W) crops; "sequence": (B, T, C, H, W) clips), gives one
P(FAKE) logit per item, and carries `default_config` (input_size, mean, std, frames) for inference.
"""

from . import frame, sequence  # noqa: F401  (they register their models)
from .registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
