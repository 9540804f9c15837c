"""Recorded activity: every array a synapse group reads, batch first ``[B, T, ...]``.

Keys are NIR node names: ``audio_input``, ``visual_input`` (the image, presented at every
step) and one key per LIF population (its spikes). The same mapping comes from the PyTorch
model (:func:`activity_from_torch`), from any backend's :class:`~hardware.backends.ChipRun`
(:func:`activity_from_run`) and, for any NIR graph, from a simulator's recorded states
(:func:`activity_from_graph`), which is what makes their counts comparable by construction.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

import numpy as np
import torch

from export.nir_export import spiking_layers
from hardware.backends import ChipRun
from hardware.ir.graph import ChipGraph
from taaf.model.network import AVSpikingNet, ChipOutput

ArrayLike = torch.Tensor | np.ndarray


@dataclass(frozen=True, eq=False)
class Activity:
    """Read-only ``name -> [B, T, ...]`` tensors with one batch size and one step count."""

    arrays: Mapping[str, torch.Tensor]

    def __post_init__(self) -> None:
        if not self.arrays:
            raise ValueError("activity is empty")
        shapes = {k: tuple(v.shape[:2]) for k, v in self.arrays.items()}
        if len(set(shapes.values())) != 1:
            raise ValueError(f"activity arrays disagree on [B, T]: {shapes}")
        object.__setattr__(self, "arrays", MappingProxyType(dict(self.arrays)))
        object.__setattr__(self, "_nonzero", {})
        object.__setattr__(self, "_masks", {})

    @classmethod
    def of(cls, arrays: Mapping[str, ArrayLike]) -> "Activity":
        """Build an Activity from numpy arrays or tensors (converted to tensors)."""
        return cls({k: torch.as_tensor(v) for k, v in arrays.items()})

    @property
    def samples(self) -> int:
        """Batch size B shared by all arrays."""
        return int(next(iter(self.arrays.values())).shape[0])

    @property
    def steps(self) -> int:
        """Number of time steps T shared by all arrays."""
        return int(next(iter(self.arrays.values())).shape[1])

    def mask(self, name: str) -> torch.Tensor:
        """:func:`count_mask` of ``name``, computed once and shared by the metrics (the one full
        pass over each array; it costs one float copy of the array while the Activity lives)."""
        cache: dict[str, torch.Tensor] = self._masks  # type: ignore[attr-defined]
        if name not in cache:
            cache[name] = count_mask(self[name])
        return cache[name]

    def nonzero_per_step(self, name: str) -> torch.Tensor:
        """``[T, ...]`` int64: non-zero entries of ``name`` over the batch at each step."""
        cache: dict[str, torch.Tensor] = self._nonzero  # type: ignore[attr-defined]
        if name not in cache:
            cache[name] = self.mask(name).sum(dim=0).long()
        return cache[name]

    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            return self.arrays[name]
        except KeyError:
            raise KeyError(f"no activity recorded for {name!r} (have {sorted(self.arrays)})") from None


def count_mask(x: torch.Tensor) -> torch.Tensor:
    """``x != 0`` as float: torch sums floats several times faster than bools on CPU. Sums over
    the batch dimension stay exact integers (float32 below 2**24 samples, float64 beyond)."""
    return (x != 0).to(torch.float32 if x.shape[0] < 2**24 else torch.float64)


def input_activity(audio: ArrayLike, image: ArrayLike) -> dict[str, torch.Tensor]:
    """The two chip inputs; a static image [B, C, H, W] is repeated over T as a view (no copy), a
    per-step stream [B, T, C, H, W] is taken as it is."""
    audio_t, image_t = torch.as_tensor(audio), torch.as_tensor(image)
    steps = audio_t.shape[1]
    if image_t.dim() == 5:
        return {"audio_input": audio_t, "visual_input": image_t}
    return {"audio_input": audio_t,
            "visual_input": image_t.unsqueeze(1).expand(-1, steps, *image_t.shape[1:])}


@torch.no_grad()
def activity_from_torch(model: AVSpikingNet, audio: ArrayLike, image: ArrayLike) -> Activity:
    """Run ``model.chip(record=True)`` once and collect its inputs and spikes (``image`` static or a
    per-step stream, as :func:`hardware.backends.time_major_inputs` takes it)."""
    from hardware.backends import stream_schedule

    dtype = next(model.parameters()).dtype
    audio_t, image_t = torch.as_tensor(audio, dtype=dtype), torch.as_tensor(image, dtype=dtype)
    out = model.chip(audio_t, image_t, record=True, schedule=stream_schedule(image_t))
    return activity_from_chip(model, out, audio_t, image_t)


def activity_from_chip(model: AVSpikingNet, out: ChipOutput, audio: ArrayLike, image: ArrayLike) -> Activity:
    """From a ``chip(..., record=True)`` output you already have (count an inference you ran)."""
    if not out.spikes:
        raise ValueError("the chip output holds no spikes: call chip(..., record=True)")
    names = spiking_layers(model)
    return Activity({**input_activity(audio, image), **{names[k]: v for k, v in out.spikes.items()}})


def activity_from_run(run: ChipRun, audio: ArrayLike, image: ArrayLike) -> Activity:
    """A backend's recorded spikes plus the inputs it was given."""
    if not run.spikes:
        raise ValueError("the ChipRun holds no spikes: run the backend with spike recording")
    return Activity({**input_activity(audio, image), **{k: torch.as_tensor(v) for k, v in run.spikes.items()}})


