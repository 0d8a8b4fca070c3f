"""Real inputs: colour, stacks, regions, cancellation, known kernels, and quality checks.

Three kinds of test. Contract tests run the real blind estimator with a tiny network for a few
iterations (shapes, dtypes, scales, progress, cancellation). Known-kernel tests use the real
``kernel=`` option (no blind run at all): the restoration of every channel and plane with a
given kernel, measured against the sharp truth. Tests of what happens to a blind *estimate*
(where it is made, its clean-up and centring) replace the blind estimator by an *oracle* that
returns a kernel as a blind estimate comes out (padded, shifted, on a noise floor). A tiny
blind run is not expected to find a good kernel: it would not show an improvement in a few
seconds on a CPU, so no test pretends it does.
"""

import threading

import numpy as np
import pytest
from scipy import signal
from skimage import data, transform

import napari_dip_deblur.restore as restore_module
from conftest import TINY_NETWORK
from napari_dip_deblur import PRESETS
from napari_dip_deblur.api import Snapshot
from napari_dip_deblur.colour import luminance
from napari_dip_deblur.noise import NOISE_AWARE_NONBLIND_WEIGHT
from napari_dip_deblur.nonblind import deconvolve
from napari_dip_deblur.presets import FAST_FINAL_WEIGHT
from napari_dip_deblur.regions import Region
from napari_dip_deblur.restore import (
    RestoreResult,
    deblur_colour,
    deblur_large,
    deblur_stack,
    restore,
    restore_iter,
)
from napari_dip_deblur.samples import blurred_fluorescence, blurred_photo, motion_kernel

TINY = {**TINY_NETWORK, "final_deconvolution": "none", "preset": "fast", "device": "cpu",
        "starts": 1}


def psnr(image, truth, data_range):
    error = np.mean((np.asarray(image, np.float64) - truth) ** 2)
    return 10 * np.log10(data_range**2 / error)


