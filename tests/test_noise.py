"""Noise-aware schedules: TV kept in the last interval, and a run that really uses it."""

import math

import numpy as np
import pytest

from conftest import TINY_NETWORK
from napari_dip_deblur import PRESETS, deblur
from napari_dip_deblur.engine.schedule import Phase
from napari_dip_deblur.noise import (
    DEFAULT_TV_WEIGHT,
    NOISE_AWARE_NONBLIND_WEIGHT,
    noise_aware_overrides,
    noise_aware_phases,
)
from napari_dip_deblur.presets import resolve_settings
from napari_dip_deblur.restore import restore
from napari_dip_deblur.samples import blurred_fluorescence

TINY = {**TINY_NETWORK, "final_deconvolution": "none", "device": "cpu"}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_tv_is_added_to_the_last_phase_only(name):
    original = PRESETS[name].phases
    phases = noise_aware_phases(name, 0.02)
    assert len(phases) == len(original)
    assert phases[:-1] == original[:-1]
    assert phases[-1].start == original[-1].start
    assert dict(phases[-1].terms) == {**dict(original[-1].terms), "tv": 0.02}
    assert PRESETS[name].phases == original  # the preset itself is unchanged


def test_defaults_settings_and_numpy_weights():
    assert noise_aware_phases()[-1].terms["tv"] == DEFAULT_TV_WEIGHT
    custom = resolve_settings("mse", phases=[Phase(0.0, {"mse": 1.0}),
                                             Phase(0.5, {"mae": 1.0, "tv": 0.5})])
    assert dict(noise_aware_phases(custom, np.float32(0.03))[-1].terms) == pytest.approx(
        {"mae": 1.0, "tv": 0.03})
    assert noise_aware_overrides("selfdeblur", 0.1) == {
        "phases": noise_aware_phases("selfdeblur", 0.1), "final_deconvolution": "none"}


@pytest.mark.parametrize("weight", [0, -0.01, math.nan, math.inf, True, "0.01", None])
def test_bad_weights_are_refused(weight):
    with pytest.raises(ValueError, match="tv_weight"):
        noise_aware_phases("fast", weight)


@pytest.mark.parametrize("preset", ["auto", "nope", 3])
def test_auto_and_unknown_presets_are_refused(preset):
    with pytest.raises(ValueError, match="name the preset"):
        noise_aware_phases(preset)


def test_a_run_with_the_overrides_applies_tv_in_the_last_interval_only():
    image = blurred_fluorescence(32, psf_size=5, psf_sigma=1.0).blurry.astype(np.uint16)
    result = deblur(image, 5, preset="fast", iterations=10,
                    **{**TINY, **noise_aware_overrides("fast", 0.05)})
    tv = result.history["tv"]
    # "fast" switches at 20 %: iterations 0-1 have no TV, 2-9 do.
    assert np.isnan(tv[:2]).all() and np.isfinite(tv[2:]).all() and (tv[2:] > 0).all()
    assert result.settings["phases"][-1]["terms"]["tv"] == 0.05


def test_restore_passes_noise_aware_on_and_records_it():
    image = blurred_fluorescence(32, psf_size=5, psf_sigma=1.0).blurry.astype(np.uint16)
    result = restore(image, 5, preset="fast", iterations=5, noise_aware=0.05, **TINY)
    assert result.settings["noise_aware_tv_weight"] == 0.05
    assert result.settings["phases"][-1]["terms"]["tv"] == 0.05
    # the output's non-blind step gets the stronger prior unless one is given
    assert result.settings["nonblind_options"]["weight"] == NOISE_AWARE_NONBLIND_WEIGHT
    given = restore(image, 5, preset="fast", iterations=5, noise_aware=0.05, **TINY,
                    nonblind_options={"weight": 1e-3})
    assert given.settings["nonblind_options"]["weight"] == 1e-3
    assert np.isfinite(result.estimate.history["tv"][-1])
    with pytest.raises(ValueError, match="noise_aware must be None or a TV weight"):
        restore(image, 5, preset="fast", iterations=5, noise_aware=-1, **TINY)
