"""Reference executor for NIR graphs: the numpy ground truth every other backend is compared to.

Execution semantics (these decide cross-backend agreement, so they are fixed and explicit):

* **Discrete time, step ``dt``.** ``dt`` is required unless ``graph.metadata['dt']`` exists (if
  both are given they must agree). Inputs are ``[T, B, *shape]`` (or ``[T, *shape]`` for B=1;
  results then come back in that layout too). Everything is vectorised over the batch and
  batch elements never interact.
* **One step = one pass in topological order.** Edges are classified by a depth-first search
  from the Input nodes (Inputs in sorted name order, successors in sorted name order). Edges
  that close a cycle (DFS back edges) are *recurrent*; all others are *feed-forward* and form a
  DAG. Each step evaluates every node in topological order of that DAG, so a signal crosses the
  whole feed-forward chain within the step it enters (as in snnTorch/Norse/our PyTorch model).
* **Recurrent edges carry the source's output of the previous step**, i.e. a recurrent loop
  has exactly one step of latency, as in snnTorch's ``RLeaky``. At ``t = 0`` the "previous
  step" is step ``-1``, at which every Input and every stateful node (neurons, Delay) outputs
  0, recurrent edges deliver 0, and every stateless node outputs its response to that, i.e.
  its constant: an Affine on a recurrent edge delivers its bias ``b`` at ``t = 0``
  (snnTorch's ``RLeaky`` adds ``recurrent(spk = 0) = b`` in its first step), not 0.
* **Fan-in is a sum.** Several edges into a node are added (NIR has no concat; this is how
  fusion is expressed), in sorted order of the source names so that results are bitwise
  reproducible. Input nodes take no edges; Output nodes emit their summed input.
* **Stateless nodes** (Affine, Linear, Scale, Conv1d/2d, SumPool2d, AvgPool2d, Flatten,
  Threshold) apply to the summed input of the step. Flatten's ``start_dim``/``end_dim`` index
  the per-sample shape (NIR excludes the batch). Conv padding is zero padding; ``'same'``
  (stride 1 only) pads the extra element after, as PyTorch does. AvgPool2d divides by the
  kernel area (PyTorch's ``count_include_pad=True``).
* **Delay** outputs its input from ``d = round(delay/dt)`` steps earlier (zeros before); a
  delay that is not a whole number of steps (beyond 1e-6 steps) is a :class:`GraphError`.
* **Neurons** (all state starts at 0) use :mod:`taaf.dynamics`: forward Euler with step ``dt``
  for every ``tau`` equation (LI, LIF, CubaLI, CubaLIF); spike when ``v > v_threshold``
  (strict) and set ``v = v_reset`` in the same step (whatever the graph stores: the NIR
  "noBias_subtract" Braille graph stores ``v_reset = 0`` and is run with reset-to-0).
  CubaLIF/CubaLI update the synaptic current first and integrate the voltage with the NEW
  current (snnTorch ``Synaptic``; Norse's NIR import; the NIR paper's Braille network).
  ``I``/``IF`` have no time constant; by default (``integrator="per_step"``) they integrate
  ``v += r*I`` per step as sinabs, Norse, snnTorch and Lava do and as the NIR paper's sinabs
  CNN assumes; ``integrator="euler"`` gives the literal ``v += dt*r*I``.
* **Nested NIRGraph nodes are flattened**: a subgraph ``s`` with exactly one Input and one
  Output is inlined with its nodes renamed ``"s.<inner>"``; its Input/Output become identity
  nodes that edges into/out of ``s`` attach to. Other nested graphs are a GraphError.
* **Shapes are inferred**, from the Input shapes through each node's parameters; every node's
  parameters must fit the shape that reaches it (else GraphError naming the node). Propagated
  ``input_type``/``output_type`` annotations are not trusted (nir 1.0.8 infers wrong conv
  output shapes for non-square kernels), except Flatten's and Conv's stored input shapes.
* **float64** by default (``dtype=np.float32`` available); parameters are converted to per-step
  coefficients in float64 and then cast.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import nir
import numpy as np

from hardware.reference.errors import GraphError, SimulationInputError
from hardware.reference.builders import build_op
from hardware.reference.nodes import BuildContext, Op, Shape
from taaf import budget
from taaf.dynamics import INTEGRATOR_CONVENTIONS, IntegratorConvention

Edge = tuple[str, str]


@dataclass(frozen=True)
class SimulationResult:
    """``outputs[name]``: ``[T, B, *shape]`` per Output node. ``states[node][var]``: recorded
    ``'output'`` of every recorded node, plus ``'spikes'`` (spiking nodes) and ``'v'``/``'i'``
    (neuron state after the step, i.e. after reset). Without a batch axis if the inputs had none."""

    outputs: dict[str, np.ndarray]
    states: dict[str, dict[str, np.ndarray]]
    dt: float


@dataclass(frozen=True)
class ExecutionPlan:
    """A checked graph, ready to step: evaluation order, ops and classified edges."""

    order: tuple[str, ...]  # topological order of the feed-forward DAG
    ops: dict[str, Op]
    sources: dict[str, tuple[str, ...]]  # all sources of a node, sorted (the fan-in sum order)
    recurrent_edges: frozenset[Edge]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


class ReferenceSimulator:
    """Executes a NIR graph step by step in numpy; see the module docstring for the semantics."""

    def __init__(self, graph: nir.NIRGraph, dt: float | None = None, *, dtype=np.float64,
                 integrator: IntegratorConvention = "per_step") -> None:
        self.dtype = np.dtype(dtype)
        if not np.issubdtype(self.dtype, np.floating):
            raise ValueError(f"dtype must be a floating type, got {self.dtype}")
        if integrator not in INTEGRATOR_CONVENTIONS:
            raise ValueError(f"integrator must be one of {INTEGRATOR_CONVENTIONS}, got {integrator!r}")
        self.dt = resolve_dt(graph, dt)
        self.plan = compile_graph(graph, BuildContext(self.dt, self.dtype, integrator))

    @property
    def recurrent_edges(self) -> frozenset[Edge]:
        """The ``(source, target)`` edges that close a cycle and so carry the previous step's output;
        exposed so callers (lowering, tests) can see where the one-step loop latency sits."""
        return self.plan.recurrent_edges

    def run(self, inputs: Mapping[str, np.ndarray],
            record: bool | str | Iterable[str] = False) -> SimulationResult:
        """Simulate ``T`` steps from zero state; ``record`` = True, or node names, or False."""
        plan = self.plan
        arrays, n_steps, batch, batched = self._check_inputs(inputs)
        recorded = self._check_record(record)
        budget.check(f"simulating {n_steps} steps x batch {batch}", self.run_bytes(n_steps, batch, recorded),
                     "outputs, recorded states and neuron state, float64")

        outputs = {o: np.zeros((n_steps, batch) + plan.ops[o].out_shape, self.dtype)
                   for o in plan.outputs}
        traces = {n: {var: np.zeros((n_steps, batch) + plan.ops[n].in_shape, self.dtype)
                      for var in plan.ops[n].state_names} for n in recorded}
        for n in recorded:
            traces[n]["output"] = np.zeros((n_steps, batch) + plan.ops[n].out_shape, self.dtype)
            if plan.ops[n].spiking:
                traces[n]["spikes"] = traces[n]["output"]

        state = {n: plan.ops[n].init_state(batch, self.dtype) for n in plan.order}
        previous = _before_first_step(plan, state, batch, self.dtype)
        for t in range(n_steps):
            current: dict[str, np.ndarray] = {}
            for name in plan.order:
                if name in arrays:
                    y = arrays[name][t]
                else:
                    x = _fan_in(name, plan, current, previous)
                    state[name], y = plan.ops[name].step(state[name], x)
                current[name] = y
                if name in traces:
                    traces[name]["output"][t] = y
                    for var, value in zip(plan.ops[name].state_names, state[name]):
                        traces[name][var][t] = value
            for o in plan.outputs:
                outputs[o][t] = current[o]
            previous = current

        if not batched:
            outputs = {k: v[:, 0] for k, v in outputs.items()}
            traces = {n: {k: v[:, 0] for k, v in d.items()} for n, d in traces.items()}
        return SimulationResult(outputs=outputs, states=traces, dt=self.dt)

    def run_bytes(self, n_steps: int, batch: int, record: bool | str | Iterable[str] = False) -> int:
        """Bytes :meth:`run` allocates for ``n_steps`` x ``batch`` (outputs, recorded traces,
        state), so the run can be refused against the memory budget before it starts."""
        ops = self.plan.ops
        recorded = self.plan.order if record is True else (() if not record else self._check_record(record))
        size = lambda shape: int(np.prod(shape, dtype=np.int64))  # noqa: E731
        per_step = sum(size(ops[o].out_shape) for o in self.plan.outputs)
        per_step += sum(size(ops[n].out_shape) + len(ops[n].state_names) * size(ops[n].in_shape) for n in recorded)
        state = sum(op.state_size(batch) + 2 * batch * size(op.out_shape) for op in ops.values())
        return self.dtype.itemsize * (n_steps * batch * per_step + state)

    def _check_inputs(self, inputs: Mapping[str, np.ndarray]):
        """-> (arrays as [T, B, *shape] in dtype, T, B, batched?)."""
        expected = set(self.plan.inputs)
        if set(inputs) != expected:
            raise SimulationInputError(f"inputs must be exactly the Input nodes {sorted(expected)}, "
                                       f"got {sorted(inputs)}")
        arrays, layouts = {}, set()
        for name in self.plan.inputs:
            array = np.asarray(inputs[name], dtype=self.dtype)
            shape = self.plan.ops[name].out_shape
            if array.shape[1:] == shape:
                array, layout = array[:, None], False
            elif array.ndim >= 2 and array.shape[2:] == shape:
                layout = True
            else:
                raise SimulationInputError(f"input {name!r}: expected [T, B, *{shape}] or "
                                           f"[T, *{shape}], got {array.shape}")
            arrays[name] = array
            layouts.add(layout)
        sizes = {a.shape[:2] for a in arrays.values()}
        if len(layouts) > 1 or len(sizes) > 1:
            raise SimulationInputError(f"all inputs need the same layout and [T, B], got "
                                       f"{ {n: a.shape for n, a in arrays.items()} }")
        (n_steps, batch), = sizes
        return arrays, n_steps, batch, layouts.pop()

    def _check_record(self, record) -> tuple[str, ...]:
        if record is True:
            return self.plan.order
        if record is False or record is None:
            return ()
        names = (record,) if isinstance(record, str) else tuple(record)
        unknown = [n for n in names if n not in self.plan.ops]
        if unknown:
            raise SimulationInputError(f"cannot record unknown node(s) {unknown}; nodes are "
                                       f"{list(self.plan.order)}")
        return tuple(dict.fromkeys(names))


def _fan_in(name: str, plan: ExecutionPlan, current: dict, previous: dict) -> np.ndarray:
    """Sum of the node's sources: this step's value, or the previous step's across a cycle."""
    total = None
    for src in plan.sources[name]:
        value = previous[src] if (src, name) in plan.recurrent_edges else current[src]
        total = value if total is None else total + value
    return total


