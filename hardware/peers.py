"""Peer backends: our exported NIR run by snnTorch's and Norse's own NIR importers.

**What runs where (a hybrid).** nirtorch 2.6, which both importers build on, cannot execute a
graph with two Input nodes: snnTorch's ``import_from_nir`` (``nirtorch.nir_to_torch``) never
returns on one (its node queue keeps re-queueing; measured on a no-warp export, killed after
30 s), and Norse's ``GraphExecutor`` (``nirtorch.load``) logs "Multiple input nodes found.
Using the first node as the input", runs the audio part only and returns a single Output.
Neither maps the time-warp's ``Scale``/``Delay`` nodes either (snnTorch: ValueError "Unknown
node type Scale"; Norse: KeyError). So a peer runs the two encoder branches,
:func:`export.nir_export.branch_graphs` (one single-Input graph per modality, ending at the
encoder's last LIF), and the numpy reference simulator completes the chip: it runs
:func:`export.nir_export.fusion_graph` (time-warp, fusion LIF, readouts), whose two Inputs are
fed the branches' output spikes. The peer therefore decides every encoder spike; the fusion
spikes and readouts come from the reference given those spikes.

    audio  [T,B,F]     -> peer(audio branch)  -> audio_lif{last}  spikes -+
                                                                          +-> ReferenceSimulator
    image  [T,B,C,H,W] -> peer(visual branch) -> visual_lif{last} spikes -+   (fusion_graph)

**How the branches get in.** Each branch graph is written with ``nir.write`` and read back with
``nir.read`` (bytes in memory), exactly as a user would load our exported files, then imported
with the peer's own importer: ``snntorch.import_nir.import_from_nir(graph)`` or
``norse.torch.from_nir(graph, dt=dt)``. Both give a nirtorch executor that is stepped one time
step at a time, ``out, state = module(x[t], state)``:

* snnTorch (a ``torch.fx.GraphModule`` from ``nirtorch.nir_to_torch``): the importer builds
  ``Leaky(init_hidden=True)`` neurons, which keep their membrane inside the module (the
  executor's ``state`` dict stays all ``None``), so every batch starts with
  ``snntorch.utils.reset(module)``. Spikes of every LIF layer are taken by forward hooks.
* Norse (a nirtorch ``GraphExecutor`` from the deprecated ``nirtorch.load``): neurons are
  functional ``LIFBoxCell``\\ s whose state lives in the returned ``GraphExecutorState``; a batch
  starts from ``state=None`` (zero voltage). ``state.cache`` holds every node's output of the
  step, from which the spikes of every LIF layer are read.

Peer module names are mapped back to our NIR node names with the sanitiser each nirtorch path
applies ('.' -> '_', keywords prefixed), and the mapping must cover exactly the graph's LIF
nodes (else :class:`TaafError`).

**Importer bugs worked around** (small patches on the imported modules, each marked ``BUG``
below; no library file is changed): both importers map NIR ``Flatten(start_dim=0)`` (dims
exclude the batch) to ``torch.nn.Flatten(0, -1)``, which also flattens the batch; snnTorch
hard-codes ``dt = 1e-4`` (in ``beta`` and in the input gain ``w_scale = r*dt/tau``), computes
``beta`` in float32, silently drops ``w_scale`` when it is within ``np.allclose`` of 1, and
returns float32 spikes from a float64 membrane (the next float64 layer then fails); Norse
ignores NIR ``r`` (it integrates ``dt/tau * I``, ten times too little current for
r = tau/dt = 10) and ``v_reset``, and keeps the neuron parameters in float32 named tuples that
``.double()`` does not convert.

**Precision.** Both peers run in float64: ``module.double()`` plus the neuron parameters
recomputed in float64 from the file's float32 ``tau``/``r``/``v_threshold`` with the same
formulas as :func:`taaf.dynamics.nir_lif_to_discrete` (decay ``1 - dt/tau``, gain
``r*dt/tau``), i.e. the dynamics of :func:`hardware.backends.exported_twin`. Weights are the
file's float32 values; only the arithmetic is float64. Results are float64 numpy arrays.
"""
from __future__ import annotations

