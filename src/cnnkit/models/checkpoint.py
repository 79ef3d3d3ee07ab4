"""Self-describing checkpoints (nanoGPT-style): one file rebuilds the model on its own.

A checkpoint is a `torch.save`d dict:

    format, version        "cnnkit-checkpoint", 2 (version 1: the same without a digest)
    model_name, model_args  rebuild with `cnnkit.models.registry.create_model(name, **args)`
    state_dict              the model's parameters (torch tensors, torch's names)
    config                  the run's resolved config (dataset, normalize, classes, seed, ...)
    optimizer_state         the engine's state: optimizer, and anything else it needs to resume
    epoch                   the last completed epoch (1-based)
    rng_state               torch, numpy, python and the batch-shuffling generator
    history                 one metrics row per completed epoch
    initial_conv1_weight    conv1's weights at initialisation (for the report), or None
    digest                  SHA-256 over every tensor in the file (path, dtype, shape, bytes)

Files are written atomically and read with `torch.load(weights_only=True)`, which refuses
arbitrary pickled objects. NumPy arrays (the NumPy engine's state) are stored as tensors
tagged {"__ndarray__": tensor} and come back as NumPy arrays of the same dtype.

Reading checks, each refusal one `CnnkitError` naming the file: the digest (damaged bytes), the
weights are finite, and the config's normalisation can be applied (std > 0, finite). Wherever a
checkpoint is taken, a run folder is too: it means its `checkpoint.pt` (`checkpoint_file`).
"""

from __future__ import annotations

import hashlib
import math
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
VERSION = 2  # 2 added the digest; files of version 1 (no digest) are still read
READABLE_VERSIONS = (1, 2)
CHECKPOINT_NAME = "checkpoint.pt"  # a run folder's checkpoint
_NDARRAY = "__ndarray__"

__all__ = [
    "CHECKPOINT_NAME",
    "FORMAT",
    "VERSION",
    "LoadedCheckpoint",
    "checkpoint_input_shape",
    "checkpoint_file",
    "load_checkpoint",
    "read_checkpoint",
    "resolve_checkpoint",
    "save_checkpoint",
    "tensor_digest",
]


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


def tensor_digest(obj: Any) -> str:
    """SHA-256 over every tensor in `obj` (nested dicts, lists, tuples), in order, each with
    its path, dtype and shape: a changed weight, byte or shape changes it."""
    sha = hashlib.sha256()

    def walk(value: Any, where: str) -> None:
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            sha.update(f"{where}|{t.dtype}|{tuple(t.shape)}|".encode())
            sha.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{where}/{k!r}")
        elif isinstance(value, list | tuple):
            for i, v in enumerate(value):
                walk(v, f"{where}/{i}")

    walk(obj, "")
    return sha.hexdigest()


def checkpoint_file(path: str | os.PathLike[str]) -> Path:
    """A checkpoint file, or a run folder -> its checkpoint.pt (refused if it has none)."""
    path = Path(path)
    if path.is_dir():
        if not (path / CHECKPOINT_NAME).is_file():
            raise CnnkitError.from_template(
                (
                    "{path}: a folder without {checkpoint_name} (a run that completed no "
                    "epoch, or not a run folder)"
                ),
                path=path,
                checkpoint_name=CHECKPOINT_NAME,
            )
        return path / CHECKPOINT_NAME
    return path


