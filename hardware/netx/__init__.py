"""lava-dl netx ``.net`` artifacts, one module per job (none imports Lava at import time):

* :mod:`.format`: the file format, our strict reader (:func:`~.format.read_net`) and writer;
* :mod:`.partition`: a chip graph split into the feed-forward chains netx can build;
* :mod:`.bundle`: the ``loihi2`` export (``.net`` parts, host readouts, ``netx_manifest.json``);
* :mod:`.run`: running ``.net`` files on lava-dl's ``netx.hdf5.Network`` and the host reassembly;
* :mod:`.emulate`: a bit-exact, batched emulation of what netx builds, without Lava.

The quantisation rule the parts are mapped with is
:class:`~hardware.loihi.quant_rules.NetxRule`; the export targets are :mod:`hardware.targets`.
"""
