"""The TAAF network: attention normalisation, time-warp identity and causality, chip/host split."""
from __future__ import annotations

import torch

from taaf.config import ModelConfig
from taaf.model.network import AVSpikingNet
from taaf.model.timewarp import TimeWarp


def _inputs(cfg: ModelConfig, batch: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, cfg.n_steps, cfg.audio.in_features, generator=g),
            torch.rand(batch, *cfg.visual.in_shape, generator=g))


def test_output_shapes_and_attention_sums_to_one(small_model_config):
    torch.manual_seed(0)
    net = AVSpikingNet(small_model_config)
    out = net(*_inputs(small_model_config))
    assert out.logits.shape == (3, 10)
    assert out.step_logits.shape == (3, 4, 10)
    assert out.alpha.shape == (3, 4) and out.beta.shape == (3, 4, 2)
    torch.testing.assert_close(out.alpha.sum(dim=1), torch.ones(3))
    torch.testing.assert_close(out.beta.sum(dim=-1), torch.ones(3, 4))
    assert (out.alpha >= 0).all() and (out.beta >= 0).all()


def test_prediction_is_attention_weighted_evidence(small_model_config):
    """The default (fused evidence): logits = sum_t alpha_t (beta_t^a z_a + beta_t^v z_v + z_f);
    gate-only (fusion taaf): the same without the fused layer's own evidence z_f."""
    from dataclasses import replace

    assert small_model_config.fusion == "taaf-fused"
    for fusion in ("taaf-fused", "taaf"):
        torch.manual_seed(1)
        net = AVSpikingNet(replace(small_model_config, fusion=fusion))
        r = net.chip(*_inputs(small_model_config)).readouts
        out = net.head(r)
        beta = torch.softmax(r.modality_scores, -1)
        alpha = torch.softmax(r.temporal_scores, 1)
        evidence = beta[..., :1] * r.audio + beta[..., 1:] * r.visual
        if fusion == "taaf-fused":
            evidence = evidence + r.fused
        else:
            assert r.fused is None
        torch.testing.assert_close(out.logits, (alpha[..., None] * evidence).sum(1))


def test_concat_head_has_uniform_attention(small_model_config):
    from dataclasses import replace

    net = AVSpikingNet(replace(small_model_config, fusion="concat", time_warp=False))
    out = net(*_inputs(small_model_config))
    torch.testing.assert_close(out.alpha, torch.full((3, 4), 0.25))
    r = net.chip(*_inputs(small_model_config)).readouts
    torch.testing.assert_close(out.logits, (r.audio + r.visual).mean(1))


def test_time_warp_is_identity_at_initialisation():
    warp = TimeWarp(features=5, max_delay=3)
    x = torch.rand(2, 9, 5)
    torch.testing.assert_close(warp(x), x)


def test_time_warp_integer_and_fractional_delays():
    warp = TimeWarp(features=2, max_delay=3)
    with torch.no_grad():
        warp.delay.copy_(torch.tensor([1.0, 0.5]))
    x = torch.arange(1.0, 7.0).reshape(1, 6, 1).repeat(1, 1, 2)
    y = warp(x)
    torch.testing.assert_close(y[0, :, 0], torch.tensor([0.0, 1, 2, 3, 4, 5]))  # shifted by one step
    torch.testing.assert_close(y[0, :, 1], torch.tensor([0.5, 1.5, 2.5, 3.5, 4.5, 5.5]))  # halfway


def test_time_warp_is_causal_and_delay_is_clamped():
    warp = TimeWarp(features=4, max_delay=2)
    with torch.no_grad():
        warp.delay.copy_(torch.tensor([-1.0, 0.3, 1.7, 5.0]))  # clamped to [0, 2]
    x = torch.rand(1, 8, 4)
    base = warp(x)
    x2 = x.clone()
    x2[:, 5:] += 10.0
    torch.testing.assert_close(warp(x2)[:, :5], base[:, :5])
    assert torch.equal(warp.clamped_delay(), torch.tensor([0.0, 0.3, 1.7, 2.0]))


def test_time_warp_delay_receives_gradient_at_identity():
    warp = TimeWarp(features=3, max_delay=2)
    x = torch.rand(2, 6, 3)
    (warp(x) * torch.arange(6.0)[None, :, None]).sum().backward()
    assert warp.delay.grad is not None and warp.delay.grad.abs().sum() > 0


def test_whole_network_is_causal(small_model_config):
    torch.manual_seed(2)
    net = AVSpikingNet(small_model_config)
    audio, image = _inputs(small_model_config)
    with torch.no_grad():
        net.audio_warp.delay.fill_(1.5)
        a = net.chip(audio, image).readouts
        audio2 = audio.clone()
        audio2[:, 2:] = torch.randn_like(audio2[:, 2:]) * 5
        b = net.chip(audio2, image).readouts
    for name in ("audio", "visual", "modality_scores", "temporal_scores"):
        torch.testing.assert_close(getattr(a, name)[:, :2], getattr(b, name)[:, :2])
    assert not torch.allclose(a.audio[:, 2:], b.audio[:, 2:])


def test_modality_parameter_groups_partition_the_model(small_model_config):
    net = AVSpikingNet(small_model_config)
    groups = net.modality_parameters()
    ids = [id(p) for ps in groups.values() for p in ps]
    assert len(ids) == len(set(ids)) == len(list(net.parameters()))
    assert any(p is net.audio_warp.delay for p in groups["audio"])
    assert any(p is net.fusion.audio_synapses.weight for p in groups["shared"])


def test_recorded_spikes_are_binary(small_model_config):
    net = AVSpikingNet(small_model_config)
    spikes = net.chip(*_inputs(small_model_config), record=True).spikes
    assert set(spikes) == {"audio0", "audio1", "visual0", "visual1", "visual2", "fused"}
    for s in spikes.values():
        assert set(torch.unique(s).tolist()) <= {0.0, 1.0}


def test_learned_decays_are_kept_inside_what_nir_and_loihi_hold(small_model_config):
    """An SGD run drove a layer's beta to 0; Loihi keeps at least 1/4096 of the voltage, so the
    trainer's constrain_ clamps beta to [BETA_MIN, BETA_MAX] (tau = dt / (1 - beta) stays > dt)."""
    from taaf.model.neurons import BETA_MAX, BETA_MIN, LIFLayer

    net = AVSpikingNet(small_model_config)
    layers = [m for m in net.modules() if isinstance(m, LIFLayer)]
    with torch.no_grad():
        layers[0].lif.beta.fill_(-0.3)
        layers[-1].lif.beta.fill_(1.2)
    net.constrain_()
    assert layers[0].beta == BETA_MIN and abs(layers[-1].beta - BETA_MAX) < 1e-6
