"""The chip IR: what every Loihi-family backend, target and counter consumes.

A NIR graph is lowered once (:func:`hardware.ir.lower.lower_graph`) into a :class:`ChipGraph`:
*neuron layers* (the populations a chip holds), *readouts* (the Outputs, recorded from synapse
accumulators or from a layer's spikes) and the *terms* that feed them -- every path of
stateless NIR nodes between two neuron layers composed into one linear map
``matrix @ source[t - delay]``. Each layer and readout carries its latency (hop count from the
Inputs), which fixes the one latency-alignment rule (:meth:`ChipGraph.synaptic_delay`).

Like NIR's primitives (``nir/ir/*.py``) every class here is a small frozen dataclass that
checks itself at construction, so a consumer never re-validates or re-derives it.
No Lava, torch or NIR import: the IR is backend-neutral.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from hardware.errors import LavaMappingError


class NeuronKind(str, enum.Enum):
    """The NIR neuron a layer came from; all three map to one Loihi CUBA-LIF compartment."""

    LIF = "LIF"
    IF = "IF"
    CubaLIF = "CubaLIF"


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _fail(where: str, what: str) -> LavaMappingError:
    return LavaMappingError(f"{where}: {what}")


def _ints(where: str, what: str, value, n: int, minimum: int) -> tuple[int, ...]:
    out = tuple(int(v) for v in value)
    if len(out) != n or any(v < minimum for v in out) or any(int(v) != v for v in value):
        raise _fail(where, f"{what} {tuple(value)!r} must be {n} integers >= {minimum}")
    return out


@dataclass(frozen=True)
class ConvKernel:
    """A term's 2-D convolution kept next to its unrolled matrix, so that counters (valid-position
    dense counts) and native-conv writers need not re-derive it from the matrix.

    PyTorch ``conv2d`` semantics (cross-correlation, zero padding): ``weight`` is
    ``[C_out, C_in / groups, kh, kw]``, ``padding`` is ``((top, bottom), (left, right))``,
    ``in_shape`` is the source's ``(C, H, W)``.
    """

    weight: np.ndarray
    stride: tuple[int, int]
    padding: tuple[tuple[int, int], tuple[int, int]]
    dilation: tuple[int, int]
    groups: int
    in_shape: tuple[int, int, int]

    def __post_init__(self) -> None:
        where = "conv kernel"
        w = np.asarray(self.weight, np.float64)
        if w.ndim != 4 or not np.all(np.isfinite(w)):
            raise _fail(where, f"weight must be 4-D [C_out, C_in/groups, kh, kw] and finite, got shape {w.shape}")
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "stride", _ints(where, "stride", self.stride, 2, 1))
        object.__setattr__(self, "dilation", _ints(where, "dilation", self.dilation, 2, 1))
        pads = tuple(_ints(where, "padding", p, 2, 0) for p in self.padding)
        if len(pads) != 2:
            raise _fail(where, f"padding {self.padding!r} must be ((top, bottom), (left, right))")
        object.__setattr__(self, "padding", pads)
        object.__setattr__(self, "in_shape", _ints(where, "in_shape", self.in_shape, 3, 1))
        groups = int(self.groups)
        if groups < 1 or w.shape[0] % groups or w.shape[1] * groups != self.in_shape[0]:
            raise _fail(where, f"weight {w.shape} with groups={groups} does not fit {self.in_shape[0]} "
                               f"input channels")
        object.__setattr__(self, "groups", groups)
        if min(self.out_shape) < 1:
            raise _fail(where, f"input {self.in_shape} is smaller than the kernel {w.shape[2:]}")

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """``(C_out, H_out, W_out)``: the target's shape (PyTorch's conv2d output formula)."""
        hw = tuple((n + pb + pa - d * (k - 1) - 1) // s + 1
                   for n, (pb, pa), d, k, s in zip(self.in_shape[1:], self.padding, self.dilation,
                                                   self.weight.shape[2:], self.stride))
        return (int(self.weight.shape[0]), *hw)


@dataclass(frozen=True)
class Term:
    r"""A linear path into a neuron layer or readout: ``matrix @ source[t - delay]``.

    ``matrix`` is ``[n_target, n_source]`` (None: identity); ``delay`` is the sum of the NIR
    ``Delay`` steps on the path, plus one per recurrent edge. Every stateless NIR node between
    two neuron layers (Affine, Linear, Scale, Flatten, Conv, pooling, Delay) is folded into it.

    What counters and writers need besides the weights (set by ``lower_graph``; defaults for
    terms built by hand): ``name`` is the NIR node owning the weights (the last Affine / Linear /
    Conv on the path, ``<node>@tap<d>`` when one source reaches it through several delays ``d``,
    else the node next to the target; unique in a graph); ``conv`` is the path's convolution when
    it is the only weighted op (``matrix`` stays its exact unrolled form); ``bias`` is the
    constant (Affine/Conv bias, carried to the target, before the neuron's gain) that ``name``
    adds, held by one term of that node (None elsewhere). The layer's or readout's own ``bias``
    stays the authority: term biases only attribute it.
    """

    source: str
    delay: int
    matrix: np.ndarray | None
    name: str = ""
    conv: ConvKernel | None = None
    bias: np.ndarray | None = None

    def __post_init__(self) -> None:
        where = f"term {self.name or self.source!r}"
        if isinstance(self.delay, bool) or int(self.delay) != self.delay or self.delay < 0:
            raise _fail(where, f"delay {self.delay!r} must be an integer >= 0")
        object.__setattr__(self, "delay", int(self.delay))
        if self.matrix is not None:
            m = np.asarray(self.matrix, np.float64)
            if m.ndim != 2:
                raise _fail(where, f"matrix must be 2-D, got shape {m.shape}")
            if not np.all(np.isfinite(m)):
                raise _fail(where, "weights must be finite")
            object.__setattr__(self, "matrix", m)
        if not isinstance(self.name, str):
            raise _fail(where, f"name must be a string, got {self.name!r}")
        if self.conv is not None:
            if not isinstance(self.conv, ConvKernel):
                raise _fail(where, f"conv must be a ConvKernel, got {type(self.conv).__name__}")
            shape = (_size(self.conv.out_shape), _size(self.conv.in_shape))
            if self.matrix is None or self.matrix.shape != shape:
                raise _fail(where, f"conv {self.conv.in_shape} -> {self.conv.out_shape} needs a {shape} matrix, "
                                   f"got {None if self.matrix is None else self.matrix.shape}")
        if self.bias is not None:
            b = np.asarray(self.bias, np.float64).reshape(-1)
            if not np.all(np.isfinite(b)) or (self.matrix is not None and b.shape != (self.matrix.shape[0],)):
                raise _fail(where, f"bias must be one finite number per target, got shape {b.shape}")
            object.__setattr__(self, "bias", b)

    def dense(self, n_target: int) -> np.ndarray:
        """The matrix, with the identity spelled out (for consumers that need weights)."""
        return np.eye(n_target) if self.matrix is None else self.matrix


@dataclass(frozen=True)
class NeuronLayer:
    r"""One population of current-based LIF neurons (one Lava ``LIF`` process, one netx layer).

    Per step, with ``a`` the summed terms: ``u = (1 - du) u + gain * a``,
    ``v = (1 - dv) v + u + bias``, spike where ``v > threshold``, then ``v = 0``.
    ``gain`` (per neuron) is folded into the synaptic weights by every mapping; ``bias``
    includes ``gain x`` the constants (Affine/Conv biases) upstream. ``latency`` is the
    longest hop count from the Inputs (:meth:`ChipGraph.synaptic_delay`).
    """

    name: str
    kind: NeuronKind
    shape: tuple[int, ...]
    dv: float
    du: float
    threshold: float
    gain: np.ndarray
    bias: np.ndarray
    terms: tuple[Term, ...]
    latency: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", NeuronKind(self.kind))
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        n = self.size
        for what in ("dv", "du", "threshold"):
            value = float(getattr(self, what))
            if not np.isfinite(value):
                raise _fail(f"node {self.name!r}", f"{what} = {value} must be finite")
            object.__setattr__(self, what, value)
        if not (0.0 <= self.dv <= 1.0 and 0.0 <= self.du <= 1.0):
            raise _fail(f"node {self.name!r}", f"decays must lie in [0, 1] (dv = {self.dv}, du = {self.du}): "
                                               f"is dt larger than tau?")
        for what in ("gain", "bias"):
            a = np.asarray(getattr(self, what), np.float64).reshape(-1)
            if a.shape != (n,) or not np.all(np.isfinite(a)):
                raise _fail(f"node {self.name!r}", f"{what} must be {n} finite numbers, got shape {a.shape}")
            object.__setattr__(self, what, a)
        if self.latency < 1:
            raise _fail(f"node {self.name!r}", f"latency {self.latency} must be >= 1")

    @property
    def size(self) -> int:
        """Number of neurons (the product of ``shape``)."""
        return _size(self.shape)


@dataclass(frozen=True)
class Readout:
    """An Output: ``sum(terms) + bias`` read from synapse accumulators (the host adds ``bias``),
    or, when ``direct`` names a layer or Input, that source recorded as it is."""

    name: str
    shape: tuple[int, ...]
    terms: tuple[Term, ...]
    bias: np.ndarray
    latency: int
    direct: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        b = np.asarray(self.bias, np.float64).reshape(-1)
        if b.shape != (self.size,) or not np.all(np.isfinite(b)):
            raise _fail(f"output {self.name!r}", f"bias must be {self.size} finite numbers")
        object.__setattr__(self, "bias", b)

    @property
    def size(self) -> int:
        """Number of values read out per step."""
        return _size(self.shape)


@dataclass(frozen=True)
class ChipGraph:
    """A NIR graph as a chip holds it: Inputs, neuron layers (in evaluation order), readouts.

    ``gap`` is the largest term delay ``G`` (the steps a batch leaves before each sample so that
    delayed terms never read the previous sample); ``gated`` lists the layers that source a
    delayed term (silenced during the gap). Built by :func:`hardware.ir.lower.lower_graph`.
    """

    dt: float
    inputs: dict[str, tuple[int, ...]]
    neurons: dict[str, NeuronLayer]
    readouts: dict[str, Readout]
    gap: int
    gated: tuple[str, ...]

    def __post_init__(self) -> None:
        names = [*self.inputs, *self.neurons, *self.readouts]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise _fail("chip graph", f"duplicate names {dup}")
        if not (np.isfinite(self.dt) and self.dt > 0):
            raise _fail("chip graph", f"dt = {self.dt} must be a positive number")
        for target, terms in [*((n, l.terms) for n, l in self.neurons.items()),
                              *((n, r.terms) for n, r in self.readouts.items())]:
            for t in terms:
                if t.source not in self.inputs and t.source not in self.neurons:
                    raise _fail(f"term {t.source!r} -> {target!r}", "unknown source")
        named = [t.name for n in (*self.neurons, *self.readouts) for t in self.terms_into(n) if t.name]
        clash = sorted({n for n in named if named.count(n) > 1 or n in names})
        if clash:
            raise _fail("chip graph", f"term names {clash} are not unique")

    def latency(self, name: str) -> int:
        """``L(name)``: 0 for Inputs, else the longest hop count from the Inputs."""
        if name in self.inputs:
            return 0
        if name in self.neurons:
            return self.neurons[name].latency
        return self.readouts[name].latency

    def size(self, name: str) -> int:
        """Number of values of an Input, neuron layer or readout."""
        if name in self.inputs:
            return _size(self.inputs[name])
        return (self.neurons.get(name) or self.readouts[name]).size

    def synaptic_delay(self, target: str, term: Term) -> int:
        """Lava synaptic delay ``k = L(target) - L(source) - 1 + d`` of a term: every input
        of ``target`` arrives together (the one latency-alignment rule)."""
        return self.latency(target) - self.latency(term.source) - 1 + term.delay

    @property
    def max_latency(self) -> int:
        """The largest latency of any layer or readout (steps a batch runs past its last sample)."""
        return max([self.latency(n) for n in (*self.neurons, *self.readouts)], default=0)

    def terms_into(self, target: str) -> tuple[Term, ...]:
        """The terms feeding a neuron layer or readout."""
        return (self.neurons.get(target) or self.readouts[target]).terms


__all__ = ["ChipGraph", "ConvKernel", "NeuronKind", "NeuronLayer", "Readout", "Term"]
