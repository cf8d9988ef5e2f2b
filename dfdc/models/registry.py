"""Every model by name, like timm's create_model: a checkpoint names its model and is rebuilt here."""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch.nn as nn

from ..errors import DfdcError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str, factory: Callable[..., nn.Module]) -> None:
    """Make `factory` (a class or partial) available as create_model(name, ...)."""
    if name in _MODELS:
        raise ValueError(f"model {name!r} is registered twice")
    _MODELS[name] = factory


def list_models() -> list[str]:
    return sorted(_MODELS)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """The model `name`, built with `kwargs` over its defaults.

    The model remembers `model_name` and every argument that shapes it (`model_kwargs`, all
    defaults filled in, `pretrained` left out since the weights travel in the checkpoint), so
    a checkpoint can rebuild it exactly even if a default changes later.
    """
    if name not in _MODELS:
        raise DfdcError(f"unknown model {name!r} (known: {', '.join(list_models())})")
    factory = _MODELS[name]
    try:
        bound = inspect.signature(factory).bind(**kwargs)
    except TypeError as e:
        raise DfdcError(f"model {name!r}: {e}") from None
    bound.apply_defaults()
    model = factory(**bound.arguments)
    model.model_name = name
    model.model_kwargs = {k: v for k, v in bound.arguments.items() if k != "pretrained"}
    return model
