"""Several starts raced for a part of the run, the sharpest going on (``Settings.starts``),
and the sharpness score that chooses (``sharpness.gradient_sparsity``)."""

import numpy as np
import pytest
from scipy import ndimage

from conftest import TINY_NETWORK
from napari_dip_deblur import deblur, deblur_iter
from napari_dip_deblur.api import start_seed
from napari_dip_deblur.samples import blurred_photo
from napari_dip_deblur.sharpness import gradient_sparsity

TINY = {**TINY_NETWORK, "final_deconvolution": "none", "device": "cpu", "preset": "fast",
        "retry_mae_ratio": None}


# --------------------------------------------------------------------------- the score


def test_blur_raises_the_score_of_a_photo_and_the_score_ignores_brightness_and_contrast():
    sharp = blurred_photo(96, 5).sharp.astype(np.float64)
    scores = [gradient_sparsity(ndimage.gaussian_filter(sharp, s)) for s in (0, 1, 2, 4)]
    assert scores == sorted(scores) and scores[-1] > scores[0] + 0.05
    assert gradient_sparsity(3.0 * sharp + 7.0) == pytest.approx(scores[0], rel=1e-9)


def test_the_score_of_known_gradients():
    # A single vertical edge: every gradient is zero but one column -> sqrt(k / n).
    edge = np.zeros((10, 10))
    edge[:, 5:] = 1.0
    n = 2 * 10 * 9  # horizontal and vertical differences
    assert gradient_sparsity(edge) == pytest.approx(np.sqrt(10 / n))
    # A ramp: all horizontal gradients equal, vertical ones zero -> sqrt(1/2).
    ramp = np.tile(np.arange(10.0), (10, 1))
    assert gradient_sparsity(ramp) == pytest.approx(np.sqrt(0.5))
    assert gradient_sparsity(np.full((8, 8), 4.0)) == 1.0


def test_the_margin_leaves_the_borders_out_and_channels_share_one_score():
    rng = np.random.default_rng(0)
    image = rng.random((20, 20))
    assert gradient_sparsity(image, margin=3) == gradient_sparsity(image[3:-3, 3:-3])
    stacked = np.stack([image, image])
    assert gradient_sparsity(stacked) == pytest.approx(gradient_sparsity(image))


@pytest.mark.parametrize("image, margin, message", [
    (np.zeros((8, 8)), -1, "margin must be >= 0"),
    (np.zeros((8, 8)), 4, "at least 2 x 2"),
    (np.zeros(8), 0, "at least 2 x 2"),
])
def test_the_score_refuses_what_it_cannot_measure(image, margin, message):
    with pytest.raises(ValueError, match=message):
        gradient_sparsity(image, margin=margin)


# --------------------------------------------------------------------------- the race


def test_start_seeds_keep_the_run_seed_first_and_differ():
    assert start_seed(7, 0) == 7
    seeds = [start_seed(7, i) for i in range(4)]
    assert len(set(seeds)) == 4 and seeds == [start_seed(7, i) for i in range(4)]
    assert start_seed(8, 1) != start_seed(7, 1)


def test_the_kept_start_is_a_plain_run_from_its_seed_and_was_the_sharpest(small_blurry):
    n, trial = 12, 3
    result = deblur(small_blurry, 5, iterations=n, starts=2, start_trial=0.25, **TINY)
    settings = result.settings
    assert settings["start_trial_iterations"] == trial
    assert result.iterations == n + trial and settings["iterations_done"] == n + trial
    seeds, scores = settings["start_seeds"], settings["start_sparsity"]
    assert seeds == [0, start_seed(0, 1)]
    assert settings["kept_start"] == int(np.argmin(scores)) + 1

    # Each recorded score is the sparsity of that start's image after its trial.
    for seed, score in zip(seeds, scores, strict=True):
        at_trial = next(s for s in deblur_iter(small_blurry, 5, iterations=n, seed=seed,
                                               yield_every=trial, **TINY))
        assert at_trial.step == trial
        assert score == pytest.approx(gradient_sparsity(at_trial.generator_image, margin=2),
                                      rel=1e-5)
    # The start kept is carried on exactly as a run from its seed alone.
    alone = deblur(small_blurry, 5, iterations=n, seed=seeds[settings["kept_start"] - 1],
                   **TINY)
    np.testing.assert_array_equal(result.image, alone.image)
    np.testing.assert_array_equal(result.kernel, alone.kernel)


def test_snapshots_count_every_start_and_say_which_is_running(small_blurry):
    snapshots = list(deblur_iter(small_blurry, 5, iterations=10, starts=3, start_trial=0.2,
                                 yield_every=2, **TINY))
    steps = [s.step for s in snapshots]
    assert steps == sorted(set(steps)) and steps[-1] == 10 + 2 * 2
    assert {s.total for s in snapshots} == {14} and snapshots[-1].done
    # Each start's trial of 2 iterations ends with a snapshot of it; then the kept one goes on.
    assert [(s.step, s.settings.get("start")) for s in snapshots[:3]] == [(2, 1), (4, 2),
                                                                          (6, 3)]
    assert all("kept_start" in s.settings for s in snapshots[3:])


def test_closing_during_a_later_start_stops_the_run(small_blurry):
    gen = deblur_iter(small_blurry, 5, iterations=40, starts=2, start_trial=0.25, yield_every=1,
                      **TINY)
    second = next(s for s in gen if s.settings.get("start") == 2)
    gen.close()
    assert second.step == 11 and second.total == 50
    with pytest.raises(StopIteration):
        next(gen)


def test_a_failed_fit_check_retries_the_kept_start(small_blurry):
    result = deblur(small_blurry, 5, iterations=8, starts=2, start_trial=0.25,
                    **{**TINY, "retry_mae_ratio": 1e-6})
    assert result.iterations == 8 + 2 + 8
    assert len(result.settings["attempt_fit_ratios"]) == 2
    assert result.settings["kept_start"] in (1, 2)


@pytest.mark.parametrize("overrides, message", [
    ({"starts": 0}, "starts must be an integer >= 1"),
    ({"starts": 1.5}, "starts must be an integer >= 1"),
    ({"starts": True}, "starts must be an integer >= 1"),
    ({"start_trial": 0.0}, "start_trial must be a fraction"),
    ({"start_trial": 1.01}, "start_trial must be a fraction"),
])
def test_bad_starts_are_refused(small_blurry, overrides, message):
    with pytest.raises(ValueError, match=message):
        deblur(small_blurry, 5, iterations=4, **TINY, **overrides)
