"""The numerical engine: torch only (no napari, no Qt, no numpy-facing validation).

Modules: ``nets`` (the two generators), ``blur`` (the forward model), ``losses`` (loss terms),
``schedule`` (phases and learning-rate steps as data), ``solver`` (the optimisation loop).
"""
