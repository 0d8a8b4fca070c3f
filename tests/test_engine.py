"""Engine pieces against independent references (scipy, scikit-image)."""

import copy

import numpy as np
import pytest
import torch
from scipy import signal
from skimage.metrics import structural_similarity

from napari_dip_deblur.engine.blur import blur_direct, blur_fft, choose_blur_method
from napari_dip_deblur.engine.losses import (
    LOSS_TERMS,
    kernel_energy,
    ssim,
    ssim_map,
    total_variation,
)
from napari_dip_deblur.engine.nets import ImageGenerator, KernelGenerator
from napari_dip_deblur.engine.schedule import Phase, lr_factor, phase_index, phase_starts


@pytest.mark.parametrize("kernel_shape", [(3, 3), (5, 9), (13, 13), (27, 27)])
def test_direct_and_fft_blur_equal_scipy_valid_convolution(kernel_shape):
    rng = np.random.default_rng(1)
    image = rng.random((40, 37))
    kernel = rng.random(kernel_shape)
    kernel /= kernel.sum()
    expected = signal.convolve(image, kernel, mode="valid")
    x = torch.from_numpy(image).float()[None, None]
    k = torch.from_numpy(kernel).float()
    direct = blur_direct(x, k)[0, 0].numpy()
    fft = blur_fft(x, k)[0, 0].numpy()
    assert direct.shape == expected.shape == (40 - kernel_shape[0] + 1, 37 - kernel_shape[1] + 1)
    np.testing.assert_allclose(direct, expected, atol=1e-5)
    np.testing.assert_allclose(fft, expected, atol=1e-5)
    np.testing.assert_allclose(fft, direct, atol=1e-5)


def test_blur_is_a_convolution_not_a_correlation():
    # An off-centre impulse kernel shifts the image the way convolution does.
    image = torch.zeros(1, 1, 9, 9)
    image[0, 0, 4, 4] = 1
    kernel = torch.zeros(3, 3)
    kernel[0, 2] = 1
    expected = signal.convolve(image[0, 0].numpy(), kernel.numpy(), mode="valid")
    assert np.array_equal(blur_direct(image, kernel)[0, 0].numpy(), expected)
    assert expected[2, 4] == 1 and expected.sum() == 1


def test_blur_gradients_agree_between_methods():
    rng = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, 30, 30, generator=rng, dtype=torch.float64, requires_grad=True)
    k = torch.rand(7, 7, generator=rng, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(1, 1, 24, 24, generator=rng, dtype=torch.float64)
    grads = []
    for method in (blur_direct, blur_fft):
        x.grad = k.grad = None
        (method(x, k) * weights).sum().backward()
        grads.append((x.grad.clone(), k.grad.clone()))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])


def test_auto_blur_method_uses_fft_for_large_kernels_on_cpu():
    assert choose_blur_method((27, 27), torch.device("cpu")) == "fft"
    assert choose_blur_method((3, 3), torch.device("cpu")) == "direct"


def test_ssim_matches_skimage_gaussian_ssim():
    rng = np.random.default_rng(2)
    a = rng.random((48, 52))
    b = np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1)
    expected = structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=1.0)
    got = ssim(torch.from_numpy(a)[None, None], torch.from_numpy(b)[None, None], data_range=1.0)
    assert abs(float(got) - expected) < 1e-6
    assert ssim_map(torch.from_numpy(a)[None, None], torch.from_numpy(b)[None, None]).shape == (
        1, 1, 38, 42)


def test_ssim_of_identical_images_is_one_and_gradcheck_passes():
    x = torch.rand(1, 1, 16, 16, dtype=torch.float64)
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-12)
    y = torch.rand(1, 1, 13, 13, dtype=torch.float64, requires_grad=True)
    z = torch.rand(1, 1, 13, 13, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: ssim(t, z), (y,))


