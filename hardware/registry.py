"""The backend registry: every simulator or chip ``taaf simulate`` (and the benchmarks) can run.

One :class:`Backend` per name, in the spirit of NeuroBench's one-job-per-class metrics: it says
what it is, whether it computes in Loihi fixed point, and how it runs

* a trained checkpoint's chip part (``for_model``: a runner ``(audio, image) -> ChipRun``, for
  accuracy and agreement with the PyTorch model), and
* any NIR graph (``for_graph``: ``(graph, inputs [T, B, ...], dt, record) -> result`` with
  ``outputs[name]`` [T, B, ...] per Output and ``states[node]`` ``{'spikes', 'v', ...}``, the
  reference simulator's format).

A backend that cannot do one of the two says why (``graph_note``) instead of a runner; callers
never branch on backend names. Heavy imports (Lava, snnTorch, Norse, torch models) happen only
when a runner is built.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import nir
import numpy as np

from taaf.errors import TaafError

ModelRunnerFactory = Callable[[object, float], Callable]  # (AVSpikingNet, dt) -> (audio, image) -> ChipRun
GraphRunner = Callable[[nir.NIRGraph, Mapping[str, np.ndarray], "float | None", bool], object]


@dataclass(frozen=True)
class Backend:
    """A named backend: how it runs a checkpoint and a NIR graph (either may be absent, with a
    one-line reason in ``graph_note``)."""

    name: str
    description: str
    fixed_point: bool
    for_model: ModelRunnerFactory
    for_graph: GraphRunner | None = None
    graph_note: str = ""

    def model_runner(self, model, dt: float) -> Callable:
        """``(audio [B,T,F], image [B,C,H,W]) -> ChipRun`` with the mapping done once."""
        return self.for_model(model, dt)

    def run_graph(self, graph: nir.NIRGraph, inputs: Mapping[str, np.ndarray], dt: float | None,
                  record: bool = False, calibrate: bool = False):
        """Run ``graph`` on ``inputs`` (one array per Input node, [T, B, *shape]). ``calibrate``
        (fixed-point backends only): each layer's scale follows the currents the float reference
        drives on these inputs (:func:`hardware.loihi.program.calibrated_rule`), not the
        worst-case bound."""
        if self.for_graph is None:
            raise TaafError(f"backend {self.name!r} cannot run a NIR file: {self.graph_note}")
        if calibrate and not self.fixed_point:
            raise TaafError(f"backend {self.name!r} is not fixed point: calibration picks fixed-point scales "
                            f"(use lava-fixed or loihi-emu)")
        if self.name != "reference":  # the reference simulator sizes its own run
            check_run_budget(graph, inputs, dt, record)
        if calibrate:
            return self.for_graph(graph, inputs, dt, record, calibrate=True)
        return self.for_graph(graph, inputs, dt, record)


def check_run_budget(graph: nir.NIRGraph, inputs: Mapping[str, np.ndarray], dt: float | None,
                     record: bool) -> None:
    """Refuse a graph run whose T x batch x state (as the reference simulator would hold it)
    exceeds the memory budget, before a backend allocates it; a graph the reference cannot
    compile is left to the backend, which reports it in its own words."""
    from hardware.reference import ReferenceSimulator
    from hardware.reference.errors import GraphError
    from taaf import budget

    try:
        sim = ReferenceSimulator(graph, dt)
    except (GraphError, ValueError, TypeError):
        return
    name = next((n for n in sim.plan.inputs if n in inputs), None)
    if name is None:
        return
    shape = np.shape(inputs[name])
    per_sample = len(sim.plan.ops[name].out_shape)
    steps, batch = (shape[0] if shape else 1), (shape[1] if len(shape) == per_sample + 2 else 1)
    budget.check(f"running {steps} steps x batch {batch}", sim.run_bytes(steps, batch, record),
                 "outputs, recorded states and neuron state")


# --- checkpoint runners -------------------------------------------------------------------------

def _torch_model(model, dt):
    from hardware.backends import run_torch

    return lambda audio, image: run_torch(model, audio, image)


def _reference_model(model, dt):
    from export.nir_export import model_to_nir
    from hardware.backends import run_reference
    from hardware.reference import ReferenceSimulator

    sim = ReferenceSimulator(model_to_nir(model, dt), dt)
    return lambda audio, image: run_reference(model, audio, image, dt, simulator=sim)


def _peer_model(name):
    def factory(model, dt):
        from hardware.peers import peer_runner

        return peer_runner(name, model, dt)
    return factory


def _lava_model(fixed):
    def factory(model, dt):
        from hardware.loihi.lava_backend import lava_runner

        return lava_runner(model, fixed=fixed, dt=dt)
    return factory


def _emu_model(fixed):
    def factory(model, dt):
        from hardware.loihi.emulator import emulator_runner

        return emulator_runner(model, fixed=fixed, dt=dt)  # engine: $TAAF_LOIHI_EMU_ENGINE
    return factory


# --- graph runners ------------------------------------------------------------------------------

def _reference_graph(graph, inputs, dt, record):
    from hardware.reference import ReferenceSimulator

    return ReferenceSimulator(graph, dt).run(inputs, record=record)


def _peer_graph(name):
    def run(graph, inputs, dt, record):
        from hardware.peers import run_peer_graph

        return run_peer_graph(name, graph, inputs, dt)
    return run


def _calibrated(graph, inputs, dt, calibrate: bool):
    from hardware.loihi.program import calibrated_rule

    return calibrated_rule(graph, inputs, dt) if calibrate else None


def _lava_graph(fixed):
    def run(graph, inputs, dt, record, calibrate=False):
        from hardware.loihi.lava_backend import run_lava_graph

        return run_lava_graph(graph, inputs, fixed=fixed, dt=dt, record_v=record,
                              rule=_calibrated(graph, inputs, dt, calibrate))
    return run


def _emu_graph(fixed):
    def run(graph, inputs, dt, record, calibrate=False):
        from hardware.loihi.emulator import emulate_graph

        return emulate_graph(graph, inputs, fixed=fixed, dt=dt, record_v=record,
                             rule=_calibrated(graph, inputs, dt, calibrate))
    return run


BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("torch", "the trained PyTorch model itself", False, _torch_model,
            graph_note="it is the trained model; a NIR file has no PyTorch model (use 'reference')"),
    Backend("reference", "numpy NIR reference simulator (float64, forward Euler)", False, _reference_model,
            _reference_graph),
    Backend("snntorch", "snnTorch's own NIR importer (single-Input graphs)", False, _peer_model("snntorch"),
            _peer_graph("snntorch")),
    Backend("norse", "Norse's own NIR importer (single-Input graphs)", False, _peer_model("norse"),
            _peer_graph("norse")),
    Backend("lava", "Lava processes, floating point, Loihi2SimCfg on the CPU", False, _lava_model(False),
            _lava_graph(False)),
    Backend("lava-fixed", "Lava processes, Loihi fixed point (bit-accurate models)", True, _lava_model(True),
            _lava_graph(True)),
    Backend("loihi-emu", "batched bit-exact emulator of the lava-fixed run", True, _emu_model(True),
            _emu_graph(True)),
    Backend("loihi-emu-float", "batched emulator of the float lava run", False, _emu_model(False),
            _emu_graph(False)),
)}


def get_backend(name: str) -> Backend:
    """The registered backend ``name``, or a one-line error listing the choices."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise TaafError(f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})") from None


def graph_backends() -> tuple[str, ...]:
    """Names of the backends that run NIR files."""
    return tuple(n for n, b in BACKENDS.items() if b.for_graph is not None)


__all__ = ["BACKENDS", "Backend", "get_backend", "graph_backends"]
