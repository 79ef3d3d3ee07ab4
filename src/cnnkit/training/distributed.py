"""Training on several processes: PyTorch's DistributedDataParallel, launched by torchrun.

    torchrun --nproc-per-node 2 -m cnnkit train ...     # or: cnnkit train --nproc 2 ...

Under torchrun (RANK, WORLD_SIZE, MASTER_ADDR in the environment) `cluster()` joins the
process group (gloo on CPU, NCCL for CUDA tensors) and `wrap_engine` turns the torch engine
into a `DistributedEngine`; without torchrun both do nothing and a run is the one-process run.

- Every rank draws the same seeded permutation; each global batch of `batch_size` images is
  split into `world_size` disjoint, consecutive shards (`np.array_split`), one per rank. The
  global batch is `--batch-size`, whatever the number of processes.
- DDP averages the gradients; a comm hook weights each rank's by its shard's share of the
  batch (n_r / n), so an uneven last batch gives the gradient of the mean over the whole
  batch, as one process computes it. A rank whose shard is empty runs one sample with weight 0.
- The loss and accuracy of a step, and the test logits (each rank evaluates its shard of every
  test batch; the shards are gathered), are reduced over the ranks: every rank sees the same
  metrics, so all stop together when the loss becomes non-finite.
- Dropout draws from a generator seeded by (seed, rank, step) at every step: the masks differ
  between ranks, and a resumed run draws exactly those of an uninterrupted one.
- Only rank 0 (`is_main()`) writes config.json, metrics, checkpoints and the report, and prints.
- A rank that dies makes the others' next collective fail (or time out after
  `TIMEOUT_SECONDS`, $CNNKIT_DIST_TIMEOUT): `stop_cleanly` turns that into one CnnkitError.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np

from cnnkit.core.errors import CnnkitError
from cnnkit.training.engine import Engine

__all__ = [
    "TIMEOUT_SECONDS",
    "Cluster",
    "DistributedEngine",
    "cluster",
    "free_port",
    "is_main",
    "launch_command",
    "stop_cleanly",
    "wrap_engine",
]

TIMEOUT_SECONDS = 120  # a collective waiting longer than this fails (a stalled or lost rank)


@dataclass(frozen=True)
class Cluster:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    active: bool = False  # inside a torchrun-launched process group

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_CLUSTER: Cluster | None = None


def _launched() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def cluster() -> Cluster:
    """This process's place in the run; joins the process group on first use under torchrun."""
    global _CLUSTER
    if _CLUSTER is not None:
        return _CLUSTER
    if not _launched():
        _CLUSTER = Cluster()
        return _CLUSTER
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
        backend = "cpu:gloo,cuda:nccl"
    timeout = int(os.environ.get("CNNKIT_DIST_TIMEOUT", TIMEOUT_SECONDS))
    if not dist.is_initialized():
        try:
            dist.init_process_group(backend, timeout=timedelta(seconds=timeout))
        except (RuntimeError, ValueError) as e:
            raise CnnkitError.from_template(
                "cannot join the torchrun process group: {e}", e=_first_line(e)
            ) from e
    _CLUSTER = Cluster(dist.get_rank(), dist.get_world_size(), local_rank, True)
    return _CLUSTER


def is_main() -> bool:
    """Whether this process writes the run's files and prints (rank 0, or not distributed)."""
    return _CLUSTER is None or _CLUSTER.is_main


def agree(value: Any) -> Any:
    """Rank 0's `value` on every rank (a default run name with a time stamp, say)."""
    c = cluster()
    if not c.active:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


@contextlib.contextmanager
def stop_cleanly(where: str) -> Iterator[None]:
    """A failed collective (a rank died, or timed out) becomes one CnnkitError naming this
    rank and `where` the run's files are."""
    c = cluster()
    if not c.active:
        yield
        return
    import torch.distributed as dist

    try:
        yield
    except dist.DistError as e:  # gloo's "Connection closed by peer", timeouts, ...
        raise CnnkitError.from_template(
            (
                "rank {rank} of {world_size}: the process group failed ({e}): another "
                "process of the run stopped or stalled; the run stopped; its last good "
                "checkpoint stays in {where} (continue it with --resume)"
            ),
            rank=c.rank,
            world_size=c.world_size,
            e=_first_line(e)[:200],
            where=where,
        ) from e


def step_seed(seed: int, rank: int, step: int) -> int:
    """The dropout seed of one rank at one step (independent streams per (seed, rank, step))."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1, np.uint64)[0] >> 1)


class _Weight:
    """The comm hook's state: this rank's share of the current global batch."""

    value = 1.0


def _weighted_allreduce(state: _Weight, bucket: Any) -> Any:
    """DDP comm hook: sum over ranks of (share · local mean gradient) = the batch mean's."""
    import torch.distributed as dist

    buffer = bucket.buffer()
    buffer.mul_(state.value)
    fut = dist.all_reduce(buffer, async_op=True).get_future()
    return fut.then(lambda f: f.value()[0])