def test_total_variation_and_kernel_energy_by_hand():
    image = torch.tensor([[0.0, 1.0], [0.0, 3.0]])[None, None]
    # |dy| mean = (0 + 2) / 2 = 1; |dx| mean = (1 + 3) / 2 = 2
    assert float(total_variation(image)) == pytest.approx(3.0)
    delta = torch.zeros(5, 5)
    delta[2, 2] = 1
    assert float(kernel_energy(delta)) == 1.0
    assert float(kernel_energy(torch.full((5, 5), 1 / 25))) == pytest.approx(1 / 25)
    assert set(LOSS_TERMS) == {"mse", "mae", "ssim", "tv", "kernel_energy"}


@pytest.mark.parametrize("size", [(41, 41), (47, 38), (64, 64)])
def test_image_generator_keeps_odd_and_even_sizes_and_lies_in_unit_range(size):
    net = ImageGenerator(in_channels=8, levels=4, channels=8, skip_channels=4,
                         non_local_levels=(2, 3))
    out = net(torch.rand(1, 8, *size) * 0.1)
    assert out.shape == (1, 1, *size)
    assert 0 <= float(out.detach().min()) and float(out.detach().max()) <= 1


def test_faithful_image_generator_has_selfdeblur_parameter_count():
    count = sum(p.numel() for p in ImageGenerator().parameters())
    assert 2.30e6 < count < 2.40e6  # SelfDeblur: about 2.37 M


@pytest.mark.parametrize("shape", [(3, 3), (11, 11), (7, 13)])
def test_kernel_generator_gives_nonnegative_kernels_that_sum_to_one(shape):
    kernel = KernelGenerator(shape)(torch.rand(200) * 0.1).detach()
    assert kernel.shape == shape
    assert float(kernel.min()) >= 0
    assert float(kernel.sum()) == pytest.approx(1.0, abs=1e-6)


def test_kernel_generator_can_start_from_a_centred_gaussian():
    z = torch.rand(200, generator=torch.Generator().manual_seed(1)) * 0.1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        flat = KernelGenerator((15, 9))(z).detach()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        centred = KernelGenerator((15, 9), start_sigma=0.2)(z).detach()
    assert float(flat.max() / flat.min()) < 1.2  # SelfDeblur's start: nearly flat
    assert float(centred.sum()) == pytest.approx(1.0, abs=1e-6)
    # Centred, and the corners at exp(-((7/3)^2 + (4/1.8)^2) / 2) ~ 0.0056 of the centre.
    rows, cols = torch.meshgrid(torch.arange(15.0), torch.arange(9.0), indexing="ij")
    assert float((centred * rows).sum()) == pytest.approx(7.0, abs=0.1)
    assert float((centred * cols).sum()) == pytest.approx(4.0, abs=0.1)
    assert 0.003 < float(centred[0, 0] / centred[7, 4]) < 0.009
    # Only the starting point moves: the same weights, the last bias offset by the log of
    # the Gaussian (the softmax's normaliser aside).
    offset = torch.log(centred / flat)
    y = (torch.arange(15) - 7) / (0.2 * 15)
    x = (torch.arange(9) - 4) / (0.2 * 9)
    expected = -(y[:, None] ** 2 + x[None, :] ** 2) / 2
    assert torch.allclose(offset - offset[7, 4], expected, atol=1e-4)
    # An initial kernel replaces the centred start.
    given = torch.rand(15, 9, generator=torch.Generator().manual_seed(2)) + 0.1
    net = KernelGenerator((15, 9), start_sigma=0.2)
    net.start_from(given)
    assert torch.allclose(net(z).detach(), given / given.sum(), atol=1e-6)


def test_schedule_phases_and_learning_rate_steps_follow_selfdeblur():
    phases = (Phase(0.0, {"mse": 1.0}), Phase(0.2, {"ssim": 1.0}))
    starts = phase_starts(phases, 5000)
    assert starts == [0, 1000]
    assert phase_index(starts, 999) == 0 and phase_index(starts, 1000) == 1
    milestones = (0.4, 0.6, 0.8)
    assert lr_factor(1999, 5000, milestones, 0.5) == 1.0
    assert lr_factor(2000, 5000, milestones, 0.5) == 0.5
    assert lr_factor(4999, 5000, milestones, 0.5) == 0.125