import contextlib
import io
import keyword
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import nir
import numpy as np
import torch

from export.nir_export import branch_graphs, encoder_outputs, fusion_graph
from hardware.backends import READOUT_NAMES, ChipRun, time_major_inputs
from hardware.reference import ReferenceSimulator
from taaf.dynamics import DEFAULT_DT, nir_lif_to_discrete
from taaf.errors import TaafError
from taaf.model.network import AVSpikingNet

PEERS = ("snntorch", "norse")

ChipRunner = Callable[[np.ndarray, np.ndarray], ChipRun]


def peer_runner(name: str, model: AVSpikingNet, dt: float = DEFAULT_DT) -> ChipRunner:
    """``run(audio [B,T,F], image [B,C,H,W]) -> ChipRun`` with the encoders on peer ``name``.

    Readouts (``z_audio``, ``z_visual``, and for TAAF ``modality_scores``, ``temporal_scores``
    squeezed to [B, T]) and spikes (every encoder LIF layer from the peer, ``fusion_lif`` from
    the reference) are float64 [B, T, ...].
    """
    if name not in PEERS:
        raise TaafError(f"unknown peer backend {name!r} (choose from {', '.join(PEERS)})")
    importer = _import_snntorch if name == "snntorch" else _import_norse
    branches = [importer(_round_trip(graph), dt) for graph in branch_graphs(model, dt).values()]
    fusion = ReferenceSimulator(fusion_graph(model, dt), dt)
    last = encoder_outputs(model)
    fused_layers = tuple(n for n in fusion.plan.order if fusion.plan.ops[n].spiking)  # fusion_lif

    @torch.no_grad()
    def run(audio: np.ndarray, image: np.ndarray) -> ChipRun:
        inputs = time_major_inputs(np.asarray(audio, np.float64), np.asarray(image, np.float64))
        spikes: dict[str, np.ndarray] = {}  # NIR LIF node -> [T, B, ...]
        for branch in branches:
            spikes.update(branch.run(inputs[branch.input]))
        result = fusion.run({last["audio"]: spikes[last["audio"]], last["visual"]: spikes[last["visual"]]},
                            record=fused_layers)
        readouts = {k: _batch_first(result.outputs[k]) for k in READOUT_NAMES if k in result.outputs}
        if "temporal_scores" in readouts:
            readouts["temporal_scores"] = readouts["temporal_scores"][..., 0]
        spikes.update({n: result.states[n]["spikes"] for n in fused_layers})
        return ChipRun(readouts=readouts, spikes={k: _batch_first(v) for k, v in spikes.items()})

    return run


