"""Multi-process training under ``torchrun``: the process group and the few collectives replab uses.

``torchrun`` starts one process per GPU (or CPU worker) and tells each its place through the
environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``).
:func:`setup` joins the group (nccl for CUDA, gloo for CPU); without those variables it does
nothing, and every helper here answers as a single process would (rank 0 of 1, the main
process, reductions that return their input), so single-process runs are unchanged.

What is split between ranks and what is not is described in docs/distributed.md.
"""

from __future__ import annotations

import contextlib
import datetime
import os

import torch
import torch.distributed as dist


def launched() -> bool:
    """True when ``torchrun`` (or another launcher) started this process as one of a group."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def is_active() -> bool:
    """True once this process has joined a process group (:func:`setup`)."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_active() else 0


def world_size() -> int:
    return dist.get_world_size() if is_active() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0)) if is_active() else 0


def is_main() -> bool:
    """Rank 0: the one process that prints and writes the run folder."""
    return rank() == 0


def setup(device_type: str = "cpu", timeout_minutes: float = 60) -> bool:
    """Join the group that ``torchrun`` described in the environment; False (and nothing done)
    without one.

    ``device_type`` ``cuda`` picks nccl and pins this process to GPU ``LOCAL_RANK``; ``cpu`` picks
    gloo. The timeout bounds how long a rank waits at a collective for the others.
    """
    if not launched() or is_active():
        return is_active()
    if device_type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    backend = "nccl" if device_type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(minutes=timeout_minutes))
    return True


def teardown(wait_for_all: bool = True) -> None:
    """Leave the group; by default once every rank has got here, so none closes its links while
    another still uses them.

    After an error the others may never get here: ``wait_for_all=False`` leaves at once, and the
    launcher then stops the rest instead of every rank waiting out the collective timeout.
    """
    if is_active():
        if wait_for_all:
            dist.barrier()
        dist.destroy_process_group()


@contextlib.contextmanager
def session(device_type: str = "cpu", timeout_minutes: float = 60):
    """``setup`` on entry, ``teardown`` on exit (also on errors), for one command's lifetime."""
    joined = setup(device_type, timeout_minutes)
    try:
        yield joined
    except BaseException:
        if joined:
            teardown(wait_for_all=False)
        raise
    if joined:
        teardown()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise sum over ranks (a new tensor; the input itself when single-process)."""
    if not is_active():
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise mean over ranks; every rank gets the same numbers."""
    return all_reduce_sum(tensor) / world_size() if is_active() else tensor


def broadcast_object(obj, src: int = 0):
    """Rank ``src``'s ``obj`` on every rank (pickled), so decisions taken on it agree everywhere."""
    if not is_active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_objects(obj) -> list:
    """Every rank's ``obj``, in rank order."""
    if not is_active():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """All ranks' ``tensor`` concatenated along dim 0, in rank order, WITH gradients.

    The backward pass sends each rank the summed gradient of its own rows, so with DDP's
    gradient averaging the update equals that of one process on the whole global batch.
    Every rank must pass the same shape.
    """
    if not is_active():
        return tensor
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor), dim=0)


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` in DistributedDataParallel (gradients averaged over ranks in backward)."""
    from torch.nn.parallel import DistributedDataParallel

    ids = (
        [device.index if device.index is not None else local_rank()]
        if device.type == "cuda"
        else None
    )
    return DistributedDataParallel(model, device_ids=ids)
