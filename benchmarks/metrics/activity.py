"""Recorded activity: every array a synapse group reads, batch first ``[B, T, ...]``.

Keys are NIR node names: ``audio_input``, ``visual_input`` (the image, presented at every
step) and one key per LIF population (its spikes). The same mapping comes from the PyTorch
model (:func:`activity_from_torch`) and from any backend's :class:`~hardware.backends.ChipRun`
(:func:`activity_from_run`), which is what makes their counts comparable by construction.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

import numpy as np
import torch

from export.nir_export import spiking_layers
from hardware.backends import ChipRun
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
    """The two chip inputs; the static image is repeated over T as a view (no copy)."""
    audio_t, image_t = torch.as_tensor(audio), torch.as_tensor(image)
    steps = audio_t.shape[1]
    return {"audio_input": audio_t,
            "visual_input": image_t.unsqueeze(1).expand(-1, steps, *image_t.shape[1:])}


@torch.no_grad()
def activity_from_torch(model: AVSpikingNet, audio: ArrayLike, image: ArrayLike) -> Activity:
    """Run ``model.chip(record=True)`` once and collect its inputs and spikes."""
    dtype = next(model.parameters()).dtype
    audio_t, image_t = torch.as_tensor(audio, dtype=dtype), torch.as_tensor(image, dtype=dtype)
    return activity_from_chip(model, model.chip(audio_t, image_t, record=True), audio_t, image_t)


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
