"""Multi-process training under `torchrun` (DistributedDataParallel).

torchrun sets `WORLD_SIZE`, `RANK` and `LOCAL_RANK`; without them (or with a world of 1) every
helper here is a no-op, so the single-process path imports nothing new and behaves as before.
Backend: nccl when CUDA is available (one GPU per local rank), gloo on CPU.

Data order: every rank builds the same global batches as a 1-process run with the same seed
(`GlobalBatches`) and takes rows `rank::world` of each, so with DDP's gradient averaging an update
matches the 1-process update on the same global batch, up to dropout masks and float reduction order.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from edgemod.errors import EdgemodError


@dataclass(frozen=True)
class DistributedContext:
    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> DistributedContext:
        try:
            return cls(int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")),
                       int(os.environ.get("LOCAL_RANK", "0")))
        except ValueError:
            raise EdgemodError("WORLD_SIZE, RANK or LOCAL_RANK is not an integer",
                               "launch with `torchrun ... -m edgemod.cli train ...`, or unset them") from None

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def init(self) -> DistributedContext:
        """Join the process group (once); torchrun's rendezvous supplies MASTER_ADDR/PORT."""
        if not self.enabled:
            return self
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            cuda = torch.cuda.is_available()
            if cuda:
                torch.cuda.set_device(self.local_rank)
            dist.init_process_group("nccl" if cuda else "gloo", store=self._store(), rank=self.rank,
                                    world_size=self.world)
        return self

    def _store(self):
        """torchrun's store, with keys prefixed by the restart count.

        After an elastic restart the agent's store still holds the previous attempt's gloo
        addresses; without the prefix a new worker may dial a dead peer and fail to connect."""
        from datetime import timedelta

        import torch.distributed as dist

        hosts = self.rank == 0 and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True"
        store = dist.TCPStore(os.environ.get("MASTER_ADDR", "127.0.0.1"), int(os.environ.get("MASTER_PORT", "29500")),
                              self.world, is_master=hosts, timeout=timedelta(minutes=10))
        return dist.PrefixStore(f"edgemod/attempt-{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)

    def close(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()

    def device(self):
        import torch

        return torch.device("cuda", self.local_rank) if self.enabled and torch.cuda.is_available() else torch.device("cpu")

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    def all_reduce_mean(self, value: float) -> float:
        if not self.enabled:
            return float(value)
        import torch
        import torch.distributed as dist

        tensor = torch.tensor([float(value)], dtype=torch.float64, device=self.device())
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.world

    def broadcast_object(self, obj, src: int = 0):
        """Rank `src`'s value on every rank (so decisions such as early stopping agree)."""
        if not self.enabled:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=src)
        return box[0]

    def wrap(self, model):
        """The model in DDP when distributed; gradients are averaged over ranks in backward."""
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        model.to(self.device())
        ids = [self.local_rank] if self.device().type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def rank_batch_size(self, global_batch: int) -> int:
        if global_batch % self.world:
            raise EdgemodError(f"distill.batch_size {global_batch} is not divisible by the {self.world} workers",
                               f"set distill.batch_size to a multiple of {self.world} (it is the global batch)")
        return global_batch // self.world


class GlobalBatches:
    """Batch sampler: this rank's rows of the global batches a 1-process run would draw.

    `order` is a DataLoader over row indices built exactly like the 1-process loader (same batch
    size, sampler and generator), so re-seeding its generator per epoch gives the same global order.
    `skip` global batches are passed over without loading data (resume inside an epoch).
    """

    def __init__(self, order, rank: int, world: int):
        self.order, self.rank, self.world, self.skip = order, rank, world, 0

    def __len__(self) -> int:
        return len(self.order) - self.skip

    def __iter__(self):
        for number, rows in enumerate(self.order):
            if number >= self.skip:
                # a short last batch can leave a rank without rows: it gets one padding row, weighted 0
                yield rows[self.rank::self.world].tolist() or rows[:1].tolist()
