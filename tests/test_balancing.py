"""Balanced fusion: coefficients, OGM-GE, and the attention-weighted per-step loss."""
from __future__ import annotations

import math

import pytest
import torch

from taaf.model.host import HeadOutput
from taaf.training import losses, modulation


def test_attention_importance_is_mean_of_alpha_times_beta():
    alpha = torch.tensor([[0.25, 0.75]])
    beta = torch.tensor([[[0.8, 0.2], [0.4, 0.6]]])
    imp = modulation.attention_importance(alpha, beta)
    torch.testing.assert_close(imp, torch.tensor([(0.25 * 0.8 + 0.75 * 0.4) / 2, (0.25 * 0.2 + 0.75 * 0.6) / 2]))


def test_dominant_modality_is_slowed_and_the_other_is_not():
    k = modulation.taaf_coefficients(torch.tensor([0.3, 0.1]), gamma=0.5)
    assert k[0] < 1.0 and k[1] == 1.0
    assert math.isclose(float(k[0]), 1 - math.tanh(0.5 * (3.0 - 1.0)), rel_tol=1e-6)
    stronger = modulation.taaf_coefficients(torch.tensor([0.5, 0.1]), gamma=0.5)
    assert stronger[0] < k[0]  # more dominance, more slowing


def test_balanced_modalities_are_not_modulated_and_floor_holds():
    torch.testing.assert_close(modulation.taaf_coefficients(torch.tensor([0.2, 0.2]), 1.0), torch.ones(2))
    k = modulation.taaf_coefficients(torch.tensor([0.99, 0.01]), gamma=1.0, floor=0.1)
    assert math.isclose(float(k[0]), 0.1, rel_tol=1e-6)


def test_ogm_ge_coefficients_follow_peng_et_al():
    logits_a = torch.tensor([[4.0, 0.0], [4.0, 0.0]])
    logits_v = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    y = torch.tensor([0, 0])
    scores = modulation.confidence_scores([logits_a, logits_v], y)
    rho = scores[0] / scores[1]
    k = modulation.ogm_ge_coefficients(scores, alpha=0.5)
    assert math.isclose(float(k[0]), 1 - math.tanh(0.5 * float(rho)), rel_tol=1e-6)
    assert float(k[1]) == 1.0


def test_gradient_modulation_scales_and_adds_noise():
    p = torch.nn.Parameter(torch.zeros(1000))
    p.grad = torch.ones(1000) * 2.0
    modulation.modulate_gradients([p], 0.25, noise=False)
    torch.testing.assert_close(p.grad, torch.full((1000,), 0.5))
    p.grad = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    before = p.grad.clone()
    modulation.modulate_gradients([p], 0.5, noise=True, generator=torch.Generator().manual_seed(1))
    noise = p.grad - 0.5 * before
    assert 0.7 < float(noise.std() / before.std()) < 1.3  # GE: N(0, std(grad))


def test_attention_entropy_is_one_when_uniform_and_zero_when_collapsed():
    uniform = modulation.attention_entropy(torch.full((3, 4), 0.25), torch.full((3, 4, 2), 0.5))
    torch.testing.assert_close(uniform, torch.ones(2))
    alpha = torch.zeros(3, 4)
    alpha[:, 2] = 1
    beta = torch.zeros(3, 4, 2)
    beta[..., 1] = 1
    torch.testing.assert_close(modulation.attention_entropy(alpha, beta), torch.zeros(2))
    half = modulation.attention_entropy(torch.tensor([[0.5, 0.5, 0.0, 0.0]]), torch.tensor([[[0.9, 0.1]] * 4]))
    assert math.isclose(float(half[0]), 0.5, rel_tol=1e-5)  # log 2 / log 4
    assert math.isclose(float(half[1]), -(0.9 * math.log(0.9) + 0.1 * math.log(0.1)) / math.log(2), rel_tol=1e-5)


