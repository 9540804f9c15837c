"""Running a :class:`~hardware.loihi.network.NetworkSpec` on real Lava processes
(``Loihi2SimCfg``, CPU), in an isolated child under the watchdog of :mod:`hardware.isolation`."""
from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Mapping

import numpy as np

from hardware.errors import LavaRunError
from hardware.isolation import DEFAULT_TIMEOUT_S, run_in_watchdog
from hardware.loihi import fixed_point as fp
from hardware.loihi.network import NetworkSpec, monitored, validate_network
from hardware.loihi.program import LavaProgram, LavaResult

GRADED_FLOAT_BITS = 24  # num_message_bits of float graded messages (any > 0 means graded)


def _lava_sign_mode(mode: int):
    from lava.utils.weightutils import SignMode

    return SignMode(int(mode))


def build_lava(spec: NetworkSpec):
    """Instantiate the Lava processes (call only inside the Lava child). Returns
    (root process, {record name: Extractor}, {layer: (Monitor, lif)}, run config)."""
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIFReset
    from lava.proc.monitor.process import Monitor

    fixed = spec.fixed
    procs = {}
    for name, data in spec.sources.items():
        procs[name] = RingBuffer(data=np.asarray(data, np.int32 if fixed else np.float64))
    for name, p in spec.layers.items():
        interval, offset = spec.reset[name]
        if fixed:
            kw = {"du": int(p.du), "dv": int(p.dv), "vth": int(p.vth), "bias_mant": np.asarray(p.bias_mant, np.int32),
                      "bias_exp": np.asarray(p.bias_exp, np.int32)}
        else:
            kw = {"du": float(p.du), "dv": float(p.dv), "vth": float(p.vth),
                      "bias_mant": np.asarray(p.bias_mant, np.float64), "bias_exp": 0}
        procs[name] = LIFReset(shape=(p.size,), reset_interval=int(interval), reset_offset=int(offset),
                               name=name, **kw)
    extractors = {}
    for name, n in spec.sinks.items():
        extractors[name] = Extractor(shape=(n,), buffer_size=256)
    inport = {n: p.a_in for n, p in procs.items() if n in spec.layers}
    inport.update({n: e.in_port for n, e in extractors.items()})
    outport = {n: p.s_out for n, p in procs.items()}
    graded_bits = GRADED_FLOAT_BITS
    for syn in spec.synapses:
        graded = syn.graded
        bits = graded_bits if graded else 0
        kw = {"weights": np.asarray(syn.weights, np.int32 if fixed else np.float64), "num_message_bits": bits}
        if fixed:
            kw.update(weight_exp=int(syn.weight_exp), num_weight_bits=fp.WEIGHT_BITS,
                      sign_mode=_lava_sign_mode(syn.sign_mode))
        proc = DelayDense(delays=int(syn.delay), **kw) if syn.delay > 0 else Dense(**kw)
        outport[syn.src].connect(proc.s_in)
        proc.a_out.connect(inport[syn.dst])
        procs[syn.name] = proc
    for name in spec.record:
        if name in extractors:
            continue
        ext = Extractor(shape=(spec.layers[name].size if name in spec.layers else spec.sources[name].shape[0],),
                        buffer_size=256)
        outport[name].connect(ext.in_port)
        extractors[name] = ext
    monitors = {}
    for name in spec.record_v:
        if not monitored(spec, name):
            monitors[name] = (None, procs[name])  # read whole at every step by drive()
            continue
        mon = Monitor()
        mon.probe(procs[name].v, spec.num_steps)
        monitors[name] = (mon, procs[name])
    _link_components(spec, procs, extractors)
    cfg = Loihi2SimCfg(select_tag=spec.tag, exception_proc_model_map={Extractor: PyLoihiExtractorModel})
    root = next(iter(procs.values()))
    return root, extractors, monitors, cfg


def _link_components(spec: NetworkSpec, procs, extractors) -> None:
    """Lava runs the connected component of the process it is started from: join the others
    with zero-weight synapses from the first source (adds exact zeros)."""
    from lava.proc.dense.process import Dense

    parent = {n: n for n in [*spec.sources, *spec.layers, *spec.sinks]}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for syn in spec.synapses:
        parent[find(syn.src)] = find(syn.dst)
    first = next(iter(spec.sources))
    for name in list(spec.layers) + list(spec.sinks):
        if find(name) != find(first):
            n_src, n_dst = spec.sources[first].shape[0], (spec.layers[name].size if name in spec.layers else spec.sinks[name])
            dense = Dense(weights=np.zeros((n_dst, n_src), np.int32 if spec.fixed else np.float64),
                          num_message_bits=GRADED_FLOAT_BITS)
            procs[first].s_out.connect(dense.s_in)
            dense.a_out.connect(procs[name].a_in if name in spec.layers else extractors[name].in_port)
            parent[find(name)] = find(first)


def _actors(root):
    try:
        return list(root.runtime._messaging_infrastructure.actors)
    except AttributeError:
        return []