def run_peer_graph(name: str, graph: nir.NIRGraph, inputs, dt: float | None = None):
    """Any single-Input NIR graph whose Output is fed by a LIF node, run by peer ``name``'s own
    importer (graph mode of ``taaf simulate``); -> a
    :class:`~hardware.reference.SimulationResult` (``outputs`` and every LIF's ``spikes``,
    [T, B, ...]). Whatever the importer cannot load ends in one :class:`TaafError` line."""
    from hardware.reference.simulator import SimulationResult, resolve_dt

    if name not in PEERS:
        raise TaafError(f"unknown peer backend {name!r} (choose from {', '.join(PEERS)})")
    dt = resolve_dt(graph, dt)
    in_nodes = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(in_nodes) != 1:
        raise TaafError(f"{name}'s NIR importer (nirtorch) cannot run a graph with {len(in_nodes)} Input nodes; "
                        f"use reference, lava, lava-fixed or loihi-emu")
    importer = _import_snntorch if name == "snntorch" else _import_norse
    try:
        with _quiet_logging():  # nirtorch logs guesses ("Multiple input nodes found") to stderr
            branch = importer(_round_trip(graph), dt)
    except TaafError:
        raise
    except Exception as exc:  # noqa: BLE001 - an importer's failure is the user's answer, in one line
        raise TaafError(f"{name} cannot import this graph: {type(exc).__name__}: {exc}") from None
    if set(inputs) != {branch.input}:
        raise TaafError(f"inputs must be exactly the Input node {branch.input!r}, got {sorted(inputs)}")
    x = np.asarray(inputs[branch.input], np.float64)
    shape = tuple(int(s) for s in np.atleast_1d(graph.nodes[branch.input].input_type["input"]))
    batched = x.ndim != 1 + len(shape)
    x = x if batched else x[:, None]
    try:
        with torch.no_grad(), _quiet_logging():
            spikes = branch.run(x)
    except TaafError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise TaafError(f"{name} failed to run this graph: {type(exc).__name__}: {exc}") from None
    out_node = next(n for n, node in graph.nodes.items() if isinstance(node, nir.Output))
    outputs = {out_node: spikes[branch.output]}
    states = {n: {"spikes": s} for n, s in spikes.items()}
    if not batched:
        outputs = {k: v[:, 0] for k, v in outputs.items()}
        states = {n: {k: v[:, 0] for k, v in d.items()} for n, d in states.items()}
    return SimulationResult(outputs, states, dt)


# --- shared helpers ---------------------------------------------------------------------------

@contextlib.contextmanager
def _quiet_logging():
    """Silence library log records below ERROR while a peer imports or runs a graph."""
    import logging

    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _round_trip(graph: nir.NIRGraph) -> nir.NIRGraph:
    """Through ``nir.write``/``nir.read`` (in memory), as a user loads our exported files."""
    buffer = io.BytesIO()
    nir.write(buffer, graph)
    buffer.seek(0)
    return nir.read(buffer)


def _batch_first(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.swapaxes(np.asarray(a, np.float64), 0, 1))


def _ends(graph: nir.NIRGraph) -> tuple[str, str]:
    """(the Input node, the node feeding the Output) of a single-Input, single-Output branch."""
    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    outputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise TaafError(f"a peer branch needs one Input and one Output node, got {inputs}, {outputs}")
    last = [s for s, d in graph.edges if d == outputs[0]]
    if len(last) != 1:
        raise TaafError(f"the branch Output {outputs[0]!r} needs exactly one source, got {last}")
    return inputs[0], last[0]


def _lif_modules(module: torch.nn.Module, graph: nir.NIRGraph, lif_class: type,
                 sanitize: Callable[[str], str], peer: str) -> dict[str, torch.nn.Module]:
    """NIR LIF node name -> the peer's neuron module, via the importer's own name sanitiser.

    Every neuron module must map to a NIR LIF node and every LIF node must be found, so a
    renaming scheme we do not know fails loudly instead of recording the wrong layer."""
    by_module_name = {sanitize(n): n for n in graph.nodes}
    if len(by_module_name) != len(graph.nodes):
        raise TaafError(f"{peer}: NIR node names collide after sanitising: {sorted(graph.nodes)}")
    found: dict[str, torch.nn.Module] = {}
    for module_name, sub in module.named_modules():
        if not isinstance(sub, lif_class):
            continue
        node = by_module_name.get(module_name)
        if node is None or not isinstance(graph.nodes[node], nir.LIF):
            raise TaafError(f"{peer}: neuron module {module_name!r} matches no NIR LIF node")
        found[node] = sub
    expected = {n for n, node in graph.nodes.items() if isinstance(node, nir.LIF)}
    if set(found) != expected:
        raise TaafError(f"{peer}: LIF nodes {sorted(expected - set(found))} have no neuron module")
    return {n: found[n] for n in sorted(found)}


