"""One optimiser update that is undone on the device when it would leave non-finite values.

Why on the device: asking the host "is the loss finite?" before updating waits for the GPU to
finish the step, so the next step cannot be queued behind it. Here the update always runs; a
0-d boolean tensor says whether it was good, and a bad one is undone with ``torch.where`` (the
parameters and Adam's moments come back bit for bit; Adam's step counter still counts it, which
moves its bias correction by one step). The engine reads the flag when it
reports (``engine.optimise``), every K steps on a GPU. On a CPU the result is the same as
checking first.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch


def all_finite(tensors: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """0-d bool tensor: every element of every tensor (``None`` ones skipped) is finite."""
    flags = [torch.isfinite(t).all() for t in tensors if t is not None]
    return torch.stack(flags).all() if flags else torch.ones((), dtype=torch.bool)


MOMENTS = ("exp_avg", "exp_avg_sq")  # Adam's per-parameter state, shaped like the parameter


def _saved_moments(opt: torch.optim.Optimizer, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Copies of each parameter's moments, zeros where they do not exist yet (the first step makes
    them from zeros)."""
    state = [opt.state.get(p, {}) for p in params]
    return [s[k].clone() if k in s else torch.zeros_like(p) for p, s in zip(params, state) for k in MOMENTS]


@torch.no_grad()
def guarded_update(opt: torch.optim.Optimizer, params: Sequence[torch.Tensor], loss: torch.Tensor,
                   after: Callable[[], None] | None = None) -> torch.Tensor:
    """``opt.step()`` (then ``after``, e.g. clamps) unless the loss, a gradient or a new value is not
    finite; returns that decision as a 0-d bool tensor, with no host read.

    ``loss`` must already be back-propagated into ``params``' gradients.
    """
    ok = torch.isfinite(loss).all() & all_finite([p.grad for p in params])
    saved = [p.detach().clone() for p in params]
    moments = _saved_moments(opt, params)
    opt.step()
    if after is not None:
        after()
    ok = ok & all_finite(params)
    for p, s in zip(params, saved):
        p.copy_(torch.where(ok, p, s))
    for (p, k), s in zip(((p, k) for p in params for k in MOMENTS), moments):
        m = opt.state.get(p, {}).get(k)
        if m is not None:
            m.copy_(torch.where(ok, m, s))
    return ok
