"""The ``taaf bench`` report: what it holds, its JSON schema, and how it reads (Markdown, PNG).

One :class:`BenchReport` answers "what does my model cost on a neuromorphic chip, against a
GPU?". Its numbers come in three kinds that must never be confused, so they live in separate
sections of ``report.json`` and are labelled in every table:

* ``counted``   exact operation counts of the model on the split (SynOps, MACs, neuron
                updates, firing, memory): NeuroBench 2.x definitions, :mod:`benchmarks.metrics`.
* ``estimated`` energy = counts x constants of a cited cost table (pJ): not a measurement.
* ``measured``  what this machine measured: ONNX CPU latency / throughput and GPU energy (J)
                of the ANN baseline, or ``"not measured"`` with the reason.

Accuracy (the model's predictions on the split) and attention sit beside them. A ratio is only
ever formed between two like-for-like estimates (SNN and ANN priced by the same table, same counting,
one technology: :class:`~benchmarks.report.model.Comparison`), and says so.

This package holds no measurement code (that is :mod:`benchmarks.bench_cli`), and no energy
arithmetic (that is :mod:`benchmarks.energy`, including :func:`~benchmarks.energy.estimate_ann_energy`).
One module per job:

* :mod:`~benchmarks.report.model`     the report's dataclasses and their JSON (``as_dict``)
* :mod:`~benchmarks.report.schema`    the ``taaf-bench/2`` schema and :func:`validate_report`
* :mod:`~benchmarks.report.markdown`  report.md and the headline table
* :mod:`~benchmarks.report.plots`     the PNG plots

Everything public is re-exported here, so ``from benchmarks.report import X`` is the way in.
"""
from benchmarks.energy import estimate_ann_energy
from benchmarks.report.markdown import (fmt_energy, fmt_joules, headline_rows, headline_table, markdown_table,
                                        render_markdown)
from benchmarks.report.model import (ATTENTION_SAMPLES_SHOWN, COUNT_SOURCES, ESTIMATED_KIND, MEASURED_KIND,
                                     NOT_MEASURED, PLOTS, SCHEMA, SNN_NOT_MEASURED, AnnCounts, AnnLayer,
                                     AnnMeasurements, Attention, BenchReport, CheckpointInfo, Comparison, Machine,
                                     SplitInfo,
                                     TableEstimate, gpu_energy_dict)
from benchmarks.report.plots import plot_attention, plot_energy, plot_firing, plot_synops, write_plots
from benchmarks.report.schema import NUM, SCHEMA_SPEC, OptionalField, ReportSchemaError, fields_spec, validate_report

__all__ = [
    "ATTENTION_SAMPLES_SHOWN", "COUNT_SOURCES", "ESTIMATED_KIND", "MEASURED_KIND", "NOT_MEASURED", "NUM", "PLOTS",
    "SCHEMA", "SCHEMA_SPEC", "SNN_NOT_MEASURED",
    "AnnCounts", "AnnLayer", "AnnMeasurements", "Attention", "BenchReport", "CheckpointInfo", "Comparison",
    "Machine",
    "OptionalField", "ReportSchemaError", "SplitInfo", "TableEstimate",
    "estimate_ann_energy", "fields_spec", "fmt_energy", "fmt_joules", "gpu_energy_dict", "headline_rows",
    "headline_table", "markdown_table", "plot_attention", "plot_energy", "plot_firing", "plot_synops",
    "render_markdown", "validate_report", "write_plots",
]