def _fix_batch_flatten(module: torch.nn.Module, graph: nir.NIRGraph,
                       sanitize: Callable[[str], str]) -> None:
    """BUG (snnTorch and Norse importers): NIR ``Flatten`` dims index the per-sample shape
    (the batch is excluded), but both map ``Flatten(start_dim=0, end_dim=-1)`` to
    ``torch.nn.Flatten(0, -1)``, which flattens the batch into the features too (runs only with
    batch 1). Shift non-negative dims by one, in place."""
    modules = dict(module.named_modules())
    for name, node in graph.nodes.items():
        if isinstance(node, nir.Flatten):
            flatten = modules[sanitize(name)]
            if not isinstance(flatten, torch.nn.Flatten):
                raise TaafError(f"expected torch.nn.Flatten for NIR node {name!r}, got {type(flatten)}")
            flatten.start_dim = _batch_dim(node.start_dim)
            flatten.end_dim = _batch_dim(node.end_dim)


def _batch_dim(dim) -> int:
    dim = int(np.asarray(dim).reshape(-1)[0]) if not isinstance(dim, int) else dim
    return dim + 1 if dim >= 0 else dim


def _f64(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


@dataclass
class _Branch:
    """One imported encoder branch: ``run(x [T, B, ...]) -> {LIF node: spikes [T, B, ...]}``."""

    input: str  # NIR Input node name (a key of time_major_inputs)
    module: torch.nn.Module
    lifs: tuple[str, ...]  # NIR LIF node names, recorded
    output: str  # the branch's last LIF (what the executor returns)
    step_spikes: Callable  # (module output, executor state) -> {LIF node: spikes of the step}
    reset: Callable[[], None] = lambda: None
    trace: dict = field(default_factory=dict)  # hook scratch space (snnTorch)

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        self.reset()
        recorded: dict[str, list[np.ndarray]] = {n: [] for n in self.lifs}
        state = None
        for t in range(x.shape[0]):
            self.trace.clear()
            out, state = self.module(torch.from_numpy(np.ascontiguousarray(x[t])), state)
            step = self.step_spikes(out, state)
            if not torch.equal(step[self.output], out):  # the name mapping picked the wrong layer
                raise TaafError(f"recorded {self.output!r} differs from the branch output")
            for n in self.lifs:
                recorded[n].append(step[n].double().numpy())
        return {n: np.stack(v) for n, v in recorded.items()}


# --- snnTorch ---------------------------------------------------------------------------------

def _snntorch_sanitize(name: str) -> str:
    """What ``nirtorch.nir_to_torch`` (2.6, ``_sanitize_name``) does to NIR node names."""
    name = name.replace(".", "_")
    return "nir_node_" + name if keyword.iskeyword(name) else name


def _import_snntorch(graph: nir.NIRGraph, dt: float) -> _Branch:
    import snntorch
    from snntorch.import_nir import import_from_nir
    from snntorch.utils import reset

    source, last = _ends(graph)
    # import_from_nir rewrites graph.nodes/edges in place (recurrent subgraphs): keep a copy
    graph_copy = nir.NIRGraph(nodes=dict(graph.nodes), edges=list(graph.edges), type_check=False)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "replace rnn subgraph ..." per call
        module = import_from_nir(graph)
    graph = graph_copy
    module = module.double().eval()
    _fix_batch_flatten(module, graph, _snntorch_sanitize)
    lifs = _lif_modules(module, graph, snntorch.Leaky, _snntorch_sanitize, "snntorch")
    trace: dict[str, torch.Tensor] = {}
    for name, leaky in lifs.items():
        node = graph.nodes[name]
        if leaky.reset_mechanism != "zero" or np.any(node.v_reset != 0):
            raise TaafError(f"{name}: snnTorch's importer resets to zero; v_reset != 0 is unsupported")
        coeff = nir_lif_to_discrete(node.tau, node.r, node.v_leak, dt)
        # BUG (snnTorch import_nir): dt is hard-coded to 1e-4 in beta = 1 - dt/tau and in
        # w_scale = r*dt/tau (at dt = 1e-3 it gives beta 0.99 instead of 0.9 and a threshold 10x
        # too high: the network falls silent), and beta is evaluated in float32 (numpy keeps
        # tau's float32), a rounding that .double() cannot undo. Recompute in float64, graph dt.
        leaky.beta = _f64(coeff.decay)
        # BUG (snnTorch import_nir): the LIF input gain w_scale = r*dt/tau is dropped without a
        # word when np.allclose(w_scale, 1) (our float32 tau and r give 1 - 5e-9 at dt = 1e-4)
        # and only otherwise moved into the threshold. Apply the importer's own convention
        # (threshold / w_scale: the same spikes, as v_leak = 0 and reset is to zero) always.
        leaky.threshold = _f64(node.v_threshold) / _f64(coeff.gain)
        leaky.register_forward_hook(_snntorch_spike_hook(name, trace))
    return _Branch(input=source, module=module, lifs=tuple(lifs), output=last,
                   step_spikes=lambda out, state: trace, reset=lambda: reset(module), trace=trace)


def _snntorch_spike_hook(name: str, trace: dict):
    """BUG (snnTorch spike functions, e.g. surrogate.ATan): spikes are ``(mem > thr).float()``,
    float32 even for a float64 membrane, so the next float64 layer raises a dtype error. Cast
    them to the membrane's dtype (exact: spikes are 0/1) and record them."""

    def hook(module, inputs, out):
        trace[name] = out.to(inputs[0].dtype)
        return trace[name]

    return hook


# --- Norse ------------------------------------------------------------------------------------

def _norse_sanitize(name: str) -> str:
    """What ``nirtorch.load`` (``nirtorch.utils.sanitize_name``) does to NIR node names."""
    return name.replace(".", "_")


def _import_norse(graph: nir.NIRGraph, dt: float) -> _Branch:
    source, last = _ends(graph)
    with warnings.catch_warnings():
        # from_nir goes through nirtorch.load, which warns that it is deprecated; torch warns
        # that norse's torch.jit.script use (at import) is deprecated. Neither concerns results.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        import norse.torch as norse
        from norse.torch.module.lif_box import LIFBoxCell

        # ignore_warnings: Norse logs "r is expected to be 1" per LIF node; r is applied below.
        module = norse.from_nir(graph, dt=dt, ignore_warnings=True)
    module = module.double().eval()
    _fix_batch_flatten(module, graph, _norse_sanitize)
    lifs = _lif_modules(module, graph, LIFBoxCell, _norse_sanitize, "norse")
    for name, cell in lifs.items():
        node = graph.nodes[name]
        # Norse keeps neuron parameters in a named tuple (not buffers), built with
        # torch.from_numpy(...).float(): .double() leaves them float32, and tau_mem_inv = 1/tau
        # is float32-rounded. Replace them with float64 values from the file. BUG (Norse
        # import_nir): NIR v_reset is not passed on (Norse's default 0 is used); set it too.
        cell.p = cell.p._replace(tau_mem_inv=1.0 / _f64(node.tau), v_th=_f64(node.v_threshold),
                                 v_leak=_f64(node.v_leak), v_reset=_f64(node.v_reset))
        # BUG (Norse import_nir): NIR r is ignored (only a logged warning): LIFBoxCell integrates
        # dv = dt/tau * (v_leak - v + I), i.e. an input gain dt/tau instead of r*dt/tau (0.1
        # instead of 1 for our r = tau/dt = 10), so the encoder would barely spike. Scale the
        # input by r, as Norse's own CubaLIF import does with `self.r * x`.
        r = _f64(node.r)
        cell.register_forward_pre_hook(lambda mod, args, r=r: (args[0] * r, *args[1:]))
    names = {n: _norse_sanitize(n) for n in lifs}
    return _Branch(input=source, module=module, lifs=tuple(lifs), output=last,
                   step_spikes=lambda out, state: {n: state.cache[s] for n, s in names.items()})

