"""Like-for-like energy (issue 14): both countings, static inputs once, the memory term, Loihi
active / inactive updates, ratios only like for like, and the ANN counted both NeuroBench ways,
each checked against numbers worked out by hand on tiny networks."""
from __future__ import annotations

import pytest
import torch

from benchmarks.bench_cli import count_ann, estimate_tables
from benchmarks.energy import Charge, estimate_ann_energy, estimate_energy, load_cost_table, price
from benchmarks.metrics import FiringCounts, GroupCounts, MemoryFootprint, NetworkCounts, UpdateCounts
from benchmarks.metrics.harness import HostCounts
from taaf.config import AudioEncoderConfig, ModelConfig, VisualEncoderConfig
from taaf.model.ann import AVANNNet


def _counts(static: bool = True) -> NetworkCounts:
    """Per inference (2 samples, T = 3): image conv 'in' 6 effective / 30 dense MACs over T (static:
    2 / 10 per step), 'hidden' 10 / 100 ACs; 'lif' (2 neurons) 6 updates, 4 of them active; host 2 MACs.
    Stored weights: in 1, hidden 2."""
    return NetworkCounts(
        samples=2, steps=3,
        groups=(GroupCounts("in", "img", "lif", "MAC", 0, 2, 12, 60, 1, 1, 0, static_input=static),
                GroupCounts("hidden", "lif", "out", "AC", 0, 2, 20, 200, 2, 2, 0)),
        firing=(FiringCounts("lif", 2, 2, (1, 0, 1)),),
        updates=(UpdateCounts("lif", 2, 12, 8),),
        memory=MemoryFootprint(3, 0, 2, 0),
        host=HostCounts(macs=2, exps=0),
    )


def test_both_countings_and_static_input_once_by_hand():
    c = _counts()
    eff = estimate_energy(c, "cmos45-fp32", memory=False, static_once=True)
    assert eff.once == ("in",) and eff.counting == "effective"
    assert eff.total_pj == pytest.approx((6 / 3 + 2) * 4.6 + 10 * 0.9 + 4 * 4.6)
    dense = estimate_energy(c, "cmos45-fp32", counting="dense", memory=False, static_once=True)
    assert dense.total_pj == pytest.approx((30 / 3 + 2) * 4.6 + 100 * 0.9 + 6 * 4.6)  # every update active
    every_step = estimate_energy(c, "cmos45-fp32", memory=False, static_once=False)
    assert every_step.once == () and every_step.total_pj == pytest.approx((6 + 2) * 4.6 + 10 * 0.9 + 4 * 4.6)
    not_static = estimate_energy(_counts(static=False), "cmos45-fp32", memory=False, static_once=True)
    assert not_static.once == () and not_static.total_pj == pytest.approx(every_step.total_pj)
    with pytest.raises(ValueError, match="counting 'sparse'"):
        estimate_energy(c, "cmos45-fp32", counting="sparse")


def test_loihi_active_and_inactive_updates_by_hand():
    c = _counts()
    eff = estimate_energy(c, "loihi", memory=False, static_once=True)
    # 4 active x 81 pJ + 2 inactive x 52 pJ (Davies 2018 Table 2); conv and host at fp32 (mixed)
    assert eff.by_kind("neuron_update") == pytest.approx(4 * 81)
    assert eff.by_kind("neuron_update_inactive") == pytest.approx(2 * 52)
    assert eff.total_pj == pytest.approx(10 * 23.6 + 4 * 81 + 2 * 52 + (2 + 2) * 4.6)
    dense = estimate_energy(c, "loihi", counting="dense", memory=False, static_once=True)
    assert dense.by_kind("neuron_update") == pytest.approx(6 * 81) and dense.by_kind("neuron_update_inactive") == 0


def test_memory_term_by_hand():
    c = _counts()
    fp32 = estimate_energy(c, "cmos45-fp32", static_once=True)
    # 3 weights x 4 B and 2 states x 4 B fit 8 KB: 10 pJ per 64-bit read, a 32-bit word is half of one
    weight_pj, state_pj = 10 * 32 / 64, 2 * 10 * 32 / 64  # state: one read + one write
    assert fp32.memory_pj == pytest.approx((2 + 10) * weight_pj + 4 * state_pj)  # host head fetches no weights
    assert fp32.compute_pj == pytest.approx((2 + 2) * 4.6 + 10 * 0.9 + 4 * 4.6)
    assert fp32.total_pj == pytest.approx(fp32.compute_pj + fp32.memory_pj)
    assert {t.category for t in fp32.terms} == {"compute", "memory"}
    int8 = estimate_energy(c, "cmos45-int8", static_once=True)
    assert int8.memory_pj == pytest.approx((2 + 10) * 10 * 8 / 64 + 4 * 2 * 10 * 8 / 64)
    loihi = estimate_energy(c, "loihi", static_once=True)  # per-event figures are all-in: only the fp32 side
    assert loihi.memory_pj == pytest.approx(2 * weight_pj)
    fp32_table = load_cost_table("cmos45-fp32")
    for weights, per_read in ((2048, 10.0), (2049, 20.0), (8192, 20.0), (8193, 100.0), (262_145, 1300.0)):
        est = price((Charge("w", "mac", 3.0, weights),), fp32_table, None, "effective")
        assert est.memory_pj == pytest.approx(3 * per_read / 2), weights  # level by bytes = weights x 4


