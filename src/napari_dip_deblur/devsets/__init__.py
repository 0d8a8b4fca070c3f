"""Development sets: synthetic cases, made deterministically from scikit-image's bundled
images, on which every hyperparameter, rule and threshold is chosen.

The Levin et al. benchmark (:mod:`napari_dip_deblur.levin`) is the *test* set: it is run to
report, never to choose. No napari here.
"""