def _actor_failure(root) -> str | None:
    for actor in _actors(root):
        try:
            exc = actor.exception
        except (OSError, EOFError, ValueError):
            exc = None
        if exc:
            text = str(exc[1] if isinstance(exc, tuple) else exc).strip()
            heads = [ln for ln in text.splitlines() if re.match(r"^[A-Za-z_][\w.]*(Error|Exception):", ln)]
            head = heads[-1] if heads else text.splitlines()[-1] if text else "unknown error"
            return f"{head} (in Lava process {actor.name})\n{text}"
        if not actor.is_alive():
            return f"Lava process {actor.name} exited (code {actor.exitcode}) before the run finished"
    return None


def drive(root, num_steps: int, run_cfg, extractors: Mapping[str, object],
          poll_s: float = 0.05, step_vars: Mapping[str, object] | None = None) -> dict[str, np.ndarray]:
    """Run ``num_steps`` non-blocking and stream every Extractor out, watching Lava's actor
    processes: a failed one raises :class:`LavaRunError` at once instead of hanging.

    ``step_vars`` ({name: Lava Var}): run one step at a time instead and read each Var whole
    after every step (``'<name>.v'`` in the result): how a layer too large for a Monitor is
    recorded, one message per step instead of one per value."""
    from lava.magma.core.run_conditions import RunSteps

    if step_vars:
        return _drive_stepwise(root, num_steps, run_cfg, extractors, step_vars)
    root.run(condition=RunSteps(num_steps=num_steps, blocking=False), run_cfg=run_cfg)
    out = {name: np.zeros((num_steps,) + tuple(ext._shape), np.float64) for name, ext in extractors.items()}
    ports = {name: ext.out_port.external_pipe_csp_recv_port for name, ext in extractors.items()}
    last_check = time.monotonic()
    for step in range(num_steps):
        for name, ext in extractors.items():
            while not ports[name].probe():
                time.sleep(0.0005)
                if time.monotonic() - last_check > poll_s:
                    last_check = time.monotonic()
                    failure = _actor_failure(root)
                    if failure:
                        raise LavaRunError(f"Lava failed at step {step + 1}: {failure}")
            out[name][step] = ext.receive()
    root.wait()
    return out


def _drive_stepwise(root, num_steps: int, run_cfg, extractors: Mapping[str, object],
                    step_vars: Mapping[str, object]) -> dict[str, np.ndarray]:
    from lava.magma.core.run_conditions import RunSteps

    out = {name: np.zeros((num_steps,) + tuple(ext._shape), np.float64) for name, ext in extractors.items()}
    out.update({f"{name}.v": np.zeros((num_steps,) + tuple(var.shape), np.float64) for name, var in step_vars.items()})
    for step in range(num_steps):
        root.run(condition=RunSteps(num_steps=1, blocking=True), run_cfg=run_cfg)
        failure = _actor_failure(root)
        if failure:
            raise LavaRunError(f"Lava failed at step {step + 1}: {failure}")
        for name, ext in extractors.items():
            out[name][step] = ext.receive()
        for name, var in step_vars.items():
            out[f"{name}.v"][step] = var.get()
    return out


def _run_network_child(spec: NetworkSpec) -> dict[str, np.ndarray]:
    root, extractors, monitors, cfg = build_lava(spec)
    try:
        stepped = {name: lif.v for name, (mon, lif) in monitors.items() if mon is None}
        raw = drive(root, spec.num_steps, cfg, extractors, step_vars=stepped)
        for name, (mon, lif) in monitors.items():
            if mon is None:
                continue
            data = mon.get_data()
            raw[f"{name}.v"] = np.asarray(data[lif.name]["v"], np.float64)
    except BaseException:
        release_shared_memory(root)
        raise
    root.stop()
    for name in spec.layers:  # spikes travel back to the parent as bytes, not float64
        if name in raw:
            raw[name] = (raw[name] != 0).astype(np.uint8)
    return raw


def release_shared_memory(root, timeout_s: float = 3.0) -> None:
    """Best effort, on failure: ask Lava's SharedMemoryManager to unlink its segments before
    the watchdog kills the group (the watchdog then unlinks whatever this run created and left
    in /dev/shm: :mod:`hardware.isolation`)."""
    import threading

    try:
        smm = root.runtime._messaging_infrastructure.smm
    except AttributeError:
        return
    if smm is None:
        return
    def shutdown():
        with contextlib.suppress(Exception):
            smm.shutdown()

    t = threading.Thread(target=shutdown, daemon=True)
    t.start()
    t.join(timeout_s)


def run_with_watchdog(spec: NetworkSpec, timeout: float = DEFAULT_TIMEOUT_S,
                      validate: bool = True) -> dict[str, np.ndarray]:
    """Validate ``spec`` and run it on Lava under the watchdog; -> raw recordings
    ``{name: [num_steps, n]}`` (and ``'<layer>.v'`` for ``record_v``)."""
    if validate:
        validate_network(spec)
    return run_in_watchdog(_run_network_child, spec, timeout=timeout)


def run_graph(program: LavaProgram, inputs: Mapping[str, np.ndarray], record: bool | tuple[str, ...] = True,
              record_v: tuple[str, ...] = (), timeout: float = DEFAULT_TIMEOUT_S) -> LavaResult:
    """Map, lay out, validate, run (watchdog) and unpack one batch."""
    spec = program.network(inputs, record, record_v)
    raw = run_with_watchdog(spec, timeout=timeout)
    return program.unpack(spec, raw)


__all__ = ["GRADED_FLOAT_BITS", "build_lava", "drive", "release_shared_memory", "run_graph", "run_with_watchdog"]
