"""The ``taaf-bench/2`` schema of report.json and :func:`validate_report`, which checks a report against it.

The spec is a tree of expected types: a dict is a JSON object with (at least) those keys, a
one-element list a JSON list of that element, :data:`NUM` an int or float (not bool) and
:class:`OptionalField` a value that may also be null. Sections whose JSON is exactly
``dataclasses.asdict`` of a dataclass are derived from its fields (:func:`fields_spec`); the
sections that :mod:`benchmarks.report.model` reshapes are written out.
"""
from __future__ import annotations

import types
import typing
from dataclasses import dataclass, fields
from typing import Any

from benchmarks.ann_baseline import OnnxTiming
from benchmarks.report.model import COUNT_SOURCES, NOT_MEASURED, SCHEMA, CheckpointInfo, Machine
from taaf.errors import TaafError
from taaf.evaluate import Accuracies

NUM = "number"  # int or float, not bool


class ReportSchemaError(TaafError):
    """A report.json does not follow the ``taaf-bench/2`` schema."""


@dataclass(frozen=True)
class OptionalField:
    """A schema node that may also be JSON null."""

    spec: Any


def _opt(spec: Any) -> OptionalField:
    return OptionalField(spec)


_FIELD_TYPES = {int: int, str: str, bool: bool, float: NUM}


def fields_spec(cls: type) -> dict[str, Any]:
    """The spec of a dataclass serialised by ``dataclasses.asdict``, so the two cannot drift apart."""
    hints = typing.get_type_hints(cls)
    return {f.name: _field_spec(hints[f.name]) for f in fields(cls)}


