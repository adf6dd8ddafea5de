"""The `edgemod` CLI with one injected fault: a worker that dies abruptly in the middle of training.

    python tests/kill_rank_after_step.py STEP MARKER [edgemod arguments...]

Under torchrun, rank 1 (rank 0 when alone) exits with `os._exit(1)` right after its STEP-th
optimizer step, the way an OOM-killed or preempted worker vanishes: no exception, no cleanup.
It creates the file MARKER first, so the worker torchrun restarts trains normally.
"""
import os
import sys
from pathlib import Path


def main() -> int:
    step, marker, edgemod_args = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
    victim = min(1, int(os.environ.get("WORLD_SIZE", "1")) - 1)
    if int(os.environ.get("RANK", "0")) == victim and not marker.exists():
        _die_after_optimizer_step(step, marker)
    from edgemod.cli import main as edgemod

    return edgemod(edgemod_args)


def _die_after_optimizer_step(step: int, marker: Path) -> None:
    from torch.optim.optimizer import register_optimizer_step_post_hook

    taken = 0

    def count(optimizer, args, kwargs) -> None:
        nonlocal taken
        taken += 1
        if taken == step:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            os._exit(1)

    register_optimizer_step_post_hook(count)


if __name__ == "__main__":
    sys.exit(main())