def _plain(value: Any) -> Any:
    """`value` with every str subclass made a plain str (a `core.i18n.Message` in the config,
    such as a skipped file's reason, is its English line): `weights_only` loading reads
    tensors and plain data only."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    return value


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
        "config": _plain(config),
        "optimizer_state": optimizer_state,
        "epoch": int(epoch),
        "rng_state": rng_state,
        "history": history,
        "initial_conv1_weight": initial_conv1_weight,
    }
    encoded = _encode(payload)
    encoded["digest"] = tensor_digest(encoded)
    target = Path(path)
    with atomic_path(target) as tmp:
        torch.save(encoded, tmp)
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
    """The checkpoint's dict, validated; CnnkitError naming the file if it is not one, is
    damaged (digest), holds non-finite weights or a normalisation that cannot be applied.
    `path` may be a run folder (its checkpoint.pt)."""
    path = checkpoint_file(path)
    if not path.is_file():
        raise CnnkitError.from_template("{path}: no such checkpoint file", path=path)
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
        raise CnnkitError.from_template(
            ("{path}: not a cnnkit checkpoint (not a torch file: corrupt or truncated?)"), path=path
        )
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CnnkitError.from_template(
            (
                "{path}: refused: it holds pickled objects other than tensors and plain "
                "data (checkpoints are loaded with weights_only=True)"
            ),
            path=path,
        ) from e
    except Exception as e:  # torch raises many types for a damaged archive (zip, runtime)
        raise CnnkitError.from_template(
            "{path}: not a readable cnnkit checkpoint ({type_name}: {e})",
            path=path,
            type_name=type(e).__name__,
            e=e,
        ) from e
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CnnkitError.from_template(
            "{path}: not a cnnkit checkpoint (no '{format}' format marker)",
            path=path,
            format=FORMAT,
        )
    if raw.get("version") not in READABLE_VERSIONS:
        raise CnnkitError.from_template(
            "{path}: checkpoint version {get!r}; this cnnkit reads {items}",
            path=path,
            get=raw.get("version"),
            items=", ".join(map(str, READABLE_VERSIONS)),
        )
    missing = [k for k in ("model_name", "model_args", "state_dict", "config") if k not in raw]
    if raw["version"] >= 2 and "digest" not in raw:
        missing.append("digest")
    if missing:
        raise CnnkitError.from_template(
            "{path}: checkpoint lacks {missing}", path=path, missing=", ".join(missing)
        )
    _check_contents(path, raw)
    return _decode(raw)


def _check_contents(path: Path, raw: dict[str, Any]) -> None:
    if "digest" in raw:
        stored = raw["digest"]
        actual = tensor_digest({k: v for k, v in raw.items() if k != "digest"})
        if stored != actual:
            raise CnnkitError.from_template(
                (
                    "{path}: damaged: the SHA-256 of its tensors is {actual}..., the file "
                    "records {stored}... (changed or corrupted since it was written)"
                ),
                path=path,
                actual=actual[:16],
                stored=str(stored)[:16],
            )
    state = raw["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CnnkitError.from_template(
            "{path}: its state_dict is not a dict of tensors", path=path
        )
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CnnkitError.from_template(
                (
                    "{path}: refused: {name} holds {bad} non-finite value(s) (NaN or inf): "
                    "the weights of a diverged run"
                ),
                path=path,
                name=name,
                bad=bad,
            )
    config = raw["config"]
    if not isinstance(config, dict):
        raise CnnkitError.from_template("{path}: its config is not a dict", path=path)
    if "normalize" in config:
        _check_normalize(path, config["normalize"])


def _check_normalize(path: Path, normalize: Any) -> None:
    """(mean, std): scalars or per-channel sequences of one length; finite, std > 0."""

    def numbers(v: Any) -> list[Any]:
        return list(v) if isinstance(v, list | tuple) else [v]

    ok = isinstance(normalize, list | tuple) and len(normalize) == 2
    if ok:
        mean, std = numbers(normalize[0]), numbers(normalize[1])
        ok = len(mean) == len(std) > 0 and all(
            isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
            for x in mean + std
        )
        ok = ok and all(s > 0 for s in std)
    if not ok:
        raise CnnkitError.from_template(
            (
                "{path}: its config's normalize must be (mean, std) with finite values "
                "and std > 0; got {normalize!r}"
            ),
            path=path,
            normalize=normalize,
        )


def load_checkpoint(path: str | os.PathLike[str]) -> LoadedCheckpoint:
    """Read a checkpoint (a file, or a run folder) and rebuild its model (eval mode, weights
    loaded)."""
    from cnnkit.models.registry import create_model

    raw = read_checkpoint(path)
    model = create_model(raw["model_name"], **raw["model_args"])
    try:
        model.load_state_dict(raw["state_dict"])
    except RuntimeError as e:
        raise CnnkitError.from_template(
            "{path}: its weights do not fit model {raw!r}: {e}",
            path=path,
            raw=raw["model_name"],
            e=e,
        ) from e
    model.eval()
    return LoadedCheckpoint(
        model=model,
        model_name=raw["model_name"],
        model_args=raw["model_args"],
        config=raw["config"],
        epoch=int(raw.get("epoch", 0)),
        history=list(raw.get("history", [])),
        raw=raw,
        path=checkpoint_file(path),
    )


def checkpoint_input_shape(ckpt: LoadedCheckpoint) -> tuple[int, int, int]:
    """(C, H, W) of the checkpoint's model: the registry's shape, with the run's model_args
    (a run on an image folder of 3-channel 64×64 images has in_channels 3, input_hw 64×64)."""
    from cnnkit.models.registry import model_input_shape

    c, h, w = model_input_shape(ckpt.model_name)
    args = ckpt.model_args
    c = int(args.get("in_channels", c))
    if "input_hw" in args:
        h, w = (int(v) for v in args["input_hw"])
    return (c, h, w)


def resolve_checkpoint(checkpoint: str | os.PathLike[str] | LoadedCheckpoint) -> LoadedCheckpoint:
    """A checkpoint path, a run folder or an already loaded checkpoint -> LoadedCheckpoint."""
    if isinstance(checkpoint, str | os.PathLike):
        return load_checkpoint(checkpoint)
    if not isinstance(checkpoint, LoadedCheckpoint):
        raise CnnkitError.from_template(
            (
                "The 'checkpoint' parameter must be a checkpoint file, a run folder or a "
                "LoadedCheckpoint. Got {type_name} {checkpoint!r:.80} instead."
            ),
            type_name=type(checkpoint).__name__,
            checkpoint=checkpoint,
        )
    return checkpoint
