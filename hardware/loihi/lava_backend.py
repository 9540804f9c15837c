"""The ``lava`` and ``lava-fixed`` backends: the exported chip graph on Lava's CPU simulator.

``run_lava`` answers the question every backend answers (:mod:`hardware.backends`): readouts
``z_audio``, ``z_visual``, ``modality_scores``, ``temporal_scores`` [B, T] and the spikes of
every NIR LIF node [B, T, ...], batch first. The whole batch runs in ONE Lava run (samples
concatenated in time, per-layer resets; see :mod:`hardware.loihi.network`), under the
watchdog. ``lava`` is float (``floating_pt``) and must agree with the reference simulator
spike for spike; ``lava-fixed`` is bit-accurate Loihi fixed point (``fixed_pt``) with the
:class:`~hardware.loihi.quant_rules.PowerOfTwoRule` and the documented input ranges
:data:`TAAF_INPUT_RANGES`.

``run_lava_graph`` runs any NIR graph (``[T, B, ...]`` inputs, like the reference simulator).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import nir
import numpy as np

from export.nir_export import model_to_nir, spiking_layers
from hardware.backends import READOUT_NAMES, ChipRun, time_major_inputs
from hardware.loihi import quant_rules as qr
from hardware.isolation import DEFAULT_TIMEOUT_S
from hardware.loihi.lava_runtime import run_graph
from hardware.loihi.program import LavaProgram, LavaResult, map_graph
from taaf.dynamics import DEFAULT_DT
from taaf.model.network import AVSpikingNet

# Documented analog input ranges of the TAAF chip graph in fixed point (|x| above them is an
# error, never clipped): standardised MFCCs (AV-Digits test max 7.7 with the noisiest preset)
# and pixels in [0, 1]. Graded messages are 12-bit (PowerOfTwoRule.input_bits).
TAAF_INPUT_RANGES = {"audio_input": 16.0, "visual_input": 1.0}


def lava_program(model: AVSpikingNet, fixed: bool, dt: float = DEFAULT_DT,
                 rule: qr.QuantizationRule | None = None,
                 input_ranges: Mapping[str, float] | None = None) -> LavaProgram:
    """The model's exported NIR graph mapped to Lava parameters (reuse it across batches)."""
    graph = model_to_nir(model, dt)
    ranges = dict(TAAF_INPUT_RANGES if input_ranges is None else input_ranges)
    return map_graph(graph, dt, fixed=fixed, rule=rule, input_ranges=ranges if fixed else None)


def _chip_run(model: AVSpikingNet, result: LavaResult) -> ChipRun:
    readouts = {n: np.ascontiguousarray(np.swapaxes(result.outputs[n], 0, 1))
                for n in READOUT_NAMES if n in result.outputs}
    if "temporal_scores" in readouts:
        readouts["temporal_scores"] = readouts["temporal_scores"][..., 0]
    spikes = {n: np.ascontiguousarray(np.swapaxes(result.states[n]["spikes"], 0, 1))
              for n in spiking_layers(model).values()}
    return ChipRun(readouts=readouts, spikes=spikes)


def run_lava(model: AVSpikingNet, audio: np.ndarray, image: np.ndarray, fixed: bool = False,
             dt: float = DEFAULT_DT, *, program: LavaProgram | None = None,
             timeout: float = DEFAULT_TIMEOUT_S) -> ChipRun:
    """The chip part of ``model`` on Lava for audio [B, T, F] and images [B, C, H, W]."""
    program = program or lava_program(model, fixed, dt)
    if program.fixed != fixed:
        raise ValueError(f"program is {'fixed' if program.fixed else 'float'}, but fixed={fixed}")
    layers = tuple(spiking_layers(model).values())
    inputs = time_major_inputs(np.asarray(audio, np.float64), np.asarray(image, np.float64))
    return _chip_run(model, run_graph(program, inputs, record=layers, timeout=timeout))


def lava_runner(model: AVSpikingNet, fixed: bool, dt: float = DEFAULT_DT,
                timeout: float = DEFAULT_TIMEOUT_S) -> Callable[[np.ndarray, np.ndarray], ChipRun]:
    """``(audio, image) -> ChipRun`` with the mapping done once (for ``measure_agreement``)."""
    program = lava_program(model, fixed, dt)
    return lambda audio, image: run_lava(model, audio, image, fixed, dt, program=program, timeout=timeout)


def default_input_ranges(inputs: Mapping[str, np.ndarray]) -> dict[str, float]:
    """max |x| of each input rounded up to a power of two (at least 1): the fixed-point input
    range used by :func:`run_lava_graph` when none is given (depends on the batch: pass
    ``input_ranges`` for results that do not). An input whose values are all integers (spike
    trains, event counts) gets a :class:`~hardware.loihi.quant_rules.IntegerRange`: it is sent
    without fractional bits, which leaves its synapses the weight exponents of spikes."""
    out = {}
    for name, x in inputs.items():
        x = np.asarray(x, np.float64)
        peak = float(np.abs(x).max(initial=0.0))
        value = float(2.0 ** max(0, math.ceil(math.log2(peak)))) if peak > 0 else 1.0
        out[name] = qr.IntegerRange(value) if np.array_equal(x, np.rint(x)) else value
    return out


def run_lava_graph(graph: nir.NIRGraph, inputs: Mapping[str, np.ndarray], fixed: bool = False,
                   dt: float | None = None, *, rule: qr.QuantizationRule | None = None,
                   input_ranges: Mapping[str, float] | None = None, record: bool = True,
                   record_v: bool | tuple[str, ...] = False,
                   timeout: float = DEFAULT_TIMEOUT_S) -> LavaResult:
    """Any NIR graph on Lava: ``inputs[name]`` [T, B, *shape] (or [T, *shape]) ->
    :class:`~hardware.loihi.program.LavaResult` with ``outputs`` per Output node and
    ``states[layer]['spikes']`` (and ``'v'``, fixed: also ``'v_int'``, with ``record_v``) in the
    reference simulator's time base."""
    if fixed and input_ranges is None:
        input_ranges = default_input_ranges(inputs)
    program = map_graph(graph, dt, fixed=fixed, rule=rule, input_ranges=input_ranges)
    if record_v is True:
        record_v = tuple(program.layers)
    return run_graph(program, inputs, record=record, record_v=tuple(record_v or ()), timeout=timeout)


__all__ = ["TAAF_INPUT_RANGES", "default_input_ranges", "lava_program", "lava_runner", "run_lava", "run_lava_graph"]