class DistributedEngine:
    """A torch engine whose steps run through DDP on this rank's shard of each batch.

    The inner engine keeps its model, optimizer and step; during `train_batch` its `model` is
    the DDP wrapper of that same module (so the step, its precision and device are the
    engine's own), and afterwards the module again, so state dicts keep their names.
    """

    name = "torch"

    def __init__(self, inner: Any, c: Cluster, seed: int) -> None:
        import torch
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel

        self.inner, self.cluster, self.seed, self.step = inner, c, seed, 0
        self.module = inner.model
        device = getattr(inner, "device", None)
        ids = [device] if device is not None and device.type == "cuda" else None
        self.ddp = DistributedDataParallel(self.module, device_ids=ids)
        self.weight = _Weight()
        # DDP checks the hook's annotations as objects (this module's are strings)
        _weighted_allreduce.__annotations__.update(
            {"bucket": dist.GradBucket, "return": torch.futures.Future[torch.Tensor]}
        )
        self.ddp.register_comm_hook(self.weight, _weighted_allreduce)

    def _shard(self, n: int) -> slice:
        """This rank's rows of a batch of n: `np.array_split`'s consecutive, disjoint parts."""
        w, r = self.cluster.world_size, self.cluster.rank
        base, extra = divmod(n, w)
        start = r * base + min(r, extra)
        return slice(start, start + base + (r < extra))

    def train_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        """One DDP step on the global batch (x, y): this rank trains its shard; returns the
        batch's (mean loss, correct) reduced over the ranks."""
        import torch
        import torch.distributed as dist

        n = len(y)
        part = self._shard(n)
        local_n = part.stop - part.start
        xs, ys = (x[part], y[part]) if local_n else (x[:1], y[:1])  # weight 0 below
        self.weight.value = local_n / n
        torch.manual_seed(step_seed(self.seed, self.cluster.rank, self.step))
        self.step += 1
        self.inner.model = self.ddp
        try:
            loss, correct = self.inner.train_batch(xs, ys)
        finally:
            self.inner.model = self.module
        stats = torch.tensor([loss * local_n, correct if local_n else 0], dtype=torch.float64)
        dist.all_reduce(stats)
        return float(stats[0]) / n, int(stats[1])

    def eval_logits(self, x: np.ndarray) -> np.ndarray:
        """Logits of x: each rank computes its shard, then every rank gathers all shards."""
        import torch
        import torch.distributed as dist

        parts = np.array_split(np.arange(len(x)), self.cluster.world_size)
        size = max(len(p) for p in parts)
        mine = parts[self.cluster.rank]
        local = self.inner.eval_logits(x[mine]) if len(mine) else None
        k = self._num_outputs(x) if local is None else local.shape[1]
        padded = torch.zeros(size, k, dtype=torch.float32)
        if local is not None:
            padded[: len(mine)] = torch.from_numpy(np.ascontiguousarray(local, dtype=np.float32))
        gathered = [torch.empty_like(padded) for _ in parts]
        dist.all_gather(gathered, padded)
        return np.concatenate([g[: len(p)].numpy() for g, p in zip(gathered, parts, strict=True)])

    def _num_outputs(self, x: np.ndarray) -> int:
        return int(self.inner.eval_logits(x[:1]).shape[1]) if len(x) else 0

    def model_state_dict(self) -> dict[str, np.ndarray]:
        return dict(self.inner.model_state_dict())

    def load_model_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.inner.load_model_state_dict(state)

    def state(self) -> dict[str, Any]:
        return {**self.inner.state(), "distributed_step": self.step}

    def load_state(self, state: dict[str, Any]) -> None:
        self.inner.load_state(state)
        self.step = int(state.get("distributed_step", 0))


def wrap_engine(eng: Engine, seed: int) -> Engine:
    """`eng` itself outside torchrun; its `DistributedEngine` inside (the torch engine only)."""
    c = cluster()
    if not c.active:
        return eng
    if eng.name != "torch":
        raise CnnkitError.from_template(
            ("distributed training (torchrun) needs the torch engine; got engine={eng_name!r}"),
            eng_name=eng.name,
        )
    return DistributedEngine(eng, c, seed)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (for a one-machine torchrun)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch_command(python: str, nproc: int, args: list[str], port: int) -> list[str]:
    """The torchrun command line that runs `python -m cnnkit ARGS` on `nproc` local processes,
    its rendezvous on 127.0.0.1 only."""
    return [
        python,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc-per-node",
        str(nproc),
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(port),
        "-m",
        "cnnkit",
        *args,
    ]
