"""Training checkpoints: resumable state (`last.pt`, keyed to the run's inputs) and weights files.

A checkpoint of other inputs, or one that cannot be read, is ignored with a message: training starts
from scratch rather than continuing from the wrong state. Files are written to a temp path, then renamed.
"""
from __future__ import annotations

from pathlib import Path

from edgemod.console import say
from edgemod.fsutil import atomic_path
from edgemod.training.distributed import DistributedContext


def resume(checkpoints: Path, key: str, model, optimizer, scheduler, console,
            dist: DistributedContext | None = None) -> dict:
    """The training state to continue from (fresh when there is no usable `last.pt`).

    Distributed: rank 0 reads it and sends it to the others, whose disks (other nodes) may not hold it."""
    dist = dist or DistributedContext()
    saved = dist.broadcast_object(read_checkpoint(checkpoints / "last.pt", key, console) if dist.is_main else None)
    if saved is None:
        return {"epoch": 0, "step": 0, "best": -1.0, "best_epoch": 0, "history": []}
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    state = saved["state"]
    inside = f", batch {state['step_in_epoch']} of epoch {state['epoch'] + 1}" if state.get("step_in_epoch") else ""
    say(console, f"train: resuming at step {state['step']} (after epoch {state['epoch']}{inside})")
    return state


def read_checkpoint(path: Path, key: str, console) -> dict | None:
    import torch

    if not path.exists():
        return None
    try:
        saved = torch.load(path, weights_only=False, map_location="cpu")
    except Exception as error:
        say(console, f"train: checkpoint {path} is unreadable ({error}); starting from scratch")
        return None
    if saved.get("key") != key:
        say(console, "train: checkpoint belongs to other inputs; starting from scratch")
        return None
    return saved


def save_state(path: Path, key: str, model, optimizer, scheduler, state: dict) -> None:
    import torch

    payload = {"key": key, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
               "scheduler": scheduler.state_dict(), "state": state}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def save_weights(model, path: Path) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))


def load_weights(model, path: Path) -> None:
    from safetensors.torch import load_file

    model.load_state_dict(load_file(str(path)))
