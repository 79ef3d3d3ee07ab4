"""Which model the CLI summarises: a registry name, `file.py:factory`, or a checkpoint."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import Message

__all__ = ["LoadedModel", "load_model"]


@dataclass
class LoadedModel:
    model: Any  # torch.nn.Module
    label: str
    input_shape: tuple[int, ...] | None  # (C, H, W) the model was made for, if known
    checkpoint: Any = None  # cnnkit.models.checkpoint.LoadedCheckpoint for a checkpoint file


def load_model(spec: str) -> LoadedModel:
    """`simple-cnn` (cnnkit.models.registry), `path/to/file.py:factory`, `run/checkpoint.pt`
    or a run folder (the input shape is the run's: its channels and image size).

    A factory is called without arguments and must return a `torch.nn.Module` (an attribute
    that already is a module is used as it is).
    """
    path_part, sep, attr = spec.rpartition(":")
    if sep and path_part.endswith(".py"):
        return _from_file(Path(path_part), attr, spec)
    if spec.endswith(".py"):
        raise CnnkitError.from_template(
            "{spec!r}: name the factory too, as FILE.py:FUNCTION", spec=spec
        )
    if spec.endswith((".pt", ".pth")) or Path(spec).is_file() or Path(spec).is_dir():
        from cnnkit.models.checkpoint import checkpoint_input_shape, load_checkpoint

        ckpt = load_checkpoint(spec)  # a run folder: its checkpoint.pt
        label = f"{spec} ({ckpt.model_name})"
        return LoadedModel(ckpt.model, label, checkpoint_input_shape(ckpt), ckpt)
    from cnnkit.models.registry import create_model, model_input_shape

    return LoadedModel(create_model(spec), spec, model_input_shape(spec))


def _from_file(path: Path, attr: str, spec: str) -> LoadedModel:
    import torch

    if not path.is_file():
        raise CnnkitError.from_template(
            "{path!r}: no such file (from {spec!r})", path=str(path), spec=spec
        )
    if not attr.isidentifier():
        raise CnnkitError.from_template(
            "{spec!r}: {attr!r} is not a Python name (FILE.py:FUNCTION)", spec=spec, attr=attr
        )
    name = f"_cnnkit_user_model_{abs(hash(path.resolve()))}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0]
        raise CnnkitError.from_template(
            "{path!r} failed to import: {type_name}: {first}",
            path=str(path),
            type_name=type(e).__name__,
            first=first,
        ) from e
    finally:
        sys.modules.pop(name, None)
    if not hasattr(module, attr):
        public = sorted(n for n in vars(module) if not n.startswith("_"))
        raise CnnkitError.from_template(
            "{path!r} has no {attr!r}; it defines: {names}",
            path=str(path),
            attr=attr,
            names=", ".join(public) or Message("nothing"),
        )
    obj = getattr(module, attr)
    if not isinstance(obj, torch.nn.Module):
        if not callable(obj):
            raise CnnkitError.from_template(
                "{spec!r} is neither a factory nor a torch.nn.Module", spec=spec
            )
        try:
            obj = obj()
        except Exception as e:
            first = (str(e).strip().splitlines() or [""])[0]
            raise CnnkitError.from_template(
                "{spec}() failed: {type_name}: {first}",
                spec=spec,
                type_name=type(e).__name__,
                first=first,
            ) from e
    if not isinstance(obj, torch.nn.Module):
        raise CnnkitError.from_template(
            "{spec}() returned {type_name}, not a torch.nn.Module",
            spec=spec,
            type_name=type(obj).__name__,
        )
    return LoadedModel(obj, spec, None)