def _field_spec(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(rest) == 1 and len(typing.get_args(hint)) == 2:
            return OptionalField(_field_spec(rest[0]))
    if hint not in _FIELD_TYPES:
        raise TypeError(f"no schema type for field type {hint!r}")
    return _FIELD_TYPES[hint]


_ACC = fields_spec(Accuracies)
_CHECKPOINT = fields_spec(CheckpointInfo)
_LAYER_ENERGY = {"name": str, "energy_pj": NUM, "energy_j": NUM}
_ESTIMATE = {"table": str, "counting": str, "mac_table": _opt(str), "mixed": bool, "compute_pj": NUM,
             "memory_pj": NUM, "total_pj": NUM, "total_j": NUM, "memory": str, "once": [str], "uncharged": [str],
             "layers": [_LAYER_ENERGY],
             "terms": [{"layer": str, "kind": str, "count": NUM, "table": str, "constant": str,
                        "pj_per_op": NUM, "category": str, "energy_pj": NUM}]}
_COMPARISON = {"counting": str, "snn": _ESTIMATE, "ann": _opt(_ESTIMATE), "like_for_like": bool,
               "snn_over_ann_compute": _opt(NUM), "snn_over_ann_total": _opt(NUM), "ratio_note": str}
_TIMING = fields_spec(OnnxTiming)
_GPU = {"status": str, "batch": int, "measured": bool, "reason": str, "joules_per_inference": _opt(NUM),
        "device": str}
SCHEMA_SPEC: dict[str, Any] = {  # the whole report: what validate_report checks key by key
    "schema": str,
    "models": {"snn": _CHECKPOINT, "ann": _opt(_CHECKPOINT)},
    "data": {"dataset": str, "preset": str, "split": str, "samples": int, "split_samples": int, "n_steps": int,
             "data_spec": dict},
    "accuracy": {"snn": _ACC, "ann": _opt(_ACC), "source": str},
    "counted": {
        "snn": {"source": str, "samples": int, "steps": int,
                "totals": {"synops": NUM, "effective_acs": NUM, "effective_macs": NUM, "dense_ops": NUM,
                           "host_macs": int, "neuron_updates": NUM, "membrane_updates": NUM,
                           "activation_sparsity": NUM},
                "groups": [{"name": str, "source": str, "target": str, "op": str, "effective": NUM, "dense": NUM,
                            "weights": int, "nonzero_weights": int, "static_input": bool}],
                "populations": [{"population": str, "neurons": int, "firing_rate": NUM,
                                 "firing_rate_per_step": [NUM], "activation_sparsity": NUM,
                                 "neuron_updates": NUM, "membrane_updates": NUM}],
                "host": _opt({"macs": int, "exps": int}),
                "memory": {"weights": int, "biases": int, "neurons": int, "delay_entries": int,
                           "parameter_bytes_float32": NUM, "parameter_bytes_loihi": NUM,
                           "state_bytes_float32": NUM, "state_bytes_loihi": NUM}},
        "ann": _opt({"effective_macs": NUM, "dense_macs": NUM, "padded_macs": int, "host_macs": int,
                     "parameters": int, "flop_counter_macs": int, "samples": int, "counted_by": str,
                     "layers": [{"name": str, "module": str, "op": str, "effective": NUM, "dense": NUM,
                                 "padded": int}],
                     "memory": {"weights": int, "biases": int, "parameter_bytes_float32": int}}),
    },
    "estimated": {"kind": str, "countings": [str], "memory_priced": bool, "charged_once": [str],
                  "charged_once_reason": str, "tables": [{
                      "table": str, "description": str, "path": str, "technology": str, "charges": dict,
                      "memory": _opt(dict),
                      "constants": [{"name": str, "value": NUM, "unit": str, "pj": NUM, "source": str, "year": int,
                                     "what": str}],
                      "comparisons": [_COMPARISON]}]},
    "measured": {"kind": str, "machine": fields_spec(Machine),
                 "snn": {"status": str, "reason": str},
                 "ann": _opt({"onnx_cpu": {"latency": _TIMING, "throughput": _TIMING, "onnx_max_abs_diff": NUM},
                              "gpu_energy": [_GPU]})},
    "attention": _opt({"fusion": str, "samples": int, "modalities": [str], "alpha_mean": [NUM],
                       "beta_mean": [[NUM]], "alpha_samples": [[NUM]], "beta_samples": [[[NUM]]]}),
}
# Keys that only belong on one side of the estimated / measured divide.
_MEASURED_ONLY = {"joules_per_inference", "gross_joules_per_inference", "median_ms", "samples_per_second"}
_ESTIMATED_ONLY = {"total_pj", "energy_pj", "pj_per_op"}


def validate_report(report: Any) -> None:
    """Raise :class:`ReportSchemaError` naming the first field that breaks ``taaf-bench/2``.

    Checks required keys and their types (extra keys are allowed: a later minor addition does
    not break readers), then the rules the schema exists for: estimated and measured numbers
    in their own sections, ratios only between like-for-like estimates, every GPU figure either measured or "not measured" with a reason.
    """
    _check(report, SCHEMA_SPEC, "report")
    if report["schema"] != SCHEMA:
        raise ReportSchemaError(f"report.schema: expected {SCHEMA!r}, got {report['schema']!r}")
    if report["counted"]["snn"]["source"] not in COUNT_SOURCES:
        raise ReportSchemaError(f"report.counted.snn.source: expected one of {COUNT_SOURCES}")
    leaked = _keys(report["estimated"]) & _MEASURED_ONLY
    if leaked:
        raise ReportSchemaError(f"report.estimated: measured quantities {sorted(leaked)} in the estimated section")
    leaked = _keys(report["measured"]) & _ESTIMATED_ONLY
    if leaked:
        raise ReportSchemaError(f"report.measured: estimated quantities {sorted(leaked)} in the measured section")
    for i, t in enumerate(report["estimated"]["tables"]):
        for j, c in enumerate(t["comparisons"]):
            if not c["like_for_like"] and (c["snn_over_ann_total"] is not None or c["snn_over_ann_compute"] is not None):
                raise ReportSchemaError(f"report.estimated.tables[{i}].comparisons[{j}]: a ratio between estimates "
                                        "that are not like for like")
    ann = report["measured"]["ann"]
    for i, e in enumerate([] if ann is None else ann["gpu_energy"]):
        _check_gpu_status(e, f"report.measured.ann.gpu_energy[{i}]")


def _check_gpu_status(e: dict[str, Any], where: str) -> None:
    """A GPU figure is either measured (with joules) or "not measured" (with a reason, no joules)."""
    if e["status"] == "measured":
        if not e["measured"] or not _is_num(e["joules_per_inference"]):
            raise ReportSchemaError(f"{where}: status 'measured' needs measured true and joules_per_inference")
    elif e["status"] == NOT_MEASURED:
        if e["measured"] or not e["reason"].strip() or e["joules_per_inference"] is not None:
            raise ReportSchemaError(f"{where}: status {NOT_MEASURED!r} needs a reason and no joules")
    else:
        raise ReportSchemaError(f"{where}.status: expected 'measured' or {NOT_MEASURED!r}, got {e['status']!r}")


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check(value: Any, spec: Any, where: str) -> None:
    if isinstance(spec, OptionalField):
        if value is not None:
            _check(value, spec.spec, where)
        return
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise ReportSchemaError(f"{where}: expected an object, got {_type(value)}")
        for key, sub in spec.items():
            if key not in value:
                raise ReportSchemaError(f"{where}: missing key {key!r}")
            _check(value[key], sub, f"{where}.{key}")
        return
    if isinstance(spec, list):
        if not isinstance(value, list):
            raise ReportSchemaError(f"{where}: expected a list, got {_type(value)}")
        for i, item in enumerate(value):
            _check(item, spec[0], f"{where}[{i}]")
        return
    ok = _is_num(value) if spec == NUM else (
        isinstance(value, spec) and not (spec is int and isinstance(value, bool)))
    if not ok:
        name = "number" if spec == NUM else spec.__name__
        raise ReportSchemaError(f"{where}: expected {name}, got {_type(value)}")


def _type(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _keys(tree: Any) -> set[str]:
    if isinstance(tree, dict):
        return set(tree) | {k for v in tree.values() for k in _keys(v)}
    if isinstance(tree, list):
        return {k for v in tree for k in _keys(v)}
    return set()
