"""Small NIR graphs written by other tools' own exporters (snnTorch ``export_to_nir``, Norse
``to_nir``), saved as a user would save them: the toolkit is tested on graphs it did not write.

What a user has to do to get a file at all is done here too and said once:
* snnTorch: scalar ``beta``/``threshold`` give LIF nodes without a shape, which nir 1.0.8's type
  check refuses inside ``export_to_nir``; per-neuron tensors avoid it. Its default reset
  (subtract, delayed) is not representable in NIR, so ``reset_mechanism="zero"``,
  ``reset_delay=False``.
* Norse: ``to_nir`` writes 0-d parameters, which ``nir.write`` (1.0.8) cannot store; they are
  broadcast to the node's shape. It also writes ``tau = dt * tau`` (Norse's dt = 1e-3) keeps the batch axis in its Input/Output shapes and writes no
  dt metadata; ``dt`` is recorded as the metadata the file needs.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import nir
import numpy as np
import torch
from torch import nn


def _leaky(shape, beta: float, output: bool = False):
    import snntorch as snn

    return snn.Leaky(beta=torch.full(shape, beta), threshold=torch.ones(shape), init_hidden=True,
                     reset_mechanism="zero", reset_delay=False, output=output)


def snntorch_leaky(path: Path, seed: int = 0) -> Path:
    """Linear -> Leaky -> Linear -> Leaky (8 -> 6 -> 4)."""
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(8, 6), _leaky((6,), 0.9), nn.Linear(6, 4), _leaky((4,), 0.8, True))
    with torch.no_grad():
        net[0].weight.mul_(3.0)
    nir.write(path, export_to_nir(net, torch.randn(1, 8), ignore_dims=[0]))
    return path


def snntorch_conv(path: Path, seed: int = 0) -> Path:
    """Conv2d -> Leaky -> AvgPool2d -> Flatten -> Linear -> Leaky on [1, 8, 8] inputs."""
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), _leaky((4, 8, 8), 0.9), nn.AvgPool2d(2), nn.Flatten(),
                        nn.Linear(64, 10), _leaky((10,), 0.9, True))
    with torch.no_grad():
        net[0].weight.mul_(3.0)
    nir.write(path, export_to_nir(net, torch.randn(1, 1, 8, 8), ignore_dims=[0]))
    return path


def _broadcast_scalars(graph: nir.NIRGraph) -> nir.NIRGraph:
    """0-d neuron parameters -> arrays of the node's shape (what nir.write needs)."""
    nodes = {}
    for name, node in graph.nodes.items():
        if isinstance(node, (nir.Input, nir.Output)):  # Norse keeps the batch axis: (1, n) -> (n,)
            key = "input" if isinstance(node, nir.Input) else "output"
            shape = np.asarray(next(iter((node.input_type if key == "input" else node.output_type).values())))
            node = type(node)({key: shape[1:] if shape.size > 1 and shape[0] == 1 else shape})
        elif isinstance(node, (nir.LIF, nir.IF)):
            src = next(a for a, b in graph.edges if b == name)
            shape = tuple(int(v) for v in np.atleast_1d(graph.nodes[src].weight.shape[0]))
            kwargs = {f: np.broadcast_to(np.asarray(getattr(node, f), np.float32), shape).copy()
                      for f in node.__dataclass_fields__ if f not in ("input_type", "output_type", "metadata")}
            node = type(node)(**kwargs)
        nodes[name] = node
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata=dict(graph.metadata))


def norse_graph(path: Path, cell: str = "lifbox", seed: int = 0, dt: float = 1e-4) -> Path:
    """Linear -> cell -> Linear -> cell (8 -> 6 -> 4), cell ``lifbox`` or ``iaf``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import norse.torch as norse

        torch.manual_seed(seed)
        make = {"lifbox": norse.LIFBoxCell, "iaf": norse.IAFCell}[cell]
        net = norse.SequentialState(nn.Linear(8, 6), make(), nn.Linear(6, 4), make())
        with torch.no_grad():
            net[0].weight.mul_(3.0)
        graph = _broadcast_scalars(norse.to_nir(net, torch.randn(1, 8)))
    for node in graph.nodes.values():
        if isinstance(node, nir.LIF):  # Norse writes dt * tau; 10 steps is the time constant we mean
            node.tau = np.full_like(node.tau, 10 * dt)
            node.r = np.ones_like(node.r) * 10.0
    graph.metadata["dt"] = dt
    nir.write(path, graph)
    return path


def spike_inputs(path: Path, shape: tuple[int, ...], steps: int = 12, batch: int = 3, seed: int = 0) -> Path:
    """An ``--input`` file: analog values in [0, 1) for the single Input node ``input``."""
    rng = np.random.default_rng(seed)
    np.savez(path, input=rng.uniform(0.0, 1.0, (steps, batch, *shape)))
    return path
