"""Count the calls that make the host wait for the device: value reads and data-dependent shapes.

On a GPU each of these stops the host until the device has caught up (``.item()``, ``bool(t)``,
``nonzero``, a boolean mask index ...), so the next step cannot be queued behind the running one.
They are counted here with a torch function mode, which works on a CPU too: a test on any machine
can say how many such calls a step makes (CUDA's ``set_sync_debug_mode`` needs a GPU). Copies
between devices are not seen (on a CPU there are none).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from typing import Iterator

import torch
from torch.overrides import TorchFunctionMode

READS = {"item", "__bool__", "__float__", "__int__", "__index__", "tolist", "numpy", "cpu"}
DATA_SHAPED = {"nonzero", "argwhere", "unique", "unique_consecutive", "masked_select", "nonzero_static"}


def _is_host_read(name: str, args: tuple, kwargs: dict) -> bool:
    if name in READS or name in DATA_SHAPED:
        return True
    if name == "repeat_interleave":  # with tensor repeats its output size is read, unless given
        repeats = args[1] if len(args) > 1 else args[0] if args else kwargs.get("repeats")
        return isinstance(repeats, torch.Tensor) and "output_size" not in kwargs
    if name == "__getitem__":  # a boolean mask as index
        index = args[1] if len(args) > 1 else None
        parts = index if isinstance(index, tuple) else (index,)
        return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in parts)
    return False


class HostReads(TorchFunctionMode):
    """Records host-reading calls by name while active and not ``paused``."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self.paused = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if not self.paused and _is_host_read(name, args, kwargs):
            self.calls[name] += 1
        return func(*args, **kwargs)

    @contextlib.contextmanager
    def pause(self) -> Iterator[None]:
        """Not counted inside (a part measured on its own)."""
        self.paused += 1
        try:
            yield
        finally:
            self.paused -= 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())


HOST_SIDE = ("sample_warps",)  # a method module's functions that read CPU tensors by contract (random streams)


def step_reads(run, module, t: int) -> dict[str, int]:
    """Host reads of ``run.step(t)``, by where they come from: the rasterizer (its sparse pixel lists
    have data-dependent sizes by design), host-side state (the augmentations' CPU random streams,
    torch Adam's CPU step counter), and device values (the ones a GPU step should not have).
    ``module`` is the method's module, whose ``rasterize`` and ``sample_warps`` are watched."""
    reads = HostReads()
    counts = {"rasterizer": 0, "host-side state": 0}

    def watched(fn, label):
        def inner(*a, **k):
            before = reads.total
            out = fn(*a, **k)
            counts[label] += reads.total - before
            return out
        return inner

    saved = {name: getattr(module, name) for name in ("rasterize", *HOST_SIDE)}
    own_step = run.opt.__dict__.get("step")  # an LR scheduler wraps the instance's step
    module.rasterize = watched(saved["rasterize"], "rasterizer")
    for name in HOST_SIDE:
        setattr(module, name, watched(saved[name], "host-side state"))
    run.opt.step = watched(run.opt.step, "host-side state")
    try:
        with reads:
            run.step(t)
    finally:
        for name, fn in saved.items():
            setattr(module, name, fn)
        if own_step is None:
            del run.opt.step
        else:
            run.opt.step = own_step
    counts["device values"] = reads.total - counts["rasterizer"] - counts["host-side state"]
    return counts