class _Oracle:
    """A stand-in for the blind estimator that returns a given kernel; the images it was
    asked to fit are kept in ``calls``."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch
        self.calls = []

    def __call__(self, kernel, steps=1):
        """From now on a blind run yields ``steps`` snapshots of ``kernel``, the last done."""
        kernel = np.asarray(kernel, np.float32)

        def fake(image, kernel_size, **kwargs):
            image = np.array(image, np.float32)
            self.calls.append((image, kernel_size, kwargs))

            def snapshots():
                for step in range(1, steps + 1):
                    yield Snapshot(step=step, total=steps, image=image, kernel=kernel,
                                   generator_image=image, loss=0.0, terms={}, elapsed=0.0,
                                   done=step == steps, history={}, settings={"oracle": True})
            return snapshots()

        self.monkeypatch.setattr(restore_module, "deblur_iter", fake)


@pytest.fixture
def oracle(monkeypatch):
    """``oracle(kernel)``: from now on the blind estimate returns ``kernel``."""
    return _Oracle(monkeypatch)


@pytest.fixture(scope="module")
def photo_sample():
    return blurred_photo(40, 5)


def _stack(sample, n=3):
    # Planes of different contrast: plane 1 is the most textured.
    return np.stack([sample.blurry * c + 0.1 for c in (0.4, 1.0, 0.6)[:n]]).astype(np.float32)


@pytest.fixture(scope="module")
def colour_sample():
    """Astronaut, 80 x 80, uint8, blurred by a known 9 x 9 motion kernel plus a little noise."""
    sharp = transform.resize(data.astronaut(), (80, 80), anti_aliasing=True)
    kernel = motion_kernel(9, seed=2)
    blurred = np.stack([signal.convolve(np.pad(sharp[..., c], 4, mode="reflect"), kernel,
                                        mode="valid") for c in range(3)], axis=-1)
    noisy = blurred + 0.002 * np.random.default_rng(0).standard_normal(blurred.shape)
    blurry = np.round(np.clip(noisy, 0, 1) * 255).astype(np.uint8)
    return blurry, sharp, kernel


# --------------------------------------------------------------------------- contracts


def test_a_grey_image_gives_the_documented_result_and_is_not_modified(photo_sample):
    image = (photo_sample.blurry * 4000).astype(np.uint16)
    before = image.copy()
    result = restore(image, 5, iterations=6, **TINY)
    assert image.tobytes() == before.tobytes()
    assert isinstance(result, RestoreResult) and result.mode == "shared"
    assert result.image.dtype == np.float32 and result.image.shape == image.shape
    assert result.kernel.shape == (5, 5) and result.kernels is None
    assert result.kernel.min() >= 0 and result.kernel.sum() == pytest.approx(1.0, abs=1e-6)
    assert result.estimate.done and result.estimate.step == 6
    assert result.regions == (None,) and result.reference is None
    assert result.settings["nonblind_method"] == "hyper_laplacian"
    assert result.settings["data_range"] == float(image.max()) - float(image.min())
    # On the input's scale: same mean within 2 %, not a normalised image.
    assert abs(result.image.mean() / image.mean() - 1) < 0.02


def test_shared_stack_keeps_the_shape_and_uses_one_kernel_on_the_best_plane(photo_sample):
    stack = _stack(photo_sample)
    before = stack.copy()
    result = deblur_stack(stack, 5, iterations=4, **TINY)
    assert stack.tobytes() == before.tobytes()
    assert result.image.shape == stack.shape and result.image.dtype == np.float32
    assert result.kernel.shape == (5, 5) and result.kernels is None
    assert result.reference == (1,) and result.settings["reference"] == [1]
    # Every plane was restored with that kernel: the same as deconvolving it directly.
    for plane in range(3):
        expected = deconvolve(stack[plane], result.kernel,
                              data_range=float(stack.max() - stack.min()))
        np.testing.assert_allclose(result.image[plane], expected, rtol=1e-5, atol=1e-5)


def test_per_plane_gives_a_kernel_per_plane_of_a_4d_stack(photo_sample):
    stack = np.stack([_stack(photo_sample, 2), _stack(photo_sample, 2)[::-1]])  # (2, 2, M, N)
    result = deblur_stack(stack, 5, mode="per_plane", iterations=3, **TINY)
    assert result.image.shape == stack.shape
    assert result.kernel is None and result.kernels.shape == (2, 2, 5, 5)
    np.testing.assert_allclose(result.kernels.sum(axis=(-2, -1)), 1.0, rtol=1e-5)
    assert result.regions == (None,) * 4 and result.reference is None
    assert result.estimate is None


def test_progress_counts_up_to_its_total_through_the_stages(photo_sample):
    progress = list(restore_iter(_stack(photo_sample), 5, iterations=6, yield_every=2,
                                 reference=0, **TINY))
    steps = [p.step for p in progress]
    assert steps == sorted(steps) and steps[-1] == progress[-1].total
    stages = [p.stage for p in progress]
    assert stages == ["estimate"] * 3 + ["apply"] * 3 + ["done"]
    assert [p.planes_done for p in progress if p.stage == "apply"] == [1, 2, 3]
    assert [p.snapshot.step for p in progress[:3]] == [2, 4, 6]
    assert progress[-1].result is not None and progress[-1].restored.all()
    assert progress[-1].image is progress[-1].result.image


def test_closing_within_a_plane_stops_and_keeps_the_finished_planes(photo_sample):
    stack = _stack(photo_sample)
    run = restore_iter(stack, 5, mode="per_plane", iterations=6, yield_every=2, **TINY)
    for progress in run:
        if progress.stage == "estimate" and progress.plane == 1:
            break
    run.close()
    assert progress.restored.tolist() == [True, False, False]
    assert progress.planes_done == 1
    assert not np.allclose(progress.image[0], stack[0])  # restored
    np.testing.assert_array_equal(progress.image[1:], stack[1:])  # untouched: the input
    assert progress.kernels[0].sum() == pytest.approx(1.0, abs=1e-6)
    assert not progress.kernels[1:].any()
    with pytest.raises(StopIteration):
        next(run)


def test_closing_between_planes_of_a_shared_run(photo_sample):
    stack = _stack(photo_sample)
    out = np.zeros(stack.shape, np.float32)
    run = restore_iter(stack, kernel=photo_sample.kernel, out=out)
    for progress in run:
        if progress.stage == "apply":
            break
    run.close()
    assert progress.restored.tolist() == [True, False, False]
    assert progress.image is out
    np.testing.assert_array_equal(out[1:], stack[1:])
    assert not np.allclose(out[0], stack[0])


# --------------------------------------------------------------------------- stop


def _run_until(run, stop, when):
    """Drain ``run``, setting ``stop`` once ``when(progress)``; every progress."""
    seen = []
    for progress in run:
        seen.append(progress)
        if when(progress):
            stop.set()
    return seen


def test_stop_during_a_colour_estimate_restores_with_the_kernel_so_far(oracle, colour_sample):
    blurry, sharp, kernel = colour_sample
    original = blurry.copy()
    oracle(np.pad(kernel, 3), steps=50)  # a good kernel, long before the run would end
    stop = threading.Event()
    seen = _run_until(restore_iter(blurry, 15, channel_axis=-1, stop=stop), stop,
                      lambda p: p.stage == "estimate" and p.snapshot.step == 2)
    assert [p.stage for p in seen] == ["estimate"] * 2 + ["apply"] * 3 + ["done"]
    result = seen[-1].result
    assert result.settings["stopped"] and result.settings["finished_early"]
    assert result.settings["planes_restored"] == 1 and seen[-1].restored.all()
    assert result.estimate.step == 2 and not result.estimate.done
    gain = psnr(result.image / 255, sharp, 1.0) - psnr(blurry / 255, sharp, 1.0)
    assert gain > 5, gain  # as the finished run would restore it
    np.testing.assert_array_equal(blurry, original)


def test_stop_early_in_a_real_blind_run_keeps_the_input(photo_sample):
    # After one iteration the kernel is still near its flat start: deconvolving with it
    # would blow the image out of its range, so the plane keeps the input.
    stop = threading.Event()
    seen = _run_until(restore_iter(photo_sample.blurry, 15, iterations=50, yield_every=1,
                                   stop=stop, **TINY), stop, lambda p: p.stage == "estimate")
    assert [p.stage for p in seen] == ["estimate", "apply", "done"]
    result = seen[-1].result
    assert result.settings["stopped"] and result.settings["finished_early"] is False
    assert result.settings["planes_restored"] == 0 and not seen[-1].restored.any()
    np.testing.assert_array_equal(result.image, photo_sample.blurry)
    assert result.kernel.shape == (15, 15)  # the kernel it had is still reported


def test_stop_during_a_shared_estimate_restores_the_reference_plane_only(oracle,
                                                                         photo_sample):
    stack = _stack(photo_sample)
    oracle(photo_sample.kernel, steps=20)
    stop = threading.Event()
    seen = _run_until(restore_iter(stack, 5, stop=stop), stop,
                      lambda p: p.stage == "estimate" and p.snapshot.step == 3)
    result = seen[-1].result
    assert result.reference == (1,)  # the best-textured plane
    assert seen[-1].restored.tolist() == [False, True, False]
    assert result.settings["planes_restored"] == 1 and result.settings["finished_early"]
    np.testing.assert_array_equal(result.image[[0, 2]], stack[[0, 2]])
    assert not np.allclose(result.image[1], stack[1])


def test_stop_in_a_per_plane_run_finishes_the_plane_in_hand(oracle, photo_sample):
    stack = _stack(photo_sample)
    oracle(photo_sample.kernel, steps=10)
    stop = threading.Event()
    seen = _run_until(restore_iter(stack, 5, mode="per_plane", stop=stop), stop,
                      lambda p: p.stage == "estimate" and p.plane == 1 and p.snapshot.step == 4)
    assert len(oracle.calls) == 2  # no blind run on plane 2
    result = seen[-1].result
    assert seen[-1].restored.tolist() == [True, True, False]
    assert result.kernels[1].sum() == pytest.approx(1.0, abs=1e-6)
    assert not result.kernels[2].any()
    np.testing.assert_array_equal(result.image[2], stack[2])


def test_stop_while_applying_a_known_kernel_finishes_that_plane(no_blind_run, photo_sample):
    stack = _stack(photo_sample)
    stop = threading.Event()
    seen = _run_until(restore_iter(stack, kernel=photo_sample.kernel, stop=stop), stop,
                      lambda p: p.stage == "apply")
    result = seen[-1].result
    assert seen[-1].restored.tolist() == [True, False, False]
    assert result.settings["stopped"] and "finished_early" not in result.settings
    np.testing.assert_array_equal(result.image[1:], stack[1:])


def test_a_run_not_stopped_says_nothing_of_stopping(no_blind_run, photo_sample):
    result = restore(photo_sample.blurry, kernel=photo_sample.kernel, stop=threading.Event())
    assert "stopped" not in result.settings and "finished_early" not in result.settings


def test_stop_must_be_an_event(photo_sample):
    with pytest.raises(ValueError, match="stop must be None or have an is_set"):
        restore_iter(photo_sample.blurry, kernel=photo_sample.kernel, stop=True)


def test_rgba_alpha_is_passed_through_and_the_input_is_untouched(colour_sample):
    blurry = colour_sample[0][:48, :48]
    alpha = np.random.default_rng(1).integers(0, 256, blurry.shape[:2], dtype=np.uint8)
    rgba = np.concatenate([blurry, alpha[..., None]], axis=-1)
    before = rgba.copy()
    result = deblur_colour(rgba, 5, iterations=4, **TINY)
    assert rgba.tobytes() == before.tobytes()
    assert result.image.shape == rgba.shape and result.image.dtype == np.float32
    np.testing.assert_array_equal(result.image[..., 3], alpha.astype(np.float32))
    assert result.settings["colour"] == {"channel_axis": 2, "alpha": True,
                                         "luminance_weights": "rec601"}
    assert result.settings["data_range"] == 255.0  # uint8 as deconvolve reads it


def test_colour_kernel_is_estimated_on_the_luminance_and_applied_to_each_channel(
        oracle, colour_sample):
    blurry, _, kernel = colour_sample
    oracle(kernel)
    result = deblur_colour(blurry, 9, luminance_weights="rec709")
    estimated_on = oracle.calls[0][0]
    np.testing.assert_allclose(estimated_on, luminance(blurry, weights="rec709"), rtol=1e-6)
    # After a blind estimate, with the weight the preset (fast, on the CPU) ends with.
    assert result.settings["nonblind_options"]["weight"] == FAST_FINAL_WEIGHT != 1e-4
    for c in range(3):
        np.testing.assert_allclose(result.image[..., c],
                                   deconvolve(blurry[..., c], kernel, data_range=255,
                                              weight=FAST_FINAL_WEIGHT),
                                   rtol=1e-5, atol=1e-3)
    # The channel axis may be anywhere; the result keeps the input's layout.
    first = deblur_colour(np.moveaxis(blurry, -1, 0), 9, channel_axis=0)
    np.testing.assert_allclose(np.moveaxis(first.image, 0, -1), result.image, atol=1e-4)


def test_out_receives_the_result(photo_sample):
    out = np.full(photo_sample.blurry.shape, np.nan, np.float32)
    result = restore(photo_sample.blurry, kernel=photo_sample.kernel, out=out)
    assert result.image is out and np.isfinite(out).all()


# --------------------------------------------------------------------------- regions


def test_large_image_kernel_from_an_auto_region_restores_the_whole_image(oracle):
    sample = blurred_photo(128, 7)
    oracle(sample.kernel)
    result = deblur_large(sample.blurry, 7, region_size=48)
    (region,) = result.regions
    assert isinstance(region, Region) and region.shape == (48, 48)
    assert 0 <= region.y0 <= 80 and 0 <= region.x0 <= 80
    np.testing.assert_array_equal(oracle.calls[0][0], sample.blurry[region.slices])
    assert result.image.shape == (128, 128)
    assert psnr(result.image, sample.sharp, 1.0) > psnr(sample.blurry, sample.sharp, 1.0) + 3
    assert result.settings["regions"] == [region.as_tuple()]


def test_progress_tells_where_the_blind_run_fits(photo_sample):
    stack = np.stack([np.pad(_stack(photo_sample)[1], ((0, 24), (0, 0)), mode="reflect")] * 2)
    progress = list(restore_iter(stack, 5, region="auto", region_size=32, iterations=4,
                                 yield_every=2, mode="per_plane", **TINY))
    estimating = [p for p in progress if p.stage == "estimate"]
    regions = progress[-1].result.regions
    assert len(regions) == 2 and all(r.shape == (32, 32) for r in regions)
    assert [p.region for p in estimating] == [regions[0]] * 2 + [regions[1]] * 2
    assert estimating[0].snapshot.image.shape == (32, 32)
    assert all(p.region is None for p in progress if p.stage != "estimate")


def test_a_given_region_is_the_crop_the_kernel_is_estimated_on(oracle, photo_sample):
    oracle(photo_sample.kernel)
    restore(photo_sample.blurry, 5, region=(4, 8, 20, 24))
    np.testing.assert_array_equal(oracle.calls[0][0], photo_sample.blurry[4:24, 8:32])
    restore(photo_sample.blurry, 5, region="auto", region_size=64)  # larger than the image
    assert oracle.calls[1][0].shape == photo_sample.blurry.shape


# --------------------------------------------------------------------------- known kernels


@pytest.fixture
def no_blind_run(monkeypatch):
    """Fail the test if a blind estimate is started."""
    def refuse(*args, **kwargs):
        raise AssertionError("a blind run was started")

    monkeypatch.setattr(restore_module, "deblur_iter", refuse)


def test_a_known_kernel_restores_a_grey_image_without_a_blind_run(no_blind_run):
    sample = blurred_photo(64, 7)
    blurry = sample.blurry.copy()
    given = sample.kernel.astype(np.float64) * 5  # not normalised: restore divides by the sum
    blurry_before, given_before = blurry.copy(), given.copy()
    result = restore(blurry, kernel=given)
    # Neither input was modified.
    assert blurry.tobytes() == blurry_before.tobytes()
    assert given.tobytes() == given_before.tobytes()
    before = psnr(blurry, sample.sharp, 1.0)
    after = psnr(result.image, sample.sharp, 1.0)
    assert after > before + 8, (before, after)  # measured: 32.49 -> 45.29 dB
    assert result.image.shape == blurry.shape and result.image.dtype == np.float32
    assert result.kernel.dtype == np.float32 and result.kernel.shape == (7, 7)
    np.testing.assert_allclose(result.kernel, sample.kernel / sample.kernel.sum(), atol=1e-7)
    assert result.kernel.sum() == pytest.approx(1.0, abs=1e-6)
    assert result.kernels is None and result.estimate is None
    assert result.regions == () and result.reference is None
    assert result.settings["kernel_source"] == "given"
    assert result.settings["regions"] == [] and result.settings["clean_kernel"] is False
    # Exactly the non-blind step with that kernel; kernel_size may be given if it agrees.
    np.testing.assert_allclose(result.image, deconvolve(blurry, sample.kernel), atol=1e-5)
    np.testing.assert_array_equal(restore(blurry, (7, 7), kernel=given).image, result.image)


def test_a_known_kernel_progress_is_one_step_a_plane(no_blind_run, photo_sample):
    progress = list(restore_iter(_stack(photo_sample), kernel=photo_sample.kernel))
    assert [p.stage for p in progress] == ["apply"] * 3 + ["done"]
    assert [p.step for p in progress] == [1, 2, 3, 3]
    assert {p.total for p in progress} == {3}
    assert [p.planes_done for p in progress] == [1, 2, 3, 3]
    assert [p.plane for p in progress[:3]] == [0, 1, 2]
    assert all(p.snapshot is None and p.region is None for p in progress)
    assert progress[-1].restored.all() and progress[-1].result.kernel.shape == (5, 5)
    # Colour: reported after each channel, still one step a plane.
    colour = np.stack([_stack(photo_sample, 2)] * 3, axis=-1)  # (2, 40, 40, 3)
    progress = list(restore_iter(colour, kernel=photo_sample.kernel, channel_axis=-1))
    assert [p.stage for p in progress] == ["apply"] * 6 + ["done"]
    assert [p.step for p in progress] == [0, 0, 1, 1, 1, 2, 2]
    assert {p.total for p in progress} == {2}


def test_a_known_kernel_on_a_stack_restores_every_plane_alike(no_blind_run, photo_sample):
    stack = np.stack([_stack(photo_sample, 2), _stack(photo_sample, 2)[::-1]])  # (2, 2, M, N)
    before = stack.copy()
    result = deblur_stack(stack, kernel=photo_sample.kernel)
    assert stack.tobytes() == before.tobytes()
    assert result.image.shape == stack.shape and result.image.dtype == np.float32
    assert result.kernel.shape == (5, 5) and result.kernels is None
    assert result.reference is None
    span = float(stack.max()) - float(stack.min())
    assert result.settings["data_range"] == span
    for index in np.ndindex(2, 2):
        np.testing.assert_allclose(result.image[index],
                                   deconvolve(stack[index], photo_sample.kernel,
                                              data_range=span), rtol=1e-5, atol=1e-5)
    # deblur_large's automatic region does not apply: nothing is estimated.
    large = deblur_large(stack[0, 1], kernel=photo_sample.kernel,
                         nonblind_options={"data_range": span})
    assert large.regions == ()
    np.testing.assert_allclose(large.image, result.image[0, 1], rtol=1e-5, atol=1e-5)


def test_a_known_kernel_restores_rgba_and_keeps_the_alpha_and_the_layout(no_blind_run,
                                                                          colour_sample):
    blurry, sharp, kernel = colour_sample
    alpha = np.random.default_rng(1).integers(0, 256, blurry.shape[:2], dtype=np.uint8)
    rgba = np.concatenate([blurry, alpha[..., None]], axis=-1)
    before = rgba.copy()
    result = deblur_colour(rgba, kernel=kernel)
    assert rgba.tobytes() == before.tobytes()
    assert result.image.shape == rgba.shape and result.image.dtype == np.float32
    np.testing.assert_array_equal(result.image[..., 3], alpha.astype(np.float32))
    for c in range(3):
        np.testing.assert_allclose(result.image[..., c],
                                   deconvolve(blurry[..., c], kernel, data_range=255),
                                   rtol=1e-5, atol=1e-3)
    restored = result.image[..., :3] / 255
    gain = psnr(restored, sharp, 1.0) - psnr(blurry / 255, sharp, 1.0)
    assert gain > 8, gain  # measured: 26.76 -> 37.56 dB
    np.testing.assert_allclose(_channel_means(result.image) / _channel_means(blurry), 1.0,
                               atol=0.005)
    # Channels first, and a stack of colour images.
    first = deblur_colour(np.moveaxis(rgba, -1, 0), kernel=kernel, channel_axis=0)
    np.testing.assert_allclose(np.moveaxis(first.image, 0, -1), result.image, atol=1e-3)
    pair = deblur_colour(np.stack([rgba, rgba[::-1]]), kernel=kernel)
    assert pair.image.shape == (2, *rgba.shape)
    np.testing.assert_allclose(pair.image[0], result.image, atol=1e-3)
    np.testing.assert_array_equal(pair.image[1, ..., 3], alpha[::-1].astype(np.float32))


def test_a_known_psf_restores_uint16_fluorescence_and_honours_noise_aware(no_blind_run,
                                                                          fluorescence):
    image, sample = fluorescence
    before = image.copy()
    span = float(sample.sharp.max() - sample.sharp.min())
    plain = restore(image, kernel=sample.kernel)
    noisy = restore(image, kernel=sample.kernel, noise_aware=0.01)
    assert image.tobytes() == before.tobytes()
    blurry_psnr = psnr(image, sample.sharp, span)
    assert psnr(plain.image, sample.sharp, span) > blurry_psnr + 1  # measured: 22.84 -> 24.59
    assert psnr(noisy.image, sample.sharp, span) > blurry_psnr + 1.5  # measured: 25.05 dB
    assert abs(plain.image.mean() / image.mean() - 1) < 0.01  # photon counts, not [0, 1]
    # noise_aware raises the non-blind prior's weight, as after a blind estimate.
    assert plain.settings["nonblind_options"] == {}
    assert noisy.settings["nonblind_options"] == {"weight": NOISE_AWARE_NONBLIND_WEIGHT}
    np.testing.assert_allclose(
        noisy.image, deconvolve(image, sample.kernel, weight=NOISE_AWARE_NONBLIND_WEIGHT),
        rtol=1e-5, atol=1e-2)
    heavier = restore(image, kernel=sample.kernel, noise_aware=0.01,
                      nonblind_options={"weight": 1e-3})
    assert heavier.settings["nonblind_options"] == {"weight": 1e-3}


def test_a_known_kernel_run_that_would_not_fit_is_refused(monkeypatch, photo_sample):
    import napari_dip_deblur.memory as memory

    monkeypatch.delenv("DIP_DEBLUR_SKIP_MEMORY_CHECK", raising=False)
    monkeypatch.setattr(memory, "available_memory", lambda: 1024)
    with pytest.raises(memory.InsufficientMemoryError,
                       match=r"not enough RAM.*blind part 0\.00 GB.*restore a crop"):
        restore_iter(photo_sample.blurry, kernel=photo_sample.kernel)  # non-blind step only


@pytest.mark.parametrize(
    ("image", "kernel", "kwargs", "message"),
    [
        ("grey", np.ones((5, 5, 3)), {}, r"kernel must be a 2-D array \(kh, kw\), got shape"),
        ("grey", np.ones(5), {}, "kernel must be a 2-D array"),
        ("grey", np.ones((4, 5)), {}, "kernel must have odd sides"),
        ("grey", np.pad([[-0.1]], 2, constant_values=0.3), {}, "kernel has negative values"),
        ("grey", np.zeros((5, 5)), {}, "kernel must sum to a positive value"),
        ("grey", np.full((3, 3), np.nan), {}, "kernel contains NaN or infinite"),
        ("grey", np.full((3, 3), np.inf), {}, "kernel contains NaN or infinite"),
        ("grey", np.ones((41, 5)), {}, r"kernel \(41x5\) is larger than the image planes "
                                       r"\(40x40\)"),
        ("rgb", np.ones((5, 41)), {"channel_axis": -1}, "larger than the image planes"),
        ("grey", np.ones((3, 3), bool), {}, "kernel must hold real numbers"),
        ("grey", np.array([["a"]]), {}, "kernel must hold real numbers"),
        ("grey", np.zeros((0, 3)), {}, "kernel is empty"),
        ("grey", "5x5", {"kernel_size": 9}, "kernel_size 9x9 does not match the given "
                                            "kernel's shape 5x5"),
        ("grey", "5x5", {"kernel_size": (5, 7)}, "does not match"),
        ("stack", "5x5", {"mode": "per_plane"}, "mode='per_plane': only for a blind estimate"),
        ("stack", "5x5", {"reference": 0}, "reference: only for a blind estimate"),
        ("grey", "5x5", {"region": (0, 0, 20, 20)}, "region: only for a blind estimate"),
        ("grey", "5x5", {"region": "auto"}, "region: only"),
        ("grey", "5x5", {"iterations": 10, "channels": 8}, "iterations, channels: only"),
        ("grey", "5x5", {"noise_aware": -1}, "noise_aware must be None or a TV weight"),
        ("grey", None, {}, "give kernel_size"),
    ],
)
def test_a_bad_known_kernel_is_refused_with_a_specific_error(oracle, photo_sample, image,
                                                             kernel, kwargs, message):
    oracle(photo_sample.kernel)
    grey = photo_sample.blurry
    images = {"grey": grey, "rgb": np.stack([grey] * 3, axis=-1), "stack": _stack(photo_sample)}
    if isinstance(kernel, str):
        kernel = photo_sample.kernel
    with pytest.raises(ValueError, match=message):
        restore_iter(images[image], kernel=kernel, **kwargs)
    assert oracle.calls == []  # nothing was estimated


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("image", "kwargs", "message"),
    [
        ("grey", {"mode": "every"}, "mode must be one of"),
        ("grey", {"region": (30, 30, 16, 16)}, "does not lie inside"),
        ("grey", {"region": (0, 0, 8, 8)}, "at least 16x16"),
        ("grey", {"region": "best"}, "region must be None, 'auto'"),
        ("grey", {"region_size": 8}, "region_size"),
        ("grey", {"method": "richardson_lucy"}, "method must be one of"),
        ("grey", {"nonblind_options": {"weight": -1}}, "weight"),
        ("grey", {"nonblind_options": {"edge": "wrap"}}, "edge"),
        ("grey", {"nonblind_options": {"iterations": 0}}, "iterations"),
        ("grey", {"nonblind_options": {"alpha": 3}}, "alpha"),
        ("grey", {"nonblind_options": {"clip": True}}, "unknown key"),
        ("grey", {"luminance_weights": "srgb"}, "luminance_weights"),
        ("grey", {"alpha": True}, "alpha applies to colour images"),
        ("grey", {"reference": 2}, "single plane"),
        ("grey", {"yield_every": 0}, "yield_every"),
        ("grey", {"out": np.zeros((40, 40))}, "out must be a writeable float32"),
        ("grey", {"kernel_size": 4}, "odd"),
        ("grey", {"clean": "yes"}, "clean must be True, False or 'auto'"),
        ("nan", {}, "NaN"),
        ("rgb", {"channel_axis": -1, "alpha": True}, "with alpha=True"),
        ("rgb5", {"channel_axis": -1}, "holds 5 channels"),
        ("rgb", {}, "pass channel_axis=-1"),
        ("stack", {"reference": 3}, "out of range"),
        ("stack", {"reference": (0, 1)}, "index into the stack"),
        ("stack", {"mode": "per_plane", "reference": 0}, "mode='shared' only"),
        ("flat_plane", {"mode": "per_plane"}, r"plane \(1,\) is constant"),
        ("text", {}, "real numbers"),
        ("empty", {}, "empty"),
    ],
)
def test_bad_input_is_refused_before_any_work(oracle, photo_sample, image, kwargs, message):
    oracle(photo_sample.kernel)
    grey = photo_sample.blurry
    images = {
        "grey": grey,
        "nan": np.where(np.eye(40) > 0, np.nan, grey),
        "rgb": np.stack([grey] * 3, axis=-1),
        "rgb5": np.stack([grey] * 5, axis=-1),
        "stack": _stack(photo_sample),
        "flat_plane": np.stack([grey, np.full_like(grey, 0.5), grey]),
        "text": np.array([["a"] * 20] * 20),
        "empty": np.zeros((0, 40)),
    }
    kwargs = {"kernel_size": 5, **kwargs}
    with pytest.raises(ValueError, match=message):
        restore_iter(images[image], **kwargs)
    assert oracle.calls == []  # nothing was estimated


def test_out_may_not_alias_the_input_and_restore_has_no_yield_every(photo_sample):
    image = photo_sample.blurry.copy()
    with pytest.raises(ValueError, match="must not share memory"):
        restore_iter(image, 5, out=image, **TINY)
    with pytest.raises(ValueError, match="yield_every is for restore_iter"):
        restore(image, 5, yield_every=3)


# --------------------------------------------------------------------------- held-out checks


@pytest.fixture(scope="module")
def fluorescence():
    """Synthetic fluorescence, 64 x 64: Gaussian PSF (sigma 1.5), Poisson noise, uint16."""
    sample = blurred_fluorescence(64, psf_size=9, psf_sigma=1.5, photons=2000, seed=3)
    return sample.blurry.astype(np.uint16), sample


def test_fluorescence_uint16_is_restored_on_its_scale_and_sharper(oracle, fluorescence):
    image, sample = fluorescence
    # The true PSF as a blind estimate returns it: in a larger array, off-centre, on a floor.
    estimate = np.roll(np.pad(sample.kernel, 2), (1, -2), axis=(0, 1)) + 2e-4
    oracle(estimate)
    before = image.copy()
    result = restore(image, 13)
    assert image.tobytes() == before.tobytes()
    assert oracle.calls[0][0].shape == image.shape
    span = float(sample.sharp.max() - sample.sharp.min())
    gain = psnr(result.image, sample.sharp, span) - psnr(image, sample.sharp, span)
    assert gain > 1.0, gain  # measured: 22.84 -> 24.55 dB
    assert abs(result.image.mean() / image.mean() - 1) < 0.01
    assert image.min() - 0.2 * span < result.image.min() < result.image.max() \
        < image.max() + 0.5 * span


def test_fluorescence_uint16_blind_run_returns_photon_counts(fluorescence):
    image, _ = fluorescence
    result = restore(image, 9, iterations=20, noise_aware=0.01, **TINY)
    assert result.image.dtype == np.float32 and result.image.shape == image.shape
    assert abs(result.image.mean() / image.mean() - 1) < 0.03
    assert result.image.max() > 0.5 * image.max()  # counts, not a [0, 1] image


def _channel_means(image):
    return np.asarray(image, np.float64).reshape(-1, image.shape[-1])[:, :3].mean(axis=0)


def test_colour_photo_with_a_known_motion_blur_is_restored_without_cast_or_shift(
        oracle, colour_sample):
    blurry, sharp, kernel = colour_sample
    # As a blind run returns it: padded to 15 x 15, off-centre, on a noise floor.
    oracle(np.roll(np.pad(kernel, 3), (-2, 3), axis=(0, 1)) + 1e-4)
    result = deblur_colour(blurry, 15)
    restored = result.image / 255
    gain = psnr(restored, sharp, 1.0) - psnr(blurry / 255, sharp, 1.0)
    assert gain > 5, gain  # measured: 26.8 -> 37.5 dB
    for c in range(3):  # every channel improves, not just their average
        assert psnr(restored[..., c], sharp[..., c], 1.0) > psnr(
            blurry[..., c] / 255, sharp[..., c], 1.0) + 5
    # No colour cast: each channel keeps its mean.
    np.testing.assert_allclose(_channel_means(result.image) / _channel_means(blurry), 1.0,
                               atol=0.005)
    # No shift: the restored image matches the sharp one best where it is, not one pixel off.
    inner = (slice(8, -8), slice(8, -8))
    aligned = psnr(restored[inner], sharp[inner], 1.0)
    for shift in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        moved = np.roll(restored, shift, axis=(0, 1))
        assert aligned > psnr(moved[inner], sharp[inner], 1.0) + 5


def test_an_oversized_noisy_kernel_estimate_does_not_ruin_the_result(oracle, colour_sample):
    blurry, sharp, kernel = colour_sample
    exact = psnr(deblur_colour(blurry, kernel=kernel).image / 255, sharp, 1.0)
    generous = np.pad(kernel, 8) + 3e-4  # 25 x 25: the floor holds 16 % of the mass
    oracle(generous)
    cleaned = psnr(deblur_colour(blurry, 25).image / 255, sharp, 1.0)
    raw = psnr(deblur_colour(blurry, 25, clean=False).image / 255, sharp, 1.0)
    assert cleaned > exact - 0.5, (cleaned, exact)  # measured: 37.47 vs 37.56 dB
    assert raw < cleaned - 3, (raw, cleaned)  # the clean-up is what saves it (27.1 dB)


def test_colour_photo_blind_run_keeps_the_colour_balance(colour_sample):
    blurry = colour_sample[0]
    result = deblur_colour(blurry, 9, iterations=20, **TINY)
    assert result.image.shape == blurry.shape and result.kernel.shape == (9, 9)
    np.testing.assert_allclose(_channel_means(result.image) / _channel_means(blurry), 1.0,
                               atol=0.02)


def test_fast_on_a_region_uses_a_narrower_generator_for_longer_unless_told_otherwise():
    image = blurred_photo(64, 5).blurry
    small = {"levels": 3, "device": "cpu", "yield_every": 1}

    def first_estimate(**kwargs):
        run = restore_iter(image, 5, region=(8, 8, 40, 40), **small, **kwargs)
        progress = next(run)
        run.close()
        return progress.snapshot

    tuned = first_estimate(preset="fast")
    assert (tuned.total, tuned.settings["channels"]) == (600, 32)
    # Given iterations or channels, or another preset, or no region: the settings as given.
    # (fast's two starts count both: 2 x 7)
    assert first_estimate(preset="fast", iterations=7).total == 2 * 7
    assert first_estimate(preset="fast", channels=16).settings["channels"] == 16
    fast = PRESETS["fast"].for_kernel((5, 5))  # as it runs for this kernel
    assert first_estimate(preset="fast", channels=16).total == 2 * fast.iterations
    whole = next(restore_iter(image, 5, preset="fast", **small))
    assert (whole.snapshot.total, whole.snapshot.settings["channels"]) == (2 * fast.iterations,
                                                                          fast.channels)
    assert fast.starts == 2 and fast.start_trial == 1.0
    assert (fast.iterations, fast.channels) != (600, 32)  # so the region's settings differ
