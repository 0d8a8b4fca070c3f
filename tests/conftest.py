"""Shared test fixtures and settings.

``TINY_NETWORK`` is the generator every quick blind run here uses: a few channels and
levels, no non-local blocks, so a run takes well under a second. Test modules add what
they need on top, e.g. ``{**TINY_NETWORK, "starts": 1}``.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_dip_deblur.samples import blurred_photo

TINY_NETWORK = {"channels": 8, "levels": 3, "skip_channels": 4, "non_local_levels": ()}


@pytest.fixture(scope="session")
def small_blurry() -> np.ndarray:
    """A 32 x 32 photo blurred by a 5 px motion kernel (read-only: tests must not edit it)."""
    image = blurred_photo(32, 5).blurry
    image.setflags(write=False)
    return image
