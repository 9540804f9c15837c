"""The imbalance study: protocol, aggregation, resumable runner and the ``taaf study`` command."""
from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.study.cli import with_tuned_lrs
from benchmarks.study.job import RunResult, epochs_to_target, run_job
from benchmarks.study.protocol import METHOD_VARIANTS, NATURAL, REFERENCE, VARIANT_NAMES, Job, StudyConfig, variant
from benchmarks.study.runner import run_path, run_study
from benchmarks.study.summary import POOLED, SCHEMA, aggregate, markdown, paired, paired_bootstrap
from taaf.cli import main
from taaf.errors import ConfigError
from av_fixtures import make_crema_d_root


def test_full_protocol_has_every_variant_setting_seed_and_the_t_sweep_once() -> None:
    cfg = StudyConfig()
    jobs = cfg.jobs()
    assert len({j.key for j in jobs}) == len(jobs)
    main_grid = [j for j in jobs if j.steps == 16]
    assert len(main_grid) == len(VARIANT_NAMES) * 3 * 5  # variants x settings x seeds
    sweep = [j for j in jobs if j.steps != 16]
    assert {(j.variant, j.steps) for j in sweep} == {(v, t) for v in ("taaf", "taaf-fused", "concat") for t in (2, 4, 8)}
    assert all(j.setting == "audio-dominant" for j in sweep) and len(sweep) == 3 * 3 * 5
    assert "taaf-fused" in VARIANT_NAMES and variant("taaf-fused").model_overrides() == {"fusion": "taaf-fused"}


def test_every_variant_gets_the_same_budget_and_its_own_switches() -> None:
    cfg = StudyConfig(epochs=7, patience=2, batch_size=32, lr=1e-3)
    configs = {v: cfg.train_config(Job(v, "clean", 1, 16)) for v in VARIANT_NAMES}
    published = configs.pop("ogm-ge-published")
    assert {(c.epochs, c.patience, c.batch_size, c.lr, c.seed, c.optimizer) for c in configs.values()} == {
        (7, 2, 32, 1e-3, 1, "adam")}
    assert (published.epochs, published.batch_size, published.lr, published.optimizer) == (7, 32, 1e-3, "sgd")
    assert configs["concat-aux"].method == "concat-aux" and configs["concat-aux"].fusion == "concat"
    assert configs["ogm"].method == "ogm-ge" and not configs["ogm"].ge_noise and configs["ogm-ge"].ge_noise
    assert not configs["taaf-no-lr-mod"].modulate_lr and configs["taaf"].modulate_lr
    assert configs["taaf-no-step-loss"].step_loss_weight == 0 and configs["taaf"].step_loss_weight > 0
    # Names keep their meaning: "taaf" and its ablations are gate-only whatever the default is.
    assert variant("taaf-no-warp").model_overrides() == {"fusion": "taaf", "time_warp": False}
    assert variant("taaf").model_overrides() == {"fusion": "taaf"}
    assert variant("taaf-fused-no-lr-mod").model_overrides() == {"fusion": "taaf-fused"}
    # Methods are paired against TAAF (fused evidence), an ablation against what it ablates.
    assert REFERENCE == "taaf-fused" and variant("concat").baseline == variant("taaf").baseline == REFERENCE
    assert variant("taaf-no-warp").baseline == "taaf" and variant("taaf-fused-no-warp").baseline == "taaf-fused"


def test_quick_and_external_data_set_protocols() -> None:
    quick = StudyConfig.for_dataset("av-digits", quick=True)
    assert quick.seeds == (0,) and quick.epochs == 2 and quick.t_sweep == (2, 4)
    crema = StudyConfig.for_dataset("crema-d", "/data/crema")
    assert crema.settings == (NATURAL,) and crema.t_sweep_setting == NATURAL
    assert crema.data_spec(NATURAL, 8).root == "/data/crema"
    temporal = StudyConfig.for_dataset("av-mnist-temporal")
    assert "misaligned" in temporal.settings and len(temporal.seeds) >= 5 and temporal.patience > 0
    spec = temporal.data_spec("misaligned", 16)
    assert (spec.dataset, spec.preset, spec.n_steps) == ("av-mnist-temporal", "misaligned", 16)
    with pytest.raises(ConfigError, match="raise --steps"):  # refused before any run, not mid-study
        StudyConfig.for_dataset("av-mnist-temporal", settings=("misaligned",), t_sweep=(8,))


