"""Where a model runs and in what precision, and how many CPU threads it gets.

    resolve_device("auto")          # 'cuda', else 'mps', else 'cpu' (the chapter's choice)
    resolve_device("cuda")          # CnnkitError when there is no CUDA device
    resolve_precision("auto", "cpu")  # 'bf16' only on CPUs with avx512_bf16 or AMX, else 'fp32'
    default_threads()               # the cores this process may use that others leave free

torch is imported inside the functions, so that `import cnnkit` stays light. The CPU's bf16
support is read from /proc/cpuinfo's flags: without avx512_bf16 (or AMX), bf16 autocast on
CPU emulates the arithmetic and is 40-500× slower than fp32 (pytorch/pytorch #146508,
#118499), so `auto` keeps fp32 there; where the flags are present a one-step timing
(`bf16_pays_off`) confirms it before `auto` chooses bf16.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cnnkit.core.checks import bad_parameter
from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import Message

__all__ = [
    "DEVICES",
    "PRECISIONS",
    "autocast_dtype",
    "bf16_pays_off",
    "cpu_flags",
    "cpu_has_fast_bf16",
    "default_threads",
    "describe_threads",
    "resolve_device",
    "resolve_precision",
]

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # native bf16 dot products on x86


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str, *, func: str = "train") -> str:
    """'cpu', 'cuda' or 'mps' for `name` in DEVICES; `auto` is the chapter's choice (CUDA,
    then MPS, then CPU). A device asked for by name that is not there is a CnnkitError."""
    if name not in DEVICES:
        raise bad_parameter(
            func, "device", Message("one of {devices}", devices=", ".join(DEVICES)), name
        )
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if _mps_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        built = "built with CUDA" if torch.version.cuda else "built without CUDA"
        raise CnnkitError.from_template(
            (
                "device 'cuda' was asked for, but no CUDA device is available (torch "
                "{version}, {built}); use --device cpu or --device auto"
            ),
            version=torch.__version__,
            built=built,
        )
    if name == "mps" and not _mps_available():
        raise CnnkitError(
            "device 'mps' was asked for, but no MPS (Apple GPU) device is available; use "
            "--device cpu or --device auto"
        )
    return name


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU feature flags (the 'flags' line of /proc/cpuinfo, or of `cpuinfo` when given);
    empty where the file is missing (not Linux)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_has_fast_bf16(flags: Iterable[str]) -> bool:
    """Whether the CPU computes bf16 natively (avx512_bf16 or AMX's amx_bf16)."""
    return any(flag in set(flags) for flag in BF16_CPU_FLAGS)


def resolve_precision(
    name: str,
    device: str,
    *,
    flags: Iterable[str] | None = None,
    pays_off: Callable[[], bool] | None = None,
    func: str = "train",
) -> str:
    """'fp32', 'bf16' or 'fp16' for `name` in PRECISIONS on a resolved `device`.

    `auto`: bf16 on CUDA devices that support it; on the CPU bf16 only when its flags
    (`flags`, else /proc/cpuinfo's) include avx512_bf16 or amx_bf16 and `pays_off()` (a
    timing of one step, when given) confirms it; fp32 everywhere else (MPS included). An
    explicit bf16/fp16 is kept where the device can run it at all."""
    if name not in PRECISIONS:
        raise bad_parameter(
            func,
            "precision",
            Message("one of {precisions}", precisions=", ".join(PRECISIONS)),
            name,
        )
    import torch

    if device == "cuda":
        has_bf16 = bool(torch.cuda.is_bf16_supported())
        if name == "auto":
            return "bf16" if has_bf16 else "fp32"
        if name == "bf16" and not has_bf16:
            raise CnnkitError("precision 'bf16' was asked for, but this CUDA device lacks bf16")
        return name
    if name != "auto":
        return name
    if device != "cpu":
        return "fp32"
    if not cpu_has_fast_bf16(cpu_flags() if flags is None else flags):
        return "fp32"
    return "bf16" if pays_off is None or pays_off() else "fp32"


def autocast_dtype(precision: str) -> Any:
    """torch's dtype for an autocast precision (None for fp32: no autocast)."""
    import torch

    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def bf16_pays_off(step: Callable[[str], None], *, repeats: int = 3) -> bool:
    """Whether `step(precision)` (one forward and backward pass) is faster in bf16 than in
    fp32: each is run once to warm up, then timed `repeats` times (the fastest counts)."""

    def best(precision: str) -> float:
        step(precision)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            step(precision)
            times.append(time.perf_counter() - t0)
        return min(times)

    return best("bf16") < best("fp32")


def default_threads(
    affinity: int | None = None, load: float | None = None, *, device: str = "cpu"
) -> int:
    """Threads for torch on `device`: the cores this process may run on (its affinity) less
    those the other processes keep busy (the 1-minute load average, rounded), at least 1.
    On a shared machine a thread that waits for a busy core slows every step (measured on 2
    cores with another process on one: 2 OpenMP threads were 5-12× slower than 1). A GPU run
    needs one thread to feed the device."""
    if device != "cpu":
        return 1
    if affinity is None:
        try:
            affinity = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            affinity = os.cpu_count() or 1
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    busy = math.floor(load + 0.5)
    return max(1, min(affinity, affinity - busy))


def describe_threads(threads: int) -> str:
    """'1 thread (2 cores, load 1.19)': the thread count and what it was chosen from."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    load: str
    try:
        load = Message(", load {load}", load=f"{os.getloadavg()[0]:.2f}")
    except (AttributeError, OSError):
        load = ""
    if threads == 1:
        return Message("{threads} thread ({cores} cores{load})", threads=1, cores=cores, load=load)
    return Message(
        "{threads} threads ({cores} cores{load})", threads=threads, cores=cores, load=load
    )
