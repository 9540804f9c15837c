"""The chip IR: one typed, validated representation of a NIR graph as a neuromorphic chip holds
it, built once (:func:`lower_graph`) and consumed by every Loihi-family backend, target and
counter (Lava, the emulator, netx, resources, SynOps/energy). No Lava or torch import.
"""
from hardware.ir.graph import ChipGraph, ConvKernel, NeuronKind, NeuronLayer, Readout, Term
from hardware.ir.layout import BatchLayout, stack_inputs
from hardware.ir.lower import lower_graph

__all__ = ["BatchLayout", "ChipGraph", "ConvKernel", "NeuronKind", "NeuronLayer", "Readout", "Term", "lower_graph", "stack_inputs"]