def test_ablations_run_only_in_their_settings_and_methods_everywhere() -> None:
    cfg = StudyConfig.for_dataset("av-mnist-temporal")
    assert cfg.ablation_settings == ("misaligned",) and cfg.convergence_target == 0.95 and cfg.epochs == 12
    main_grid = {(j.variant, j.setting) for j in cfg.jobs() if j.steps == cfg.steps}
    for setting in cfg.settings:
        assert {v for v, s in main_grid if s == setting} >= set(METHOD_VARIANTS)
        assert ("taaf-no-warp", setting) in main_grid or setting != "misaligned"
    assert {s for v, s in main_grid if v == "taaf-no-step-loss"} == {"misaligned"}
    settings = [j.setting for j in cfg.jobs() if j.steps == cfg.steps]
    assert settings == sorted(settings, key=cfg.settings.index)  # whole settings first: a partial study is usable
    with pytest.raises(ConfigError, match="unknown setting"):
        StudyConfig(ablation_settings=("nowhere",))


def test_pooled_comparison_over_settings() -> None:
    results = [_result(v, st, s, f) for v, st, s, f in (
        ("taaf", "clean", 0, 0.90), ("taaf", "clean", 1, 0.94), ("concat", "clean", 0, 0.92), ("concat", "clean", 1, 0.86),
        ("taaf", "noisy", 0, 0.80), ("taaf", "noisy", 1, 0.80), ("concat", "noisy", 0, 0.60), ("concat", "noisy", 1, 0.64))]
    by_setting = {c.setting: c for c in paired(results, "concat", "taaf", 16)}
    assert set(by_setting) == {"clean", "noisy", POOLED}
    pooled = by_setting[POOLED]
    assert pooled.difference.n == 4 and pooled.wins == 1
    assert pooled.difference.mean == pytest.approx((by_setting["clean"].difference.mean + by_setting["noisy"].difference.mean) / 2)
    assert pooled.ci_low <= pooled.difference.mean <= pooled.ci_high < 0  # concat loses in both: the CI sees it
    results = [replace(r, setting="audio-dominant") if r.setting == "noisy" else r for r in results]
    results = [replace(r, variant="taaf-fused") if r.variant == "taaf" else r for r in results]
    table = markdown(StudyConfig(settings=("clean", "audio-dominant"), variants=("taaf-fused", "concat"), seeds=(0, 1),
                                 t_sweep=()), results)
    assert "| variant | minus | clean | audio-dominant | pooled |" in table and "| concat | taaf-fused | " in table


def test_convergence_target_is_recomputed_from_the_history() -> None:
    runs = [replace(_result("taaf", "clean", s, 0.9), history=[{"val": {"fused": v}} for v in (0.5, 0.8, 0.93)])
            for s in (0, 1)]
    assert aggregate(runs)[0].epochs_to_target.mean == 1.5  # what each run stored
    (row,) = aggregate(runs, target=0.8)
    assert row.epochs_to_target.mean == 2 and row.reached_target == 2
    assert aggregate(runs, target=0.95)[0].reached_target == 0