def test_entropy_term_rewards_spread_modality_attention():
    import dataclasses

    out, _ = _head()
    scores = torch.tensor([[[2.0, 0.0]] * 3] * 4, requires_grad=True)  # beta leans to audio
    out = dataclasses.replace(out, beta=torch.softmax(scores, -1))
    labels = torch.tensor([0, 1, 2, 3])
    base = losses.taaf_loss(out, labels, 0.5)
    beta = out.beta.detach()
    entropy = float(-(beta * beta.log()).sum(-1).mean() / math.log(2))
    with_term = losses.taaf_loss(out, labels, 0.5, entropy_weight=0.3)
    assert math.isclose(float(with_term), float(base) - 0.3 * entropy, rel_tol=1e-6)
    (grad,) = torch.autograd.grad(with_term, scores)
    assert (grad[..., 0] > 0).all() and (grad[..., 1] < 0).all()  # descent moves beta toward uniform


def test_published_ge_noise_is_drawn_after_scaling():
    p = torch.nn.Parameter(torch.zeros(4000))
    p.grad = torch.randn(4000, generator=torch.Generator().manual_seed(0))
    before = p.grad.clone()
    modulation.modulate_gradients([p], 0.1, noise=True, generator=torch.Generator().manual_seed(1),
                                  noise_after_scaling=True)
    noise = p.grad - 0.1 * before
    assert 0.08 < float(noise.std() / before.std()) < 0.12  # N(0, std(k grad)), not N(0, std(grad))


def test_published_ogm_modulates_the_encoders_kernels_only():
    from taaf.config import AudioEncoderConfig, ModelConfig, VisualEncoderConfig
    from taaf.model.network import build_network

    model = build_network(ModelConfig(n_classes=3, n_steps=2, audio=AudioEncoderConfig(in_features=5),
                                      visual=VisualEncoderConfig(in_shape=(1, 8, 8)), fusion="concat"))
    groups = modulation.published_ogm_parameters(model)
    assert groups["visual"] and all(p.dim() == 4 for p in groups["visual"])  # conv kernels, as the official code
    assert groups["audio"] == [lin.weight for lin in model.audio_encoder.synapses]  # no convs: weight matrices
    readouts = {id(p) for p in (*model.audio_evidence.parameters(), *model.visual_evidence.parameters())}
    assert not readouts & {id(p) for ps in groups.values() for p in ps}


def _head(batch=4, steps=3, classes=5, seed=0) -> HeadOutput:
    g = torch.Generator().manual_seed(seed)
    za = torch.randn(batch, steps, classes, generator=g, requires_grad=True)
    zv = torch.randn(batch, steps, classes, generator=g, requires_grad=True)
    e = torch.randn(batch, steps, generator=g, requires_grad=True)
    alpha = torch.softmax(e, 1)
    step = 0.5 * (za + zv)
    return HeadOutput(logits=(alpha[..., None] * step).sum(1), step_logits=step, audio_logits=za.mean(1),
                      visual_logits=zv.mean(1), alpha=alpha, beta=torch.full((batch, steps, 2), 0.5),
                      modality_step_logits=(za, zv)), e


def test_taaf_loss_without_step_term_is_cross_entropy():
    out, _ = _head()
    y = torch.tensor([0, 1, 2, 3])
    torch.testing.assert_close(losses.taaf_loss(out, y, 0.0), torch.nn.functional.cross_entropy(out.logits, y))


def test_step_term_does_not_train_the_temporal_attention():
    out, e = _head()
    y = torch.tensor([0, 1, 2, 3])
    full = losses.taaf_loss(out, y, 1.0)
    base = losses.taaf_loss(out, y, 0.0)
    g_full = torch.autograd.grad(full, e, retain_graph=True)[0]
    g_base = torch.autograd.grad(base, e)[0]
    torch.testing.assert_close(g_full, g_base)  # stop-gradient on alpha
    assert float(full.detach()) > float(base.detach())


def test_mean_firing_rate_counts_every_recorded_layer_together():
    from taaf.model.network import mean_firing_rate

    rate = mean_firing_rate({"a": torch.tensor([[1.0, 0.0], [1.0, 1.0]]), "b": torch.zeros(4, 3)})
    assert float(rate) == pytest.approx(3 / 16)  # 3 spikes over 4 + 12 neuron-steps


