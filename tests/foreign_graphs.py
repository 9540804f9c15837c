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


# --- graphs the chip mapping once refused (tests/test_mapping_coverage.py) ---------------------

def snntorch_hetero_net(seed: int = 0) -> nn.Sequential:
    """Linear -> Leaky -> Linear -> Leaky (8 -> 6 -> 4), every Linear with its bias, per-neuron
    ``beta`` and ``threshold`` taking a few distinct values (several Lava LIF processes each)."""
    import snntorch as snn

    torch.manual_seed(seed)

    def leaky(beta, threshold, output=False):
        return snn.Leaky(beta=torch.tensor(beta), threshold=torch.tensor(threshold), init_hidden=True,
                         reset_mechanism="zero", reset_delay=False, output=output)

    net = nn.Sequential(nn.Linear(8, 6), leaky([0.8, 0.9, 0.9, 0.95, 0.8, 0.9], [1.0, 1.0, 0.6, 1.0, 0.6, 0.6]),
                        nn.Linear(6, 4), leaky([0.85, 0.9, 0.85, 0.9], [1.0, 0.7, 0.7, 1.0], True))
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[0].bias.add_(0.2)
        net[2].weight.mul_(2.0)
    return net


def snntorch_synaptic_net(seed: int = 0) -> nn.Sequential:
    """Linear -> Synaptic -> Linear -> Synaptic (8 -> 6 -> 4): snnTorch's default Synaptic behind
    a Linear with bias (a constant into a CubaLIF's current); the output layer's thresholds vary."""
    import snntorch as snn

    torch.manual_seed(seed)

    def synaptic(n, threshold, output=False):
        return snn.Synaptic(alpha=torch.full((n,), 0.8), beta=torch.full((n,), 0.9), threshold=torch.tensor(threshold),
                            init_hidden=True, reset_mechanism="zero", reset_delay=False, output=output)

    net = nn.Sequential(nn.Linear(8, 6), synaptic(6, [1.0] * 6), nn.Linear(6, 4), synaptic(4, [1.0, 1.0, 0.5, 0.5], True))
    with torch.no_grad():
        net[0].bias.add_(0.1)
    return net


def snntorch_rleaky_net(seed: int = 0) -> nn.Sequential:
    """Linear -> RLeaky (all-to-all recurrent Linear with bias) -> Linear -> Leaky (8 -> 6 -> 4)."""
    import snntorch as snn

    torch.manual_seed(seed)
    rec = snn.RLeaky(beta=torch.full((6,), 0.9), threshold=torch.ones(6), linear_features=6, init_hidden=True,
                     reset_mechanism="zero", reset_delay=False)
    net = nn.Sequential(nn.Linear(8, 6), rec, nn.Linear(6, 4), _leaky((4,), 0.8, True))
    with torch.no_grad():
        net[0].weight.mul_(2.0)
        rec.recurrent.bias.mul_(2.0)
        net[2].weight.mul_(3.0)
        net[2].bias.add_(0.3)
    return net


def snntorch_export(net: nn.Sequential, path: Path) -> Path:
    """``net`` (8 inputs) as its snnTorch ``export_to_nir`` file."""
    from snntorch.export_nir import export_to_nir

    nir.write(path, export_to_nir(net, torch.randn(1, 8), ignore_dims=[0]))
    return path