def test_a_folder_of_another_data_sets_study_is_refused(tmp_path: Path, capsys) -> None:
    (tmp_path / "study.json").write_text(json.dumps({"protocol": {"dataset": "av-digits"}}))
    assert main(["study", "--dataset", "av-mnist-temporal", "--summarize", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "holds a study of av-digits" in err and len(err.splitlines()) == 1


def test_a_subset_run_does_not_silently_replace_the_study_of_record(tmp_path: Path, capsys) -> None:
    record = {"schema": SCHEMA, "protocol": {"dataset": "av-digits", "variants": {"taaf": "", "concat": ""},
                           "settings": ["clean", "audio-dominant"], "seeds": [0, 1]}}
    (tmp_path / "study.json").write_text(json.dumps(record))
    argv = ["study", "--dataset", "av-digits", "--summarize", "--out", str(tmp_path), "--variants", "taaf",
            "--settings", "clean", "audio-dominant", "--seeds", "0", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "also covers variants concat" in err and "--replace" in err and len(err.splitlines()) == 1
    assert json.loads((tmp_path / "study.json").read_text()) == record
    assert main([*argv, "--replace"]) == 2  # allowed past the check; then no runs to summarise
    assert "runs are missing" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, message", [
    ({"settings": ("noisy",)}, "unknown setting"),
    ({"variants": ("magic",)}, "unknown variant"),
    ({"dataset": "crema-d"}, "needs --root"),
    ({"epochs": 0}, "epochs must be"),
    ({"seeds": ()}, "at least one seed"),
])
def test_bad_protocols_are_refused(kwargs, message) -> None:
    with pytest.raises(ConfigError, match=message):
        StudyConfig(**kwargs)


def test_epochs_to_target_is_absolute() -> None:
    assert epochs_to_target([0.5, 0.8, 0.9, 0.95, 1.0], 0.9) == 3
    assert epochs_to_target([0.96, 0.5], 0.9) == 1
    assert epochs_to_target([0.1, 0.2], 0.9) is None  # never reached: counted apart, not as the budget


def _result(name: str, setting: str, seed: int, fused: float, steps: int = 16, n: int = 50) -> RunResult:
    ones = round(fused * n)
    return RunResult(variant=name, setting=setting, seed=seed, steps=steps,
                     test={"fused": fused, "audio": 0.5, "visual": 0.4}, val={"fused": fused, "audio": 0.5, "visual": 0.4},
                     selected_epoch=2, epochs_to_target=seed + 1, stopped_epoch=5, correct="1" * ones + "0" * (n - ones),
                     synops=1000.0 * (seed + 1), effective_acs=900.0,
                     effective_macs=100.0, firing_rate=0.2, train_seconds=1.0, device="cpu", history=[])


def test_aggregate_and_paired_differences() -> None:
    results = [_result("taaf", "clean", s, f) for s, f in ((0, 0.90), (1, 0.94))]
    results += [_result("concat", "clean", s, f) for s, f in ((0, 0.92), (1, 0.91))]
    (taaf,) = [r for r in aggregate(results) if r.variant == "taaf"]
    assert taaf.fused.mean == pytest.approx(0.92) and taaf.fused.std == pytest.approx(math.sqrt(0.0008))
    assert taaf.synops.mean == 1500.0 and taaf.seeds == (0, 1)
    (cmp,) = paired(results, "concat", "taaf", 16)
    assert cmp.difference.mean == pytest.approx(-0.005) and cmp.wins == 1 and cmp.difference.n == 2
    assert cmp.ci_low <= cmp.difference.mean <= cmp.ci_high
    results = [replace(r, variant="taaf-fused") if r.variant == "taaf" else r for r in results]
    table = markdown(StudyConfig(settings=("clean",), variants=("taaf-fused", "concat"), seeds=(0, 1), t_sweep=()),
                     results, {"clean": {"audio_probe": 0.7, "visual_probe": 0.6, "linear_fusion": 0.8}})
    assert "| clean | taaf-fused | 92.0 ± 2.8 |" in table and "| concat | taaf-fused | -0.5 [" in table
    assert "(1/2) |" in table
    assert "| clean | 70.0 | 60.0 | 80.0 |" in table  # the floors beside the methods


def test_paired_bootstrap_on_hand_made_correctness() -> None:
    a = [[1, 1, 0, 1], [1, 0, 1, 1]]
    assert paired_bootstrap(a, a, replicates=200) == (0.0, 0.0)  # identical predictions: no difference at all
    better = [[1, 1, 1, 1], [1, 1, 1, 1]]
    low, high = paired_bootstrap(better, a, replicates=500)
    assert 0.0 <= low <= 0.25 <= high <= 1.0  # the mean gain 0.25 inside, never below 0 (never worse anywhere)


def test_run_record_round_trip() -> None:
    r = _result("ogm", "clean", 0, 0.9)
    assert RunResult.from_dict(json.loads(json.dumps(r.as_dict()))) == r
    with pytest.raises(ValueError):
        RunResult.from_dict({"schema": "other"})


TINY = dict(settings=("audio-dominant",), variants=("taaf", "concat"), seeds=(0,), epochs=1, steps=4,
            t_sweep=(2,), synops_samples=50, attention_samples=2)


def test_a_job_measures_accuracy_synops_and_attention() -> None:
    cfg = StudyConfig(**TINY)
    result = run_job(cfg, Job("taaf", "audio-dominant", 0, 4))
    assert set(result.test) == {"fused", "audio", "visual"} and 0 <= result.test["fused"] <= 1
    assert result.synops > 0 and result.synops == pytest.approx(result.effective_acs + result.effective_macs)
    assert len(result.history) == 1 and set(result.history[0]["coefficient"]) == {"audio", "visual"}
    assert len(result.attention.alpha) == 2 and len(result.attention.alpha[0]) == 4
    assert sum(result.attention.alpha[0]) == pytest.approx(1.0, abs=1e-4)
    # Seeded: the same job twice gives the same numbers.
    again = run_job(cfg, Job("taaf", "audio-dominant", 0, 4))
    assert again.test == result.test and again.synops == result.synops


def test_runner_writes_each_run_and_resumes(tmp_path: Path) -> None:
    cfg = StudyConfig(**TINY)
    lines: list[str] = []
    results, execution = run_study(cfg, tmp_path, workers=1, log=lines.append)
    assert execution.jobs_run == 4 and len(results) == 4  # 2 variants at T=4 and at T=2 (the sweep)
    for job in cfg.jobs():
        assert run_path(tmp_path, job).is_file()
    again, execution = run_study(cfg, tmp_path, workers=1, log=lines.append)
    assert execution.jobs_run == 0 and [r.test for r in again] == [r.test for r in results]
    # A corrupt result file is not trusted: that job runs again.
    run_path(tmp_path, cfg.jobs()[0]).write_text("{not json")
    _, execution = run_study(cfg, tmp_path, workers=1, log=lines.append)
    assert execution.jobs_run == 1


def test_ablations_train_at_their_baselines_tuned_rate_and_stale_rates_rerun(tmp_path: Path) -> None:
    from benchmarks.study.runner import reusable

    cfg = StudyConfig(lrs=(("taaf-fused", 4e-3), ("taaf", 1e-3), ("ogm-ge", 3e-3)))
    assert cfg.lr_of("taaf-fused-no-warp") == 4e-3 and cfg.lr_of("taaf-no-warp") == 1e-3 and cfg.lr_of("ogm") == 3e-3
    assert cfg.lr_of("concat") == cfg.lr  # a method without a tuned rate: the study's
    job = Job("taaf-fused-no-warp", "clean", 0, 16)
    stale = replace(_result(job.variant, "clean", 0, 0.9), lr=2e-3)  # trained before ablations had their rate
    run_path(tmp_path, job).parent.mkdir(parents=True)
    run_path(tmp_path, job).write_text(json.dumps(stale.as_dict()))
    assert reusable(cfg, tmp_path, job) is None
    run_path(tmp_path, job).write_text(json.dumps(replace(stale, lr=4e-3).as_dict()))
    assert reusable(cfg, tmp_path, job) is not None


def test_a_trial_that_diverges_is_recorded_by_tuning_and_fails_a_study(tmp_path: Path, monkeypatch) -> None:
    """A tuning trial whose rate is too high (diverged in epoch 1) is an outcome, not a crash: it
    comes back as None with ``diverged_ok`` and cannot be chosen; in a study run it is a failure."""
    import benchmarks.study.runner as runner
    from benchmarks.study.cli import _choose
    from taaf.errors import TaafError
    from taaf.training.trainer import TrainingDiverged

    def diverge(cfg_, job, device="cpu"):
        raise TrainingDiverged("training diverged in epoch 1")

    monkeypatch.setattr(runner, "run_job", diverge)
    cfg = StudyConfig(**TINY)
    jobs = cfg.tuning_jobs()[:2]
    results, _ = run_study(cfg, tmp_path, workers=1, jobs=jobs, diverged_ok=True, log=lambda _: None)
    assert results == [None, None] and not (tmp_path / "runs").exists()
    with pytest.raises(TaafError, match="2 of 2 runs failed .*diverged in epoch 1"):
        run_study(cfg, tmp_path, workers=1, jobs=jobs, log=lambda _: None)
    with pytest.raises(TaafError, match="every trial of taaf diverged"):
        _choose("taaf", [{"lr": 1e-3, "val_fused": None, "diverged": True}])


def test_tuning_chooses_the_best_rate_and_flags_a_grid_edge_only_when_it_is_one() -> None:
    from benchmarks.study.cli import _choose

    def trials(*vals):
        return [{"lr": lr, "val_fused": v} for lr, v in zip((1e-3, 2e-3, 4e-3, 8e-3), vals)]

    top = _choose("concat", trials(0.90, 0.92, 0.93, 0.95))
    assert top["chosen_lr"] == 8e-3 and top["at_grid_edge"]
    inside = _choose("concat", trials(0.90, 0.96, 0.93, 0.95))
    assert inside["chosen_lr"] == 2e-3 and not inside["at_grid_edge"]
    tied = _choose("concat", trials(0.99, 0.99, 0.99, 0.99))  # all tie: the lowest rate, not an edge
    assert tied["chosen_lr"] == 1e-3 and not tied["at_grid_edge"]
    bottom = _choose("concat", trials(0.99, 0.97, 0.96, 0.95))
    assert bottom["chosen_lr"] == 1e-3 and bottom["at_grid_edge"]
    diverged_top = _choose("concat", [*trials(0.90, 0.96, 0.93), {"lr": 8e-3, "val_fused": None, "diverged": True}])
    assert diverged_top["chosen_lr"] == 2e-3 and not diverged_top["at_grid_edge"]


def test_a_failed_run_does_not_stop_the_others_and_a_rerun_retries_only_it(tmp_path: Path, monkeypatch) -> None:
    import benchmarks.study.runner as runner
    from taaf.errors import TaafError

    cfg = StudyConfig(**TINY)
    doomed = cfg.jobs()[0]

    def flaky(cfg_, job, device="cpu"):
        if job == doomed:
            raise TaafError("decays must lie in [0, 1]")
        return run_job(cfg_, job, device)

    monkeypatch.setattr(runner, "run_job", flaky)
    lines: list[str] = []
    with pytest.raises(TaafError, match=rf"1 of 4 runs failed .*{doomed.key}: decays"):
        run_study(cfg, tmp_path, workers=1, log=lines.append)
    assert any(line.startswith("[1/4] FAILED") for line in lines)
    assert [run_path(tmp_path, j).is_file() for j in cfg.jobs()] == [False, True, True, True]
    monkeypatch.setattr(runner, "run_job", run_job)
    _, execution = run_study(cfg, tmp_path, workers=1, log=lines.append)
    assert execution.jobs_run == 1 and all(run_path(tmp_path, j).is_file() for j in cfg.jobs())


def test_taaf_study_quick_writes_results_table_and_plots(tmp_path: Path, capsys) -> None:
    """The CI smoke test: the real command, reduced to one seed and two epochs."""
    out = tmp_path / "study"
    assert main(["study", "--dataset", "av-digits", "--quick", "--out", str(out)]) == 0
    doc = json.loads((out / "study.json").read_text())
    assert doc["schema"] == SCHEMA and doc["protocol"]["quick"] is True
    rows = {(r["variant"], r["setting"], r["steps"]) for r in doc["rows"]}
    assert len(rows) == len(VARIANT_NAMES) * 3 + 3 * 2  # main grid + T sweep {2, 4} of 3 variants
    assert {(c["variant"], c["baseline"]) for c in doc["comparisons"]} == {
        (v, variant(v).baseline) for v in VARIANT_NAMES if v != REFERENCE}
    assert all(c["ci_low"] <= c["ci_high"] for c in doc["comparisons"] if c["metric"] == "fused")
    for name in ("accuracy_curves", "coefficients", "accuracy_vs_steps", "attention", "attention_dynamics"):
        assert (out / f"{name}.png").stat().st_size > 10_000
    assert "| audio-dominant | taaf |" in (out / "report.md").read_text()
    attention = doc["attention"]  # did the attention collapse, did k move: per TAAF variant and preset
    assert {(a["variant"], a["setting"]) for a in attention} == {
        (v, s) for v in VARIANT_NAMES if v.startswith("taaf") for s in doc["protocol"]["settings"]}
    for a in attention:
        runs = [json.loads(p.read_text()) for p in (out / "runs").glob(f"{a['variant']}__{a['setting']}__T{doc['protocol']['steps']}__s*.json")]
        assert runs
        assert a["modality_entropy_last"]["mean"] == pytest.approx(
            sum(r["history"][-1]["attention_entropy"]["modality"] for r in runs) / len(runs))
        assert 0 <= a["modality_entropy_min"]["mean"] <= 1 + 1e-6 and 0 < a["k_visual_last"]["mean"] <= 1
    assert "| H_m last | H_m lowest |" in (out / "report.md").read_text()
    assert "wrote" in capsys.readouterr().out


def test_tuning_gives_every_method_the_same_trials_and_the_study_uses_them(tmp_path: Path, capsys) -> None:
    jobs = StudyConfig().tuning_jobs()
    per_method = {v: [j.lr for j in jobs if j.variant == v] for v in METHOD_VARIANTS}
    assert {len(lrs) for lrs in per_method.values()} == {4} and {j.variant for j in jobs} == set(METHOD_VARIANTS)
    assert min(per_method["ogm-ge-published"]) >= 1e-2  # SGD trials on SGD's scale
    out = tmp_path / "tuned"
    assert main(["study", "--dataset", "av-digits", "--tune", "--variants", "taaf", "concat", "--settings", "audio-dominant", "--seeds", "0",
                 "--epochs", "1", "--workers", "1", "--out", str(out)]) == 0
    doc = json.loads((out / "tuning.json").read_text())
    assert set(doc["methods"]) == {"taaf", "concat"} and doc["trials_per_method"] == 4
    assert doc["chosen_at_grid_edge"] == sorted(v for v, m in doc["methods"].items() if m["at_grid_edge"])
    for m in doc["methods"].values():
        assert m["chosen_lr"] == max(m["trials"], key=lambda t: t["val_fused"])["lr"]
    cfg = with_tuned_lrs(StudyConfig(epochs=1), out)  # the budget the trials ran under
    assert cfg.lr_of("concat") == doc["methods"]["concat"]["chosen_lr"] and cfg.lr_of("ogm") == cfg.lr
    with pytest.raises(Exception, match="was tuned with"):  # rates chosen for other runs: refused
        with_tuned_lrs(StudyConfig(epochs=5), out)
    capsys.readouterr()
    del doc["methods"]["concat"]["trials"][-1]  # tuned on a smaller grid than today's: said so
    (out / "tuning.json").write_text(json.dumps(doc))
    with_tuned_lrs(StudyConfig(epochs=1), out)
    assert "other rates than today's grid for concat:" in capsys.readouterr().out
    (out / "tuning.json").write_text("[1]")
    with pytest.raises(Exception, match="not a tuning file"):
        with_tuned_lrs(StudyConfig(), out)


def test_taaf_study_runs_on_a_crema_d_layout(tmp_path: Path) -> None:
    root = make_crema_d_root(tmp_path, n_per_class=5)
    out = tmp_path / "crema-study"
    assert main(["study", "--dataset", "crema-d", "--root", str(root), "--variants", "taaf", "concat",
                 "--epochs", "1", "--seeds", "0", "--out", str(out), "--workers", "1"]) == 0
    doc = json.loads((out / "study.json").read_text())
    assert {r["setting"] for r in doc["rows"]} == {NATURAL}


@pytest.mark.parametrize("argv, message", [
    (["study", "--settings", "noisy"], "unknown setting 'noisy'"),
    (["study", "--dataset", "ave"], "needs --root"),
    (["study", "--workers", "0", "--quick"], "argument --workers: must be an integer in [1, 1024]"),  # the parser refuses it now
])
def test_taaf_study_bad_input_is_one_line_and_exit_2(argv, message, tmp_path: Path, capsys) -> None:
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_summarize_without_runs_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["study", "--quick", "--summarize", "--out", str(tmp_path)]) == 2
    assert "runs are missing" in capsys.readouterr().err


def test_a_tuning_trial_at_the_chosen_rate_is_reused_by_the_study(tmp_path: Path) -> None:
    from benchmarks.study.runner import reusable

    cfg = StudyConfig(**{**TINY, "lrs": (("taaf", 4e-3),)})
    job = Job("taaf", "audio-dominant", 0, 4)
    trial = replace(job, lr=4e-3)
    result = replace(_result("taaf", "audio-dominant", 0, 0.9, steps=4), lr=4e-3, trial=True)
    run_path(tmp_path, trial).parent.mkdir(parents=True)
    run_path(tmp_path, trial).write_text(json.dumps(result.as_dict()))
    reused = reusable(cfg, tmp_path, job)
    assert reused is not None and reused.job == job and reused.lr == 4e-3
    assert reusable(StudyConfig(**TINY), tmp_path, job) is None  # the study's rate differs: train it