def test_precision_auto_resolves_per_device():
    from napari_dip_deblur.engine.solver import resolve_precision

    assert resolve_precision("float32", torch.device("cpu")) == "float32"
    assert resolve_precision("bfloat16", torch.device("cpu")) == "bfloat16"
    assert resolve_precision("auto", torch.device("cuda")) == "float32"
    assert resolve_precision("auto", torch.device("cpu")) in ("float32", "bfloat16")


def test_memory_format_auto_resolves_per_device():
    from napari_dip_deblur.engine.solver import resolve_memory_format

    assert resolve_memory_format("auto", torch.device("cpu")) == "channels_last"
    assert resolve_memory_format("auto", torch.device("cuda")) == "contiguous"
    assert resolve_memory_format("contiguous", torch.device("cpu")) == "contiguous"
    with pytest.raises(ValueError, match="memory_format must be"):
        resolve_memory_format("nhwc", torch.device("cpu"))


@pytest.mark.parametrize("non_local_levels", [(), (1, 2)])
def test_channels_last_generator_computes_the_same_function(non_local_levels):
    # The layout is a speed choice only: same weights and input give the same image and
    # the same gradients (up to float32 summation order).
    torch.manual_seed(0)
    net = ImageGenerator(in_channels=4, out_channels=3, levels=3, channels=12,
                         skip_channels=4, non_local_levels=non_local_levels)
    twin = copy.deepcopy(net).to(memory_format=torch.channels_last)
    z = torch.rand(1, 4, 37, 41)
    outputs, grads = [], []
    for model in (net, twin):
        out = model(z)
        (out * torch.linspace(0, 1, out.numel()).reshape(out.shape)).sum().backward()
        outputs.append(out.detach())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert twin.head.weight.is_contiguous(memory_format=torch.channels_last)
    assert outputs[0].shape == (1, 3, 37, 41)
    torch.testing.assert_close(outputs[1], outputs[0], atol=1e-5, rtol=1e-4)
    # Element-wise, a few near-zero gradients differ in relative terms; as a whole they agree.
    assert torch.linalg.vector_norm(grads[1] - grads[0]) < 1e-5 * torch.linalg.vector_norm(grads[0])


def test_phase_kernel_lr_scale_round_trips_and_is_validated():
    from napari_dip_deblur.engine.schedule import validate_phases

    phase = Phase(0.0, {"mae": 1.0}, kernel_lr_scale=3.0)
    assert Phase.from_dict(phase.to_dict()) == phase
    assert phase != Phase(0.0, {"mae": 1.0})
    assert "kernel_lr_scale" not in Phase(0.0, {"mae": 1.0}).to_dict()
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="kernel_lr_scale must be a finite number > 0"):
            validate_phases((Phase(0.0, {"mae": 1.0}, kernel_lr_scale=bad),))


def test_phase_kernel_lr_scale_changes_only_the_kernel_step():
    # A tiny scale freezes the kernel (it stays the generator's start) but not the image.
    from napari_dip_deblur import deblur
    from napari_dip_deblur.samples import blurred_photo

    tiny = {"channels": 8, "levels": 3, "skip_channels": 4, "non_local_levels": (),
            "final_deconvolution": "none", "iterations": 4, "seed": 0, "starts": 1}
    blurry = blurred_photo(32, 5).blurry
    frozen = deblur(blurry, 5, phases=[{"start": 0.0, "terms": {"mae": 1.0},
                                        "kernel_lr_scale": 1e-9}], **tiny)
    moving = deblur(blurry, 5, phases=[{"start": 0.0, "terms": {"mae": 1.0}}], **tiny)
    start = deblur(blurry, 5, phases=[{"start": 0.0, "terms": {"mae": 1.0}}],
                   **{**tiny, "iterations": 1, "kernel_lr": 1e-12})
    assert frozen.settings["phases"][0]["kernel_lr_scale"] == 1e-9
    np.testing.assert_allclose(frozen.kernel, start.kernel, atol=1e-7)
    assert np.abs(moving.kernel - start.kernel).max() > 1e-5
    assert np.abs(frozen.generator_image - start.generator_image).max() > 1e-3