def _before_first_step(plan: ExecutionPlan, state: dict, batch: int, dtype) -> dict[str, np.ndarray]:
    """Every node's output at step ``-1`` (what recurrent edges deliver at ``t = 0``): 0 for
    Inputs and stateful nodes, each stateless node's response to its inputs at step -1, with
    recurrent edges delivering 0."""
    zeros = {n: np.zeros((batch,) + plan.ops[n].out_shape, dtype) for n in plan.order}
    values: dict[str, np.ndarray] = {}
    for name in plan.order:
        stateless = not state[name] and name not in plan.inputs
        values[name] = plan.ops[name].apply(_fan_in(name, plan, values, zeros)) if stateless else zeros[name]
    return values


def resolve_dt(graph: nir.NIRGraph, dt: float | None) -> float:
    """The time step to run ``graph`` with: ``dt`` or the graph's metadata (they must agree)."""
    meta = graph.metadata.get("dt") if isinstance(graph.metadata, dict) else None
    if dt is None and meta is None:
        raise GraphError("dt is required: pass dt=... (the graph's metadata has no 'dt')")
    if meta is not None:
        try:
            meta = float(np.asarray(meta, dtype=np.float64).reshape(-1)[0])
        except (TypeError, ValueError, IndexError):
            raise GraphError(f"the graph's metadata dt {str(meta)[:40]!r} is not a number") from None
    if dt is not None and meta is not None and not np.isclose(float(dt), float(meta), rtol=1e-9):
        raise GraphError(f"dt={dt} contradicts the graph's metadata dt={float(meta)}")
    value = float(dt if dt is not None else meta)
    if not np.isfinite(value) or value <= 0:
        raise GraphError(f"dt must be a positive number, got {value}")
    return value


