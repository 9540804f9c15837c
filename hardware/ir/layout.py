"""The batch/time layout: many samples in one stream of chip time steps.

Written once here and used by every consumer that lays samples out in time or reads them back:
the Lava network (:mod:`hardware.loihi.network`), the read-back into the reference time base
(:func:`hardware.loihi.program.unpack`), the emulator and the netx runs.

Batch evaluation (many samples in one Lava run)
----------------------------------------------
Sample ``b`` occupies input steps ``[b P + G, b P + G + T)``, ``P = T + G``: each sample is
preceded by a gap of ``G`` = the largest delay ``d`` of any term (0 without Delay nodes /
recurrence). Each layer is a ``LIFReset`` with ``reset_interval = P`` and
``reset_offset = (1 + G + L(X)) mod P``: it zeroes ``u`` and ``v`` exactly at the step where
the first input of a sample reaches it, so its own latency decides its reset and no state leaks
between samples (what arrives after a sample's ``T`` steps only lands in the layer's own gap,
which the next reset clears; bias-only integration before the first sample likewise). Only
delayed terms look back across the boundary (up to ``G`` steps, into the gap): their source
layers are silenced during the gap by a **gate**: one extra RingBuffer neuron, 1 during every
gap, inhibits them through a (Delay)Dense (delay ``L(S) - 1``) strongly enough to beat any
input plus bias (fixed point: the rule checks the sum cannot wrap the 24-bit current). The
gate is part of every mapping with delayed terms, whatever the batch size, so a sample's result
never depends on the batch it runs in. Total steps: ``B P + max L``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from hardware.errors import LavaMappingError


@dataclass(frozen=True)
class BatchLayout:
    """Sample ``b``, step ``t`` of a node with latency ``L`` sits at stream index
    ``b P + G + L + t`` (``P = T + G``); the stream has ``B P + tail`` steps.

    ``steps`` is ``T``, ``batch`` ``B``, ``lead`` the gap ``G`` before every sample and ``tail``
    the largest latency (the steps the last sample needs to reach the deepest readout).
    """

    steps: int
    batch: int
    lead: int = 0
    tail: int = 0

    def __post_init__(self) -> None:
        for what in ("steps", "batch"):
            if int(getattr(self, what)) < 1:
                raise LavaMappingError(f"a batch needs at least one step and one sample ({what} = "
                                       f"{getattr(self, what)})")
        if self.lead < 0 or self.tail < 0:
            raise LavaMappingError(f"lead {self.lead} and tail {self.tail} must be >= 0")

    @property
    def period(self) -> int:
        """``P = T + G``: the stream steps one sample occupies."""
        return self.steps + self.lead

    @property
    def total(self) -> int:
        """Steps of the whole stream."""
        return self.batch * self.period + self.tail

    def indices(self, latency: int = 0) -> np.ndarray:
        """Stream index of every (step, sample) of a node with this latency: [T, B]."""
        return (np.arange(self.batch)[None, :] * self.period + self.lead + latency
                + np.arange(self.steps)[:, None])

    def windows(self, raw: np.ndarray, latency: int) -> np.ndarray:
        """A recording ``[total, n]`` -> ``[T, B, n]`` (the reference simulator's time base)."""
        return np.asarray(raw)[self.indices(latency)]

    def place(self, local: np.ndarray, latency: int, dtype=np.float64) -> np.ndarray:
        """The inverse of :meth:`windows`: ``[T, B, n]`` -> a zero stream ``[total, n]``."""
        local = np.asarray(local)
        out = np.zeros((self.total, local.shape[-1]), dtype)
        out[self.indices(latency)] = local
        return out

    def reset_offset(self, latency: int) -> int:
        """``LIFReset``'s offset for a layer: the Lava step (counted from 1) at which the first
        input of a sample reaches it, modulo ``P``."""
        return (1 + self.lead + latency) % self.period

    def gap_mask(self) -> np.ndarray:
        """bool ``[total]``: True during every sample's gap (where delayed sources are gated)."""
        mask = np.zeros(self.total, bool)
        starts = np.arange(self.batch) * self.period
        for s in starts:
            mask[s:s + self.lead] = True
        return mask


def stack_inputs(shapes: Mapping[str, tuple[int, ...]], inputs: Mapping[str, np.ndarray]
                 ) -> tuple[dict[str, np.ndarray], bool, int, int]:
    """Check the Input arrays ([T, B, *shape], or [T, *shape] for one sample) against the
    graph's Input shapes; -> ({name: [T, B, n] float64}, batched?, T, B)."""
    if set(inputs) != set(shapes):
        raise LavaMappingError(f"inputs must be exactly the Input nodes {sorted(shapes)}, got {sorted(inputs)}")
    arrays, layouts = {}, set()
    for name, shape in shapes.items():
        shape = tuple(shape)
        a = np.asarray(inputs[name], np.float64)
        batched = not (a.ndim == 1 + len(shape) and a.shape[1:] == shape)
        layouts.add(batched)
        if not batched:
            a = a[:, None]
        if a.shape[2:] != shape or a.ndim != 2 + len(shape):
            raise LavaMappingError(f"input {name!r}: expected [T, B, *{shape}], got {a.shape}")
        arrays[name] = a.reshape(a.shape[0], a.shape[1], -1)
    sizes = {a.shape[:2] for a in arrays.values()}
    if len(sizes) != 1 or len(layouts) != 1:
        raise LavaMappingError(f"all inputs need the same [T, B], got { {n: a.shape for n, a in arrays.items()} }")
    (steps, batch), = sizes
    if steps < 1 or batch < 1:
        raise LavaMappingError("inputs need at least one step and one sample")
    return arrays, layouts.pop(), steps, batch




__all__ = ["BatchLayout", "stack_inputs"]
