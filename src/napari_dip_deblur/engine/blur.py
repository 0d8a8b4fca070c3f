"""The forward model: a 'valid' 2-D convolution of the generated image by the kernel.

All functions here compute a true convolution (the kernel is flipped), so the kernel they
take is the one shown to users: ``blur(x, k)`` equals ``scipy.signal.convolve(x, k, 'valid')``
for each channel. The kernel's centre is irrelevant for 'valid' output: an image of size
``(H + kh - 1, W + kw - 1)`` gives a blurred image of size ``(H, W)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["BLUR_METHODS", "blur", "blur_direct", "blur_fft", "choose_blur_method"]

BLUR_METHODS = ("auto", "direct", "fft")

# Kernel area from which the FFT is faster on the CPU (benchmarks/speed.py measures it):
# the backward pass of a single-channel direct convolution is slow there.
_FFT_MIN_AREA_CPU = 7 * 7
# On CUDA, cuDNN's direct convolution wins up to large kernels.
_FFT_MIN_AREA_CUDA = 41 * 41


def blur_direct(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Valid convolution by ``conv2d`` with the flipped kernel.

    Parameters
    ----------
    image : (B, C, H + kh - 1, W + kw - 1) tensor
    kernel : (kh, kw) tensor

    Returns
    -------
    (B, C, H, W) tensor
    """
    channels = image.shape[1]
    weight = kernel.flip(-2, -1).to(image.dtype).expand(channels, 1, *kernel.shape)
    return F.conv2d(image, weight, groups=channels)


def blur_fft(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Valid convolution through the FFT (circular convolution, wrapped part cropped away).

    Computed in float32 at least (FFTs have no bfloat16 kernels); same shapes as
    :func:`blur_direct`.
    """
    kh, kw = kernel.shape
    h, w = image.shape[-2:]
    work = torch.promote_types(image.dtype, torch.float32)
    spectrum = torch.fft.rfft2(image.to(work)) * torch.fft.rfft2(kernel.to(work), s=(h, w))
    full = torch.fft.irfft2(spectrum, s=(h, w))
    # Entries from index k-1 on involve no wrap-around: they are the 'valid' convolution.
    return full[..., kh - 1 :, kw - 1 :]


def choose_blur_method(kernel_shape: tuple[int, int], device: torch.device) -> str:
    """Pick 'direct' or 'fft', whichever is faster for this kernel size on this device."""
    area = kernel_shape[0] * kernel_shape[1]
    threshold = _FFT_MIN_AREA_CUDA if device.type == "cuda" else _FFT_MIN_AREA_CPU
    return "fft" if area >= threshold else "direct"


def blur(image: torch.Tensor, kernel: torch.Tensor, method: str = "direct") -> torch.Tensor:
    """Valid convolution of ``image`` by ``kernel`` with the named method ('direct' or 'fft')."""
    if method == "direct":
        return blur_direct(image, kernel)
    if method == "fft":
        return blur_fft(image, kernel)
    raise ValueError(f"blur method must be 'direct' or 'fft', got {method!r}")
