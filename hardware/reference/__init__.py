"""Numpy reference executor for NIR graphs: the ground truth for every other backend.

Semantics are documented in :mod:`hardware.reference.simulator`.
"""
from hardware.reference.errors import GraphError, SimulationInputError
from hardware.reference.io import load_graph
from hardware.reference.simulator import ExecutionPlan, ReferenceSimulator, SimulationResult

__all__ = ["ExecutionPlan", "GraphError", "ReferenceSimulator", "SimulationInputError",
           "SimulationResult", "load_graph"]
