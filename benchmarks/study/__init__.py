"""The imbalance study (``taaf study``): does TAAF fix modality imbalance, at what cost, and
which of its parts does it.

:mod:`protocol` says what runs (variants, settings, seeds, T, budget), :mod:`job` trains and
measures one run, :mod:`runner` executes the runs in worker processes and keeps their results,
:mod:`summary` aggregates them into tables, :mod:`plots` draws them and :mod:`cli` ties it up.
"""