def activity_from_graph(chip: ChipGraph, inputs: Mapping[str, np.ndarray],
                        states: Mapping[str, Mapping[str, np.ndarray]]) -> Activity:
    """Any NIR graph's activity from what its simulator was given and recorded: ``inputs[name]``
    ``[T, B, ...]`` and ``states[layer]['spikes']`` ``[T, B, ...]`` (the reference simulator's
    ``run(inputs, record=True).states``; Lava and emulator results have the same structure),
    as batch-first arrays keyed by node name, shaped like the chip IR's Inputs and layers."""
    arrays: dict[str, torch.Tensor] = {}
    owner = {part: node for node, pop in chip.split.items() for part in pop.parts}
    shapes = {**chip.inputs, **{n: layer.shape for n, layer in chip.neurons.items()}}
    for name, shape in shapes.items():
        if name in chip.inputs:
            if name not in inputs:
                raise KeyError(f"no input {name!r} (have {sorted(inputs)})")
            x = np.asarray(inputs[name])
        elif name in owner:  # one part of a split population: results come back under the node's name
            node = owner[name]
            if "spikes" not in states.get(node, {}):
                raise KeyError(f"no recorded spikes of node {node!r}: run the simulator with record=True")
            x = chip.split[node].take(np.asarray(states[node]["spikes"]))[name]
        else:
            if name not in states or "spikes" not in states[name]:
                raise KeyError(f"no recorded spikes of layer {name!r}: run the simulator with record=True")
            x = np.asarray(states[name]["spikes"])
        arrays[name] = torch.as_tensor(np.swapaxes(_time_major(name, x, shape), 0, 1))
    return Activity(arrays)


def _time_major(name: str, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``x`` as ``[T, B, *shape]``; an unbatched ``[T, *shape]`` gets a batch of one."""
    size = int(np.prod(shape, dtype=np.int64))
    if x.shape[1:] == tuple(shape) or (x.ndim == 2 and x.shape[1] == size):
        return x.reshape(x.shape[0], 1, *shape)
    if x.ndim < 2 or int(np.prod(x.shape[2:], dtype=np.int64)) != size:
        raise ValueError(f"{name!r}: expected [T, B, *{shape}], got {x.shape}")
    return x.reshape(x.shape[0], x.shape[1], *shape)
