"""Several processes, one training run: torchrun's environment, index sharding, reductions.

`torchrun --nproc_per_node N scripts/train.py ...` starts N copies of the same training code;
each sees RANK, LOCAL_RANK and WORLD_SIZE in its environment. Every process draws the same
epoch permutation (it is derived from the seed and the epoch alone) and takes every N-th index
of each global batch, as DistributedSampler shards a permutation: the N local batches of a step
are exactly the global batch of a single-process run. Gradients are averaged by
DistributedDataParallel; each process's loss is scaled by its share of the global batch, so the
averaged gradient is the single-process gradient of the same global batch (also for the last,
smaller batch of an epoch). Only rank 0 writes checkpoints and outputs.

NCCL on CUDA, gloo on CPU (how the tests run two processes on one machine).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Shard:
    """This process's place in the run: rank r of `world` processes (1 without torchrun)."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def take(self, index: torch.Tensor) -> torch.Tensor:
        """This process's part of a global batch of indices (every world-th, from rank)."""
        return index[self.rank::self.world]


def current_shard() -> Shard:
    """The shard of this process: from the initialized process group, else a single process."""
    if dist.is_available() and dist.is_initialized():
        return Shard(dist.get_rank(), dist.get_world_size())
    return Shard()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device_type: str | None = None) -> tuple[Shard, torch.device]:
    """Join the process group torchrun described in the environment (if any) and pick this
    process's device: cuda:LOCAL_RANK when CUDA is there (NCCL), else the CPU (gloo)."""
    cuda = torch.cuda.is_available() if device_type is None else device_type == "cuda"
    if not launched_by_torchrun():
        return Shard(), torch.device("cuda" if cuda else "cpu")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return current_shard(), device


def launch(processes: int, script: str, args: list[str]) -> None:
    """Run `python script args` as `processes` workers of one run, as `torchrun --standalone
    --nproc_per_node processes` does (a local rendezvous on a free port), and wait for them.
    torchrun's own command line cannot take the training script's options: it reads `--log`
    as an abbreviation of its `--log-dir`."""
    import sys
    import uuid

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from layerwise.errors import TrainingError

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=processes,
                          run_id=str(uuid.uuid4()), rdzv_backend="c10d",
                          rdzv_endpoint="localhost:0", max_restarts=0)
    try:
        elastic_launch(config, entrypoint=sys.executable)(script, *args)
    except ChildFailedError as err:
        failures = "; ".join(f"rank {f.global_rank}: exit code {f.exitcode}"
                             for f in err.failures.values())
        raise TrainingError(f"distributed training failed ({failures}); each process's "
                            "error is printed above") from None


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_sum(values: list[float], shard: Shard, device: torch.device) -> list[float]:
    """Sums of `values` over all processes (the values themselves in a single process)."""
    if not shard.distributed:
        return list(values)
    # gloo reduces CPU tensors; NCCL needs them on this process's GPU.
    where = device if device.type == "cuda" else torch.device("cpu")
    tensor = torch.tensor(values, dtype=torch.float64, device=where)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def barrier(shard: Shard) -> None:
    if shard.distributed:
        dist.barrier()
