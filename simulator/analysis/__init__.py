"""Everything that reads run folders: scoring a run, the report and its figures, the culture
map, insensitivity, structure fidelity, ablations and diversity.

The run side (participants, prompts, memory, parsing, backends, the runner) lives one level up
in ``simulator/`` and writes run folders; this package only reads them, and scores through the
``cultural_alignment`` metric in ``metrics/``. Modules are imported by name
(``from culturesim.simulator.analysis import report``) so that scoring does not pull in matplotlib.
"""
