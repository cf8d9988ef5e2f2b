"""Reading torch files safely: weights_only loading, state dicts, and strict loading into a model.

Every failure is a one-line DfdcError naming the file, never a traceback or executed pickle code.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..errors import DfdcError


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