def norse_cuba_li(path: Path, seed: int = 0, dt: float = 1e-4) -> Path:
    """Norse Linear -> LIFCell (a CubaLIF; Linear bias into its current) -> Linear -> LIBoxCell
    (an LI output layer), 8 -> 6 -> 4, with Norse's time constants rescaled as in
    :func:`norse_graph` (synapse 5 steps, membrane 10, unit per-step gains)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import norse.torch as norse

        torch.manual_seed(seed)
        net = norse.SequentialState(nn.Linear(8, 6), norse.LIFCell(), nn.Linear(6, 4), norse.LIBoxCell())
        with torch.no_grad():
            net[0].weight.mul_(3.0)
        graph = norse.to_nir(net, torch.randn(1, 8))
    nodes = {}
    for name, node in graph.nodes.items():
        if isinstance(node, (nir.Input, nir.Output)):  # Norse keeps the batch axis: (1, n) -> (n,)
            key = "input" if isinstance(node, nir.Input) else "output"
            shape = np.asarray(next(iter((node.input_type if key == "input" else node.output_type).values())))
            nodes[name] = type(node)({key: shape[1:] if shape.size > 1 and shape[0] == 1 else shape})
        elif isinstance(node, nir.Affine):
            nodes[name] = nir.Affine(np.asarray(node.weight), np.asarray(node.bias))
        else:
            n = next(graph.nodes[a].weight.shape[0] for a, b in graph.edges if b == name)
            full = lambda v: np.full(n, float(v))  # noqa: E731
            if isinstance(node, nir.CubaLIF):
                nodes[name] = nir.CubaLIF(tau_syn=full(5 * dt), tau_mem=full(10 * dt), r=full(10.0), w_in=full(5.0),
                                          v_leak=full(np.asarray(node.v_leak).reshape(-1)[0]), v_reset=full(0.0),
                                          v_threshold=full(np.asarray(node.v_threshold).reshape(-1)[0]))
            else:
                nodes[name] = nir.LI(tau=full(10 * dt), r=full(10.0), v_leak=full(np.asarray(node.v_leak).reshape(-1)[0]))
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata={**graph.metadata, "dt": dt}))
    return path


def hand_built_delay_cuba_li(path: Path, seed: int = 0, dt: float = 1e-4) -> Path:
    """Affine (bias) -> per-element Delay (0/1/2 steps) -> LIF (per-neuron tau and threshold)
    -> Affine (bias) -> CubaLIF (two thresholds) -> Affine -> CubaLI -> Output, plus the
    CubaLIF's spikes as a second Output: constants behind a Delay and into a current, split
    populations, a host-run CubaLI readout."""
    rng = np.random.default_rng(seed)
    full = lambda n, v: np.full(n, v, np.float64)  # noqa: E731
    tau = np.array([10, 10, 20, 20, 10, 40.0]) * dt
    nodes = {
        "input": nir.Input(np.array([8])),
        "fc0": nir.Affine(rng.normal(size=(6, 8)) * 1.5, rng.uniform(0.0, 0.3, 6)),
        "delay": nir.Delay(np.array([0, 0, 2, 2, 1, 0]) * dt),
        "lif": nir.LIF(tau=tau, r=tau / dt, v_leak=full(6, 0.0), v_threshold=np.array([1, 1, 1, 0.5, 0.5, 1.0]),
                       v_reset=full(6, 0.0)),
        "fc1": nir.Affine(rng.normal(size=(4, 6)) * 1.5, rng.uniform(0.0, 0.5, 4)),
        "cuba": nir.CubaLIF(tau_syn=full(4, 5 * dt), tau_mem=full(4, 10 * dt), r=full(4, 10.0), v_leak=full(4, 0.0),
                            v_threshold=np.array([1, 1, 0.7, 0.7]), v_reset=full(4, 0.0), w_in=full(4, 5.0)),
        "fc2": nir.Affine(rng.normal(size=(3, 4)), rng.uniform(-0.2, 0.2, 3)),
        "li": nir.CubaLI(tau_syn=full(3, 5 * dt), tau_mem=full(3, 10 * dt), r=full(3, 10.0), v_leak=full(3, 0.0),
                         w_in=full(3, 5.0)),
        "output": nir.Output(np.array([3])),
        "spikes": nir.Output(np.array([4])),
    }
    edges = [("input", "fc0"), ("fc0", "delay"), ("delay", "lif"), ("lif", "fc1"), ("fc1", "cuba"), ("cuba", "fc2"),
             ("fc2", "li"), ("li", "output"), ("cuba", "spikes")]
    nir.write(path, nir.NIRGraph(nodes, edges, metadata={"dt": dt}))
    return path


def nmnist_like(n: int, steps: int = 30, seed: int = 0, size: int = 34) -> np.ndarray:
    """N-MNIST-like events ``[steps, n, 2, size, size]`` (ON, OFF): scikit-learn's 8x8 digits
    scaled up and moved along N-MNIST's three saccades (a triangle of ~7 px), an event where
    the moving image brightens / darkens by more than 0.15 (each kept with p = 0.5) plus 0.2 %
    noise: ~600-700 sparse events per 34 x 34 sample and 30 steps, edges of the digit only (the
    regime the sinabs CNN was trained in; dense uniform noise is not)."""
    from scipy.ndimage import shift, zoom
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    images = load_digits().images
    out = np.zeros((steps, n, 2, size, size), np.float32)
    path = np.array([[0, 0], [3.5, 7], [7, 0], [0, 0]], np.float64) * (size / 34)
    inner = size - 6
    for b, i in enumerate(rng.choice(len(images), n, replace=False)):
        canvas = np.zeros((size, size))
        canvas[1:1 + inner, 1:1 + inner] = zoom(images[i] / 16.0, inner / 8, order=1)[:inner, :inner].clip(0, 1)
        previous = None
        for t in range(steps + 1):
            leg = min(3 * t // (steps + 1), 2)
            f = 3 * t / (steps + 1) - leg
            frame = shift(canvas, path[leg] + f * (path[leg + 1] - path[leg]), order=1)
            if previous is not None:
                d = frame - previous
                for pol, moved in enumerate((d > 0.15, d < -0.15)):
                    out[t - 1, b, pol] = (moved & (rng.random(d.shape) < 0.5)) | (rng.random(d.shape) < 0.002)
            previous = frame
    return out


def hand_built_if_cnn(seed: int = 0, size: int = 16) -> nir.NIRGraph:
    """A sinabs-style IF/SumPool CNN built with nir alone (no sinabs): Conv2d(2->8, k3, p1) -> IF
    -> SumPool2d(2) -> Conv2d(8->8, k3, p1) -> IF -> SumPool2d(2) -> Flatten -> Affine(->32)
    -> IF -> Affine(32->10) -> IF -> Output; thresholds 1, r = 1, biases, weights drawn at the
    sinabs CNN's spread (std ~0.2-0.4), for :func:`nmnist_like` inputs of ``size`` x ``size``."""
    rng = np.random.default_rng(seed)
    q = size // 4

    def if_node(shape):
        return nir.IF(r=np.ones(shape), v_threshold=np.ones(shape), v_reset=np.zeros(shape))

    def conv(c_in, c_out, hw, std):
        return nir.Conv2d(input_shape=(hw, hw), weight=rng.normal(0.05, std, (c_out, c_in, 3, 3)), stride=1,
                          padding=1, dilation=1, groups=1, bias=rng.normal(0.0, 0.01, c_out))

    nodes = {
        "input": nir.Input(np.array([2, size, size])),
        "conv0": conv(2, 8, size, 0.4), "if0": if_node((8, size, size)),
        "pool0": nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
        "conv1": conv(8, 8, size // 2, 0.25), "if1": if_node((8, size // 2, size // 2)),
        "pool1": nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
        "flat": nir.Flatten({"input": np.array([8, q, q])}, start_dim=0),
        "fc0": nir.Affine(rng.normal(0.02, 0.2, (32, 8 * q * q)), rng.normal(0.0, 0.01, 32)),
        "if2": if_node((32,)),
        "fc1": nir.Affine(rng.normal(0.05, 0.3, (10, 32)), np.zeros(10)), "if3": if_node((10,)),
        "output": nir.Output(np.array([10])),
    }
    order = list(nodes)
    return nir.NIRGraph(nodes, list(zip(order[:-1], order[1:])), metadata={"dt": 1e-4})
