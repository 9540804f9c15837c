"""lava-dl netx ``.net`` files (:mod:`hardware.netx`) and the Loihi 2 resource report
(:mod:`hardware.loihi.resources`).

* our ``.net`` parts of a small TAAF model load in lava-dl's own ``netx.hdf5.Network`` and, run on
  Lava's CPU backend (fixed point), reproduce our whole-graph Lava mapping
  (:func:`~oracles.emulate_network`, itself bit-exact to Lava in
  ``test_lava.py``) spike for spike (and voltage for voltage on the audio chain); the host
  reassembly (``netx_manifest.json``) gives every layer and readout;
* our reader on lava-dl's own files (``../shared/reference/lava-dl-netx``): tiny.net and the
  Oxford network; Oxford run through netx reproduces slayer's ground truth (agreement printed);
* malformed files are :class:`NetxFormatError` naming file, layer and key;
* ``taaf-export --target lava / loihi2`` write complete sets, errors exit 2 with one line;
* resource counts by hand on a tiny graph; the default TAAF model fits one Loihi 2 chip.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
import torch

from hardware.loihi.network import GATE
from oracles import emulate_network
from hardware.loihi.quant_rules import NetxRule
from hardware.netx.bundle import export_netx, part_layers
from hardware.netx.format import NetxFormatError, NetxLayer, cuba_neuron, read_net, write_net
from hardware.netx.run import run_netx, run_netx_bundle
from hardware.loihi.resources import CoreLimits, netx_resource_report, resource_report

DT = 1e-4
TIMEOUT = 180.0
PEER_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "lava-dl-netx"
needs_peer = pytest.mark.skipif(not PEER_DIR.is_dir(), reason="../shared/reference/lava-dl-netx is absent")


# --- a small TAAF model, exported as netx parts ---------------------------------------------------

@pytest.fixture(scope="module")
def taaf_inputs():
    from hardware.backends import time_major_inputs
    from taaf.data import DataSpec, load_dataset

    split = load_dataset(DataSpec(n_steps=6)).test.subset(slice(0, 4))
    return time_major_inputs(split.audio.astype(np.float64), split.image.astype(np.float64))


@pytest.fixture(scope="module")
def bundle(taaf_net, tmp_path_factory):
    from export.nir_export import model_to_nir
    from hardware.loihi.lava_backend import TAAF_INPUT_RANGES

    b = export_netx(model_to_nir(taaf_net, DT), TAAF_INPUT_RANGES, DT, n_steps=6)
    folder = tmp_path_factory.mktemp("netx")
    for name, data in b.files.items():
        (folder / name).write_bytes(data)
    return folder, b


@pytest.fixture(scope="module")
def emulated(bundle, taaf_inputs):
    """Our whole-graph Lava mapping (NetxRule) of the same model, emulated exactly."""
    _, b = bundle
    spec = b.program.network(taaf_inputs, record=tuple(b.program.layers), record_v=("audio_lif0", "audio_lif1"))
    return b.program.unpack(spec, emulate_network(spec))


def test_taaf_partition_into_netx_chains(bundle):
    _, b = bundle
    parts = {p.name: p for p in b.parts}
    assert {n: p.layers for n, p in parts.items()} == {
        "audio": ("audio_lif0", "audio_lif1"), "visual": ("visual_lif0", "visual_lif1", "visual_lif2"),
        "fusion": ("fusion_lif",)}
    assert [(s.source, s.delay, s.kind) for s in parts["audio"].slots] == [("audio_input", 0, "input")]
    fusion = [(s.source, s.delay, s.size) for s in parts["fusion"].slots]
    assert fusion == [("audio_lif1", d, 32) for d in range(4)] + [("visual_lif2", 0, 32)]
    assert parts["fusion"].lead == 3 and parts["audio"].lead == 0 and parts["fusion"].input_size == 160
    # the program carries only registers a .net file can hold
    assert all(int(s.weight_exp) == 0 for s in b.program.synapses if s.src != GATE)
    assert all(np.all(np.asarray(p.bias_exp) == 6) for p in b.program.layers.values())
    for part in b.parts:  # each file reads back as exactly the layers we wrote
        net = read_net(b.files[f"{part.name}.net"])
        expected = part_layers(b.program, part)
        assert net.latency == len(part.layers) and net.input_size == part.input_size
        assert [layer.type for layer in net.layers] == [layer.type for layer in expected]
        synaptic = [(g, w) for g, w in zip(net.layers, expected) if g.synaptic]
        assert len(synaptic) == len(part.layers)
        for got, want in synaptic:
            assert np.array_equal(got.weight, want.weight) and np.array_equal(got.bias, want.bias)
            assert (got.neuron.i_decay, got.neuron.v_decay, got.neuron.vth_mant) == \
                   (4096, want.neuron.v_decay, want.neuron.vth_mant)
            assert (got.delay is None) == (want.delay is None)
    fusion_file = read_net(b.files["fusion.net"]).layers[0]
    assert np.array_equal(fusion_file.delay[0], np.repeat([0, 1, 2, 3, 0], 32))
    row = netx_resource_report(read_net(b.files["fusion.net"]), names={0: "fusion_lif"}).layers[0]
    nz = [np.count_nonzero(fusion_file.weight[:, 32 * j:32 * (j + 1)]) for j in range(5)]
    assert (row.name, row.synapses_dense, row.synapses_nonzero, row.delay_bits) == ("fusion_lif", 32 * 160, sum(nz), 2)
    assert row.memory_bits == 8 * (nz[0] + nz[4]) + 9 * nz[1] + 10 * (nz[2] + nz[3])  # delay 1: 1 bit, 2-3: 2 bits
    manifest = json.loads(b.files["netx_manifest.json"])
    assert [p["latency"] for p in manifest["parts"]] == [3, 2, 1]
    assert set(manifest["readouts"]) == {"z_audio", "z_visual", "z_fused", "modality_scores", "temporal_scores"}


def test_netx_rule_by_hand():
    """One term W = [0.5, -0.25] (spikes), theta 1, bias 0.1: k = floor(log2(127 / 0.5)) = 7, so the
    layer scale is s = k + 6 + 1 = 14 (weight_exp 0), mantissas 2 * [64, -32], vth = 2^(14-6),
    bias = round(0.1 * 2^(14-6)) << 6."""
    from hardware.loihi import quant_rules as qr

    q = NetxRule().layer("l", [qr.FloatTerm("x", np.array([[0.5, -0.25]]))],
                         qr.FloatNeuron(dv=0.1, du=1.0, threshold=1.0, bias=np.array([0.1])))
    assert q.scale_exp == 14 and q.lif.vth == 256 and q.lif.dv == 410 and q.lif.du == 4095
    assert q.synapses[0].weight_exp == 0 and q.synapses[0].weights.tolist() == [[128, -64]]
    assert q.lif.bias_mant.tolist() == [26] and q.lif.bias_exp.tolist() == [6]
    default = qr.PowerOfTwoRule().layer("l", [qr.FloatTerm("x", np.array([[0.5, -0.25]]))],
                                        qr.FloatNeuron(dv=0.1, du=1.0, threshold=1.0, bias=np.array([0.1])))
    assert default.synapses[0].weight_exp > 0  # the default rule uses the exponent netx cannot store
    assert cuba_neuron(4095, 410, 256).i_decay == 4096


def _layout(x: np.ndarray) -> np.ndarray:
    """[T, B, n] -> [B T, n]: samples back to back (a chain without delays needs no gap)."""
    return x.transpose(1, 0, 2).reshape(-1, x.shape[2])


def _windows(raw: np.ndarray, steps: int, batch: int, latency: int) -> np.ndarray:
    idx = np.arange(batch)[None, :] * steps + latency + np.arange(steps)[:, None]
    return raw[idx]


def test_audio_chain_in_netx_equals_our_lava_mapping(bundle, emulated, taaf_inputs):
    folder, b = bundle
    steps, batch = taaf_inputs["audio_input"].shape[:2]
    enc = b.program.encodings["audio_input"]
    x = _layout(enc.encode(taaf_inputs["audio_input"]))
    run = run_netx(folder / "audio.net", x, num_steps=x.shape[0] + 2, input_message_bits=24,
                   reset_interval=steps, reset_offset=1, record_layers=True, record_v=True, timeout=TIMEOUT)
    assert run.latency == 2
    for i, name in enumerate(("audio_lif0", "audio_lif1")):
        got = _windows(run.layer_spikes[i], steps, batch, i + 1)
        want = emulated.states[name]["spikes"]
        assert want.mean() > 0.05, name
        assert np.array_equal(got, want), name
        v = _windows(run.voltages[i], steps, batch, i + 1)
        assert np.array_equal(v, emulated.states[name]["v_int"]), name
    assert np.array_equal(run.spikes, run.layer_spikes[1])


@pytest.mark.slow
def test_all_parts_reassembled_by_the_host_equal_the_whole_graph(bundle, emulated, taaf_inputs):
    folder, b = bundle
    got = run_netx_bundle(folder, taaf_inputs, timeout=TIMEOUT)
    for name in b.program.layers:
        assert np.array_equal(got.spikes[name], emulated.states[name]["spikes"]), name
    low = b.program.chip
    for name, r in low.readouts.items():  # host readouts: the NIR's composition of the same spikes
        want = np.zeros(got.outputs[name].shape) + r.bias
        for t in r.terms:
            s = emulated.states[t.source]["spikes"].reshape(want.shape[:2] + (-1,))
            s = np.concatenate([np.zeros_like(s[:t.delay]), s[:len(s) - t.delay]]) if t.delay else s
            want = want + s @ np.asarray(t.matrix).T
        np.testing.assert_allclose(got.outputs[name], want, atol=1e-9, err_msg=name)


# --- peer files ----------------------------------------------------------------------------------

@needs_peer
def test_reader_on_lava_dl_files():
    tiny = read_net(PEER_DIR / "tiny.net")
    assert [layer.type for layer in tiny.layers] == ["input", "conv", "conv"]
    assert [layer.shape for layer in tiny.layers] == [(3, 16, 16), (24, 6, 6), (36, 1, 1)]
    assert tiny.layers[1].weight.shape == (24, 3, 5, 5) and tiny.layers[1].stride == (2, 2)
    assert tiny.layers[1].neuron.type == "LOIHI" and tiny.latency == 2 and tiny.input_size == 768
    ox = read_net(PEER_DIR / "oxford__Trained__network.net")
    assert [(layer.type, layer.weight.shape) for layer in ox.layers] == [("dense", (256, 200)), ("dense", (200, 256))]
    assert [(layer.neuron.type, layer.neuron.i_decay, layer.neuron.v_decay, layer.neuron.vth_mant)
            for layer in ox.layers] == [("CUBA", 4096, 415, 6), ("CUBA", 4096, 409, 6)]
    # resource estimate: 2 cores; Lava's Loihi 2 compiler used 5 in lava-dl's tutorial output (a lower bound)
    assert netx_resource_report(ox).cores == 2


def _binned(events: np.ndarray, n: int = 200, steps: int = 2000) -> np.ndarray:
    """slayer ``read_np_spikes`` (rows x, polarity, t ms) + ``to_tensor`` at 1 ms: [steps, n]."""
    out = np.zeros((steps, n), np.uint8)
    x, t = np.round(events[:, 0]).astype(int), np.round(events[:, 2]).astype(int)
    ok = (x >= 0) & (x < n) & (t >= 0) & (t < steps)
    out[t[ok], x[ok]] = 1
    return out


def _within_one_step(a: np.ndarray) -> np.ndarray:
    d = a.copy()
    d[1:] |= a[:-1]
    d[:-1] |= a[1:]
    return d


@needs_peer
@pytest.mark.slow
def test_oxford_through_netx_reproduces_slayer_ground_truth():
    inp = _binned(np.load(PEER_DIR / "oxford__input.npy"))
    gt = _binned(np.load(PEER_DIR / "oxford__ground_truth.npy"))
    run = run_netx(PEER_DIR / "oxford__Trained__network.net", inp, num_steps=2000, timeout=TIMEOUT)
    out = run.spikes
    exact = (out & gt).sum() / gt.sum()  # slayer's output already includes the two synaptic steps
    recall = (gt & _within_one_step(out)).sum() / gt.sum()
    precision = (out & _within_one_step(gt)).sum() / out.sum()
    f1 = 2 * recall * precision / (recall + precision)
    count_corr = np.corrcoef(out.sum(0), gt.sum(0))[0, 1]
    print(f"\nOxford netx vs slayer ground truth: {out.sum()} vs {gt.sum()} spikes, same step {exact:.3f}, "
          f"+-1 step recall {recall:.3f} precision {precision:.3f} F1 {f1:.3f}, per-neuron count r {count_corr:.4f}")
    assert exact > 0.78 and f1 > 0.86 and count_corr > 0.99
    assert abs(int(out.sum()) - int(gt.sum())) < 0.1 * gt.sum()


# --- malformed files -----------------------------------------------------------------------------

def _valid_net(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    layers = [NetxLayer("dense", (4,), rng.integers(-100, 100, (4, 3)), np.arange(4), None, cuba_neuron(4095, 100, 50)),
              NetxLayer("dense", (2,), rng.integers(-100, 100, (2, 4)), None, None, cuba_neuron(4095, 200, 60))]
    path = tmp_path / "ok.net"
    write_net(layers, path)
    return path


def _edited(tmp_path: Path, name: str, edit) -> Path:
    path = tmp_path / f"{name}.net"
    path.write_bytes(_valid_net(tmp_path).read_bytes())
    with h5py.File(path, "r+") as h:
        edit(h)
    return path


def _replace(h, key, data):
    del h[key]
    h[key] = data


MALFORMED = {
    "missing_layer": (lambda h: h.move("layer", "layers"), ["no 'layer' group"]),
    "wrong_weight_shape": (lambda h: _replace(h, "layer/1/weight", np.ones((2, 5), np.float32)),
                           ["layer/1/weight", "5 inputs", "4 outputs"]),
    "unknown_neuron_type": (lambda h: _replace(h, "layer/0/neuron/type", "IZHIKEVICH"),
                            ["layer/0/neuron/type", "unknown neuron type 'IZHIKEVICH'"]),
    "unknown_layer_type": (lambda h: _replace(h, "layer/1/type", np.array([b"warp"], "S10")),
                           ["layer/1/type", "unknown layer type 'warp'"]),
    "missing_threshold": (lambda h: h.__delitem__("layer/1/neuron/vThMant"), ["layer/1/neuron/vThMant", "missing"]),
    "fractional_weights": (lambda h: _replace(h, "layer/0/weight", np.full((4, 3), 0.5, np.float32)),
                           ["layer/0/weight", "integers"]),
    "string_weights": (lambda h: _replace(h, "layer/0/weight", np.array([b"abc"] * 12)), ["layer/0/weight", "numbers"]),
    "weights_too_large": (lambda h: _replace(h, "layer/0/weight", np.full((4, 3), 300.0, np.float32)),
                          ["layer/0/weight", "8-bit"]),
    "bias_length": (lambda h: _replace(h, "layer/0/bias", np.zeros(3, np.float32)), ["layer/0/bias", "3 values"]),
    "pool_layer": (lambda h: _replace(h, "layer/1/type", np.array([b"pool"], "S10")), ["not built by netx"]),
    "delay_too_long": (lambda h: h.create_dataset("layer/1/delay", data=np.full(2, 70.0)), ["layer/1/delay", "62"]),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_are_format_errors(tmp_path, case):
    edit, words = MALFORMED[case]
    path = _edited(tmp_path, case, edit)
    with pytest.raises(NetxFormatError) as info:
        read_net(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg
    for word in words:
        assert word in msg, (word, msg)


def test_unreadable_files_are_format_errors(tmp_path):
    with pytest.raises(NetxFormatError, match="no such .net file"):
        read_net(tmp_path / "absent.net")
    text = tmp_path / "text.net"
    text.write_text("layer 0: dense\n")
    with pytest.raises(NetxFormatError, match="not an HDF5 file"):
        read_net(text)
    data = _valid_net(tmp_path).read_bytes()
    truncated = tmp_path / "truncated.net"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(NetxFormatError, match="truncated or corrupt"):
        read_net(truncated)
    with pytest.raises(NetxFormatError, match="truncated or corrupt"):
        run_netx(truncated, np.zeros((3, 3), np.int64))  # checked before Lava sees it


def test_writer_round_trip_and_refusals(tmp_path):
    path = _valid_net(tmp_path)
    net = read_net(path)
    assert [layer.size for layer in net.layers] == [4, 2] and net.input_size == 3 and net.latency == 2
    assert net.layers[0].bias.tolist() == [0, 1, 2, 3] and net.layers[1].bias is None
    assert net.layers[0].neuron.du == 4095
    with pytest.raises(NetxFormatError, match="integers"):
        write_net([NetxLayer("dense", (2,), np.ones((2, 2)) * 0.5, None, None, cuba_neuron(4095, 1, 1))])
    with pytest.raises(NetxFormatError, match="8-bit"):
        write_net([NetxLayer("dense", (2,), np.full((2, 2), 400), None, None, cuba_neuron(4095, 1, 1))])
    with pytest.raises(NetxFormatError, match="has 4 inputs"):
        write_net([NetxLayer("dense", (2,), np.ones((2, 3), np.int64), None, None, cuba_neuron(4095, 1, 1)),
                   NetxLayer("dense", (2,), np.ones((2, 4), np.int64), None, None, cuba_neuron(4095, 1, 1))])


# --- export targets --------------------------------------------------------------------------------

@pytest.fixture()
def checkpoint(tmp_path, taaf_net):
    from taaf.checkpoint import save_checkpoint
    from taaf.config import TrainConfig
    from taaf.data import DataSpec

    path = tmp_path / "model.pt"
    save_checkpoint(path, taaf_net, TrainConfig(), DataSpec(n_steps=6))
    return path


def test_lava_target_writes_the_program(checkpoint, tmp_path):
    from export.cli import export

    notes: list[str] = []
    files = set(export(checkpoint, "lava", tmp_path / "lava", notes=notes))
    assert files == {"taaf.nir", "host_head.onnx", "lava_program.json", "lava_weights.npz", "resources.json",
                     "manifest.json"}
    program = json.loads((tmp_path / "lava" / "lava_program.json").read_text())
    assert program["rule"] == "power-of-two" and program["gap"] == 3 and program["gated"] == ["audio_lif1"]
    fusion = {s["name"]: s for s in program["synapses"] if s["dst"] == "fusion_lif"}
    assert fusion["fusion_lif<-audio_lif1@0"]["lava_delay"] == 1 and fusion["fusion_lif<-audio_lif1@3"]["lava_delay"] == 4
    assert fusion["fusion_lif<-visual_lif2@0"]["process"] == "Dense"
    with np.load(tmp_path / "lava" / "lava_weights.npz") as w:
        key = fusion["fusion_lif<-audio_lif1@0"]["weights"]
        assert w[key].shape == (32, 32) and np.abs(w[key]).max() <= 254
    assert program["layers"]["audio_lif0"]["du"] == 4095 and len(program["layers"]["audio_lif0"]["bias_mant"]) == 32
    manifest = json.loads((tmp_path / "lava" / "manifest.json").read_text())
    assert manifest["target"] == "lava" and "lava_program.json" in manifest["partition"]
    assert notes and "fits one Loihi 2 chip: yes" in notes[0]


def test_loihi2_target_writes_parts_that_netx_builds(checkpoint, tmp_path):
    from export.cli import export

    notes: list[str] = []
    files = set(export(checkpoint, "loihi2", tmp_path / "l2", notes=notes))
    assert files == {"audio.net", "visual.net", "fusion.net", "netx_manifest.json", "host_readouts.npz",
                     "host_head.onnx", "resources.json", "manifest.json"}
    assert "every .net builds in lava-dl netx.hdf5.Network (3 files)" in notes[0]
    assert "fits one Loihi 2 chip: yes" in notes[0]
    manifest = json.loads((tmp_path / "l2" / "manifest.json").read_text())
    assert {f["name"] for f in manifest["files"]} == files - {"manifest.json"}
    assert [s["nir_output"] for s in manifest["streams"]] == ["visual_lif2", "audio_lif1", "fusion_lif"]
    netx_manifest = json.loads((tmp_path / "l2" / "netx_manifest.json").read_text())
    assert netx_manifest["host_head"]["file"] == "host_head.onnx"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "export.cli", *args], check=False, capture_output=True, text=True, timeout=300)


def test_cli_loihi2_on_a_corrupt_checkpoint_is_one_line(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    result = _cli(str(bad), "--target", "loihi2", "-o", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()  # built in memory first: a failed export creates no folder
    assert "lava" in _cli("--help").stdout and "loihi2" in _cli("--help").stdout


# --- resources -------------------------------------------------------------------------------------

def _lif(n, tau=2e-3, thr=0.5):
    f = np.float32
    return nir.LIF(tau=np.full(n, tau, f), r=np.full(n, tau / DT, f), v_leak=np.zeros(n, f),
                   v_threshold=np.full(n, thr, f), v_reset=np.zeros(n, f))


def test_resource_counts_by_hand():
    """in[3] -> A(4x3, two zeros) -> l1[4] -> B(2x4) -> l2[2], and l1 -> Delay(2) -> C(2x4) -> l2."""
    f = np.float32
    a = np.arange(1, 13, dtype=f).reshape(4, 3)
    a[0, 0] = a[3, 2] = 0
    nodes = {"in": nir.Input(input_type={"input": np.array([3])}), "a": nir.Linear(weight=a), "l1": _lif(4),
             "b": nir.Linear(weight=np.ones((2, 4), f)), "d": nir.Delay(delay=np.full(4, 2 * DT, f)),
             "c": nir.Linear(weight=np.full((2, 4), 0.5, f)), "l2": _lif(2),
             "out": nir.Output(output_type={"output": np.array([2])})}
    edges = [("in", "a"), ("a", "l1"), ("l1", "b"), ("b", "l2"), ("l1", "d"), ("d", "c"), ("c", "l2"), ("l2", "out")]
    report = resource_report(nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": DT}))
    rows = {r.name: r for r in report.layers}
    assert set(rows) == {"l1", "l2"}  # the Output reads l2's spikes directly: no readout row
    l1, l2 = rows["l1"], rows["l2"]
    assert (l1.neurons, l1.synapses_dense, l1.synapses_nonzero, l1.delay_bits, l1.memory_bits) == (4, 12, 10, 0, 80)
    # l2: B (8 synapses, Lava delay 0) + C (8 synapses, Lava delay 2 -> 2 delay bits)
    assert (l2.neurons, l2.synapses_dense, l2.synapses_nonzero, l2.delay_bits) == (2, 16, 16, 2)
    assert l2.memory_bits == 8 * 8 + 8 * (8 + 2) and l2.memory_bits_dense == l2.memory_bits
    assert report.cores == 2 and report.fits_one_chip
    small = CoreLimits(neurons_per_core=3, synaptic_memory_bytes_per_core=8, cores_per_chip=2)
    tight = resource_report(nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": DT}), limits=small)
    assert [r.cores for r in tight.layers] == [2, 3] and not tight.fits_one_chip  # ceil(4/3), ceil(144/64)
    assert "NO" in tight.format_table() and tight.as_dict()["violations"] == ["5 cores > 2 per chip"]


def test_default_taaf_model_fits_one_chip():
    from export.nir_export import model_to_nir
    from taaf.config import AudioEncoderConfig, ModelConfig, VisualEncoderConfig
    from taaf.model.network import AVSpikingNet

    torch.manual_seed(0)
    cfg = ModelConfig(n_classes=10, n_steps=16, audio=AudioEncoderConfig(13), visual=VisualEncoderConfig((1, 8, 8)))
    report = resource_report(model_to_nir(AVSpikingNet(cfg).eval(), DT))
    # ... + the readouts z_audio, z_visual, z_fused, modality and temporal scores
    assert report.neurons == 512 + 256 + 128 + 128 + 128 + 128 + 10 + 10 + 10 + 2 + 1
    assert report.fits_one_chip and report.cores == 11
    table = report.format_table()
    assert "fits one Loihi 2 chip: yes" in table and "Technology Brief" in table
    assert json.loads(json.dumps(report.as_dict()))["fits_one_chip"] is True