# --- graph compilation ------------------------------------------------------------------------

def compile_graph(graph: nir.NIRGraph, ctx: BuildContext) -> ExecutionPlan:
    """Flatten, validate, classify edges, infer shapes and build every op (GraphError if not)."""
    nodes, edges = flatten_graph(graph)
    inputs = tuple(sorted(n for n, node in nodes.items() if isinstance(node, nir.Input)))
    outputs = tuple(sorted(n for n, node in nodes.items() if isinstance(node, nir.Output)))
    _check_structure(nodes, edges, inputs, outputs)
    successors = {n: sorted(d for s, d in edges if s == n) for n in nodes}
    sources = {n: tuple(sorted(s for s, d in edges if d == n)) for n in nodes}
    order, recurrent = _classify_edges(inputs, successors)
    unreachable = sorted(set(nodes) - set(order))
    if unreachable:
        raise GraphError(f"node(s) {unreachable} cannot be reached from any Input node")

    ops: dict[str, Op] = {}
    for name in order:
        node = nodes[name]
        if name in inputs:
            in_shape = _declared(node.input_type)
            if in_shape is None:
                raise GraphError(f"Input node {name!r} has no shape")
        else:
            in_shape = _fan_in_shape(name, sources[name], recurrent, ops)
        ops[name] = build_op(name, node, in_shape, ctx)
    for src, dst in sorted(recurrent):
        if ops[src].out_shape != ops[dst].in_shape:
            raise GraphError(f"recurrent edge {src!r} -> {dst!r}: {src!r} outputs "
                             f"{ops[src].out_shape} but {dst!r} takes {ops[dst].in_shape}")
    return ExecutionPlan(order=order, ops=ops, sources=sources,
                         recurrent_edges=frozenset(recurrent), inputs=inputs, outputs=outputs)