def test_spike_rate_weight_lowers_the_firing_rate(av_digits_t4, small_model_config):
    """The regulariser has to act: the same seed and budget with a weight fires less on test."""
    from taaf.config import TrainConfig
    from taaf.training.trainer import train

    data = av_digits_t4
    test = av_digits_t4.test.subset(slice(0, 200))
    rates = []
    for weight in (0.0, 10.0):
        model = train(data, TrainConfig(epochs=1, seed=3, spike_rate_weight=weight), small_model_config,
                      progress=False).model
        with torch.no_grad():
            rates.append(float(model(torch.as_tensor(test.audio), torch.as_tensor(test.image)).spike_rate))
    assert rates[1] < 0.8 * rates[0], rates


def test_spike_rate_weight_on_the_ann_is_refused(av_digits_t4, tmp_path, capsys):
    from taaf.cli import main

    assert main(["train", "--model", "ann", "--spike-rate-weight", "1", "--steps", "4", "--epochs", "1",
                 "--out", str(tmp_path / "x")]) == 2
    assert "spike-rate weight needs the spiking model" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_patience_stops_training_once_validation_stalls(av_digits_t4, small_model_config, monkeypatch):
    """Early stopping: the run ends ``patience`` epochs after its best validation epoch."""
    from taaf.config import TrainConfig
    from taaf.training import trainer
    from taaf.evaluate import Accuracies

    scores = iter([0.5, 0.7, 0.6, 0.65, 0.9, 0.9])  # best at epoch 2, then two stale epochs
    real = trainer.evaluate

    def fake(model, split):
        e = real(model, split.subset(slice(0, 8)))
        return Accuracies(next(scores), e.audio, e.visual) if split.name == "val" else e

    monkeypatch.setattr(trainer, "evaluate", fake)
    data = av_digits_t4
    small = type(data)(data.train.subset(slice(0, 64)), data.val, data.test.subset(slice(0, 8)), data.name)
    result = trainer.train(small, TrainConfig(epochs=6, patience=2), small_model_config, progress=False)
    assert [e.epoch for e in result.history] == [1, 2, 3, 4] and result.selected_epoch == 2


def test_a_non_finite_loss_stops_training_and_keeps_the_best_earlier_epoch(av_digits_t4, small_model_config,
                                                                            monkeypatch):
    """Divergence: training stops at the first NaN loss; the best earlier epoch is kept (finite
    weights, the stop recorded), and in epoch 1 the run fails with a one-line error naming the rate."""
    from taaf.config import TrainConfig
    from taaf.training import trainer

    real = losses.taaf_loss
    calls = {"n": 0}

    def nan_after(n_good):
        def loss(*args, **kwargs):
            calls["n"] += 1
            value = real(*args, **kwargs)
            return value * float("nan") if calls["n"] > n_good else value
        return loss

    data = av_digits_t4
    small = type(data)(data.train.subset(slice(0, 64)), data.val.subset(slice(0, 16)), data.test.subset(slice(0, 8)),
                       data.name)
    monkeypatch.setattr(losses, "taaf_loss", nan_after(2))  # 64 samples / batch 32 = 2 steps per epoch
    result = trainer.train(small, TrainConfig(epochs=5, batch_size=32), small_model_config, progress=False)
    assert [e.epoch for e in result.history] == [1] and result.selected_epoch == 1 and result.diverged_epoch == 2
    assert all(math.isfinite(e.loss) for e in result.history)
    assert all(bool(torch.isfinite(p).all()) for p in result.model.parameters())
    calls["n"] = 0
    monkeypatch.setattr(losses, "taaf_loss", nan_after(0))
    with pytest.raises(trainer.TrainingDiverged, match="diverged in epoch 1 .* at lr 0.002"):
        trainer.train(small, TrainConfig(epochs=5, batch_size=32, lr=2e-3), small_model_config, progress=False)