def _tiny_ann() -> AVANNNet:
    """Concat ANN: audio 2 -> 2, a 1x1 conv on a 2x2 image, fc 4 -> 2, evidence 2 -> 2 each.
    All weights 1, biases 0, except audio_fc0's weight [0, 0] = 0."""
    cfg = ModelConfig(n_classes=2, n_steps=3, fusion="concat", audio=AudioEncoderConfig(2, hidden=(2,)),
                      visual=VisualEncoderConfig((1, 2, 2), channels=(1,), kernel_size=1, strides=(1,), hidden=2),
                      fused_hidden=2)
    net = AVANNNet(cfg).eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.fill_(0.0 if name.endswith("bias") else 1.0)
        net.audio_encoder.synapses[0].weight[0, 0] = 0.0
    return net


def test_ann_counted_both_ways_by_hand():
    audio = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]])  # mean over T: [1, 0]
    image = torch.tensor([[[[1.0, 0.0], [0.0, 2.0]]]])
    a = count_ann(_tiny_ann(), audio.numpy(), image.numpy())
    layers = {l.name: (l.effective, l.dense, l.padded, l.weights) for l in a.layers}
    # audio_fc0: input [1, 0], weight [[0, 1], [1, 1]]: input 0 drives 1 non-zero weight
    # readout_audio: ReLU(W x) = [0, 1] -> 1 input x 2 weights; conv: 2 non-zero pixels x 1 weight;
    # visual_fc: ReLU(conv) = [1, 0, 0, 2] -> 2 x 2; readout_visual: [3, 3] -> 2 x 2
    assert layers == {"audio_fc0": (1, 4, 4, 4), "readout_audio": (2, 4, 4, 4), "visual_conv0": (2, 4, 4, 1),
                      "visual_fc": (4, 8, 8, 8), "readout_visual": (4, 4, 4, 4)}
    assert (a.effective_macs, a.dense_macs, a.padded_macs, a.host.macs) == (13, 24, 24, 6)
    assert a.padded_macs == a.flop_counter.macs
    fp32 = estimate_ann_energy(a, "cmos45-fp32")
    assert fp32.compute_pj == pytest.approx((13 + 6) * 4.6)
    assert fp32.memory_pj == pytest.approx(13 * 10 * 32 / 64)  # 21 weights x 4 B: the 8 KB SRAM
    dense = estimate_ann_energy(a, "cmos45-fp32", counting="dense", memory=False)
    assert dense.total_pj == pytest.approx((24 + 6) * 4.6)
    with pytest.raises(Exception, match="cannot run the ANN"):
        estimate_ann_energy(a, "loihi")


def test_ratios_only_like_for_like():
    audio = torch.ones(1, 3, 2)
    image = torch.ones(1, 1, 2, 2)
    ann = count_ann(_tiny_ann(), audio.numpy(), image.numpy())
    tables = [load_cost_table(n) for n in ("cmos45-fp32", "loihi")]
    fp32, loihi = estimate_tables(_counts(), ann, tables, load_cost_table("cmos45-fp32"))
    for cmp in fp32.comparisons:
        assert cmp.like_for_like and cmp.snn.counting == cmp.ann.counting == cmp.counting
        assert cmp.ratio("total") == pytest.approx(cmp.snn.total_pj / cmp.ann.total_pj)
        assert cmp.ratio("compute") == pytest.approx(cmp.snn.compute_pj / cmp.ann.compute_pj)
    assert [c.counting for c in fp32.comparisons] == ["effective", "dense"]
    for cmp in loihi.comparisons:  # Loihi 14 nm per-event + fp32 MACs vs an ANN: never divided
        assert cmp.ann is None and not cmp.like_for_like and cmp.ratio("total") is None
        assert "no ratio" in cmp.ratio_note and cmp.snn.mixed


def test_temporal_ann_counted_per_frame_by_hand():
    from benchmarks.temporal_ann import TemporalANN

    cfg = ModelConfig(n_classes=2, n_steps=3, fusion="concat", audio=AudioEncoderConfig(2, hidden=(2,)),
                      visual=VisualEncoderConfig((1, 2, 2), channels=(1,), kernel_size=1, strides=(1,), hidden=2),
                      fused_hidden=2)
    net = TemporalANN(cfg).eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.fill_(0.0 if name.endswith("bias") else 1.0)
    audio = torch.tensor([[[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]]])  # 1, 0 and 2 non-zero inputs per frame
    image = torch.tensor([[[[1.0, 0.0], [0.0, 2.0]]]])
    a = count_ann(net, audio.numpy(), image.numpy())
    layers = {l.name: (l.effective, l.dense, l.padded) for l in a.layers}
    # audio_fc0: (1 + 0 + 2) inputs x 2 weights; ReLU outputs [1, 1], [0, 0], [2, 2] -> the
    # position-aware readout sees them flattened, 4 non-zero of 6 inputs x 2 classes, once
    assert layers == {"audio_fc0": (6, 12, 12), "visual_conv0": (2, 4, 4), "visual_fc": (4, 8, 8),
                      "readout_audio": (8, 12, 12), "readout_visual": (4, 4, 4)}
    assert (a.effective_macs, a.dense_macs, a.host.macs) == (24, 40, 2 * 2 + 2)  # one fusion sum
    assert a.padded_macs == a.flop_counter.macs
