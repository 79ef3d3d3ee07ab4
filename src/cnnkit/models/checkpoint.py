"""Self-describing checkpoints (nanoGPT-style): one file rebuilds the model on its own.

A checkpoint is a `torch.save`d dict:

    format, version        "cnnkit-checkpoint", 1
    model_name, model_args  rebuild with `cnnkit.models.zoo.create_model(model_name, **model_args)`
    state_dict              the model's parameters (torch tensors, torch's names)
    config                  the run's resolved config (dataset, normalize, classes, seed, ...)
    optimizer_state         the engine's state: optimizer, and anything else it needs to resume
    epoch                   the last completed epoch (1-based)
    rng_state               torch, numpy, python and the batch-shuffling generator
    history                 one metrics row per completed epoch
    initial_conv1_weight    conv1's weights at initialisation (for the report), or None

Files are written atomically and read with `torch.load(weights_only=True)`, which refuses
arbitrary pickled objects. NumPy arrays (the NumPy engine's state) are stored as tensors
tagged {"__ndarray__": tensor} and come back as NumPy arrays of the same dtype.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnkit.core.errors import CnnkitError
from cnnkit.core.files import atomic_path

FORMAT = "cnnkit-checkpoint"
VERSION = 1
_NDARRAY = "__ndarray__"


def _encode(obj: Any) -> Any:
    """NumPy arrays and scalars -> tensors / Python scalars, so weights_only can load them."""
    if isinstance(obj, np.ndarray):
        return {_NDARRAY: torch.from_numpy(np.array(obj, copy=True))}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _encode(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_encode(v) for v in obj)
    return obj


def _decode(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {_NDARRAY}:
            return obj[_NDARRAY].numpy()
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_decode(v) for v in obj)
    return obj


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    model_name: str,
    model_args: dict[str, Any],
    state_dict: dict[str, Any],
    config: dict[str, Any],
    optimizer_state: dict[str, Any],
    epoch: int,
    rng_state: dict[str, Any],
    history: list[dict[str, Any]],
    initial_conv1_weight: np.ndarray | None = None,
) -> Path:
    """Write a checkpoint atomically: a reader sees the old file or the new one, never half."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model_name": model_name,
        "model_args": dict(model_args),
        "state_dict": {k: torch.as_tensor(v) for k, v in state_dict.items()},
        "config": config,
        "optimizer_state": optimizer_state,
        "epoch": int(epoch),
        "rng_state": rng_state,
        "history": history,
        "initial_conv1_weight": initial_conv1_weight,
    }
    target = Path(path)
    with atomic_path(target) as tmp:
        torch.save(_encode(payload), tmp)
    return target


@dataclass
class LoadedCheckpoint:
    model: nn.Module  # rebuilt, weights loaded, eval mode
    model_name: str
    model_args: dict[str, Any]
    config: dict[str, Any]
    epoch: int
    history: list[dict[str, Any]]
    raw: dict[str, Any]  # everything in the file (optimizer and RNG states included)
    path: Path


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's dict, validated; CnnkitError naming the file if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise CnnkitError(f"{path}: no such checkpoint file")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
        raise CnnkitError(
            f"{path}: not a cnnkit checkpoint (not a torch file: corrupt or truncated?)"
        )
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CnnkitError(
            f"{path}: refused: it holds pickled objects other than tensors and plain data "
            "(checkpoints are loaded with weights_only=True)"
        ) from e
    except Exception as e:  # torch raises many types for a damaged archive (zip, runtime)
        raise CnnkitError(
            f"{path}: not a readable cnnkit checkpoint ({type(e).__name__}: {e})"
        ) from e
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CnnkitError(f"{path}: not a cnnkit checkpoint (no '{FORMAT}' format marker)")
    if raw.get("version") != VERSION:
        raise CnnkitError(
            f"{path}: checkpoint version {raw.get('version')!r}; this cnnkit reads {VERSION}"
        )
    missing = [k for k in ("model_name", "model_args", "state_dict", "config") if k not in raw]
    if missing:
        raise CnnkitError(f"{path}: checkpoint lacks {', '.join(missing)}")
    return _decode(raw)


def load_checkpoint(path: str | os.PathLike[str]) -> LoadedCheckpoint:
    """Read a checkpoint and rebuild its model (eval mode, weights loaded)."""
    from cnnkit.models.zoo import create_model

    raw = read_checkpoint(path)
    model = create_model(raw["model_name"], **raw["model_args"])
    try:
        model.load_state_dict(raw["state_dict"])
    except RuntimeError as e:
        raise CnnkitError(f"{path}: its weights do not fit model {raw['model_name']!r}: {e}") from e
    model.eval()
    return LoadedCheckpoint(
        model=model,
        model_name=raw["model_name"],
        model_args=raw["model_args"],
        config=raw["config"],
        epoch=int(raw.get("epoch", 0)),
        history=list(raw.get("history", [])),
        raw=raw,
        path=Path(path),
    )


def resolve_checkpoint(checkpoint: str | os.PathLike[str] | LoadedCheckpoint) -> LoadedCheckpoint:
    """A checkpoint path or an already loaded checkpoint -> LoadedCheckpoint."""
    if isinstance(checkpoint, str | os.PathLike):
        from cnnkit.models.checkpoint import load_checkpoint

        return load_checkpoint(checkpoint)
    return checkpoint