def flatten_graph(graph: nir.NIRGraph) -> tuple[dict[str, nir.NIRNode], list[Edge]]:
    """Inline nested NIRGraph nodes (one Input, one Output each) as ``"<sub>.<inner>"`` nodes."""
    nodes: dict[str, nir.NIRNode] = {}
    edges = [(str(s), str(d)) for s, d in graph.edges]
    for name, node in graph.nodes.items():
        if not isinstance(node, nir.NIRGraph):
            nodes[name] = node
            continue
        inner_nodes, inner_edges = flatten_graph(node)  # deeper levels are already inlined
        ins = [k for k, v in inner_nodes.items() if isinstance(v, nir.Input)]
        outs = [k for k, v in inner_nodes.items() if isinstance(v, nir.Output)]
        if len(ins) != 1 or len(outs) != 1:
            raise GraphError(f"nested graph {name!r} has {len(ins)} Input and {len(outs)} Output "
                             f"nodes; only nested graphs with exactly one of each are supported")
        for inner, inner_node in inner_nodes.items():
            full = f"{name}.{inner}"
            if full in graph.nodes:
                raise GraphError(f"inlining nested graph {name!r} creates node name {full!r}, "
                                 f"which already exists")
            if isinstance(inner_node, (nir.Input, nir.Output)):
                inner_node = nir.ir.graph.Identity(input_type=dict(inner_node.input_type))
            nodes[full] = inner_node
        first, last = f"{name}.{ins[0]}", f"{name}.{outs[0]}"
        edges = [(last if s == name else s, first if d == name else d) for s, d in edges]
        edges += [(f"{name}.{s}", f"{name}.{d}") for s, d in inner_edges]
    return nodes, edges


def _check_structure(nodes, edges, inputs, outputs) -> None:
    for src, dst in edges:
        for end in (src, dst):
            if end not in nodes:
                raise GraphError(f"edge ({src!r}, {dst!r}) refers to unknown node {end!r}")
    seen: set[Edge] = set()
    for edge in edges:
        if edge in seen:
            raise GraphError(f"duplicate edge {edge!r} (it would be summed twice)")
        seen.add(edge)
    if not inputs:
        raise GraphError("graph has no Input node")
    if not outputs:
        raise GraphError("graph has no Output node")
    for src, dst in edges:
        if dst in inputs:
            raise GraphError(f"Input node {dst!r} has an incoming edge from {src!r}")
        if src in outputs:
            raise GraphError(f"Output node {src!r} has an outgoing edge to {dst!r}")


def _classify_edges(inputs: tuple[str, ...],
                    successors: Mapping[str, list[str]]) -> tuple[tuple[str, ...], set[Edge]]:
    """Iterative DFS from the Inputs -> (reverse post-order = topological order, back edges)."""
    on_stack, done = set(), set()
    post: list[str] = []
    back: set[Edge] = set()
    for root in inputs:
        stack = [(root, iter(successors[root]))]
        on_stack.add(root)
        while stack:
            node, children = stack[-1]
            for child in children:
                if child in on_stack:
                    back.add((node, child))
                elif child not in done:
                    on_stack.add(child)
                    stack.append((child, iter(successors[child])))
                    break
            else:
                stack.pop()
                on_stack.discard(node)
                done.add(node)
                post.append(node)
    return tuple(reversed(post)), back


def _fan_in_shape(name: str, sources: tuple[str, ...], recurrent: set[Edge],
                  ops: Mapping[str, Op]) -> Shape:
    """All feed-forward sources must deliver the same shape (it is summed)."""
    shapes = {src: ops[src].out_shape for src in sources if (src, name) not in recurrent}
    if len(set(shapes.values())) != 1:
        raise GraphError(f"node {name!r} sums inputs of different shapes: {shapes}")
    return next(iter(shapes.values()))


def _declared(types) -> Shape | None:
    """The single declared shape of an ``input_type``/``output_type`` dict, or None."""
    if not isinstance(types, dict) or len(types) != 1:
        return None
    value = next(iter(types.values()))
    if value is None:
        return None
    try:
        shape = tuple(int(v) for v in np.atleast_1d(value))
    except (TypeError, ValueError, OverflowError):
        raise GraphError(f"declared shape {str(value)[:60]} is not a list of integers") from None
    if any(v < 1 for v in shape):
        raise GraphError(f"declared shape {shape} has a size below 1")
    return shape
