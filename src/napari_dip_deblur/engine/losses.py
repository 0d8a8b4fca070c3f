"""Loss terms of the data fit and the priors, and the table that names them.

Every term takes a :class:`LossInputs` and returns a scalar tensor, so a schedule can name
terms as plain strings: ``{"mae": 1.0, "tv": 0.01}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "LOSS_TERMS",
    "LossInputs",
    "gaussian_window",
    "kernel_energy",
    "mae",
    "mse",
    "ssim",
    "ssim_loss",
    "ssim_map",
    "total_variation",
]

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


@dataclass(frozen=True)
class LossInputs:
    """What a loss term may look at in one iteration.

    Attributes
    ----------
    blurred : (1, C, H, W) tensor
        The generated image blurred by the generated kernel.
    target : (1, C, H, W) tensor
        The observed blurry image, normalised.
    image : (1, C, H + kh - 1, W + kw - 1) tensor
        The generated (sharp) image.
    kernel : (kh, kw) tensor
        The generated kernel.
    """

    blurred: torch.Tensor
    target: torch.Tensor
    image: torch.Tensor
    kernel: torch.Tensor


def mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error."""
    return F.mse_loss(prediction, target)


def mae(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error (robust to outliers such as saturated pixels)."""
    return F.l1_loss(prediction, target)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA,
                    *, dtype: torch.dtype = torch.float32,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """The normalised 1-D Gaussian of ``size`` taps (the 2-D window is its outer product)."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _separable_filter(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """'Valid' filtering of every channel of ``x`` (B, C, H, W) by ``window`` along H then W.

    Two grouped 1-D convolutions: cheaper than one 2-D conv, forward and backward.
    """
    c = x.shape[1]
    n = window.numel()
    x = F.conv2d(x, window.reshape(1, 1, n, 1).expand(c, 1, n, 1), groups=c)
    return F.conv2d(x, window.reshape(1, 1, 1, n).expand(c, 1, 1, n), groups=c)


def ssim_map(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0,
             window_size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """The SSIM map of Wang et al. (2004) with a Gaussian window, 'valid' positions only.

    Parameters
    ----------
    x, y : (B, C, H, W) tensors
        Images to compare; ``H, W >= window_size``.
    data_range : float
        Dynamic range of the images (1 for images in [0, 1]); there is no default guess.
    window_size, sigma : int, float
        The Gaussian window (11, 1.5 as in the paper).

    Returns
    -------
    (B, C, H - window_size + 1, W - window_size + 1) tensor

    Notes
    -----
    Population (not sample) covariances, ``C1 = (0.01 L)^2`` and ``C2 = (0.03 L)^2``: the mean
    of this map equals ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=L)``, which averages over the same
    'valid' positions.
    """
    window = gaussian_window(window_size, sigma, dtype=x.dtype, device=x.device)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    # One filtering pass over the five stacked statistics.
    stats = _separable_filter(torch.cat([x, y, x * x, y * y, x * y], dim=1), window)
    mu_x, mu_y, xx, yy, xy = stats.chunk(5, dim=1)
    var_x = xx - mu_x**2
    var_y = yy - mu_y**2
    cov = xy - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return numerator / denominator


def ssim(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM (see :func:`ssim_map`)."""
    return ssim_map(x, y, data_range=data_range).mean()


def ssim_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``1 - SSIM(x, y)`` for images in [0, 1]."""
    return 1.0 - ssim(x, y, data_range=1.0)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation: mean absolute horizontal plus vertical differences."""
    dy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean()
    dx = (image[..., :, 1:] - image[..., :, :-1]).abs().mean()
    return dx + dy


def kernel_energy(kernel: torch.Tensor) -> torch.Tensor:
    """``||k||^2``: small for spread kernels, 1 for a delta (guards against delta collapse)."""
    return (kernel**2).sum()


LOSS_TERMS: dict[str, Callable[[LossInputs], torch.Tensor]] = {
    "mse": lambda t: mse(t.blurred, t.target),
    "mae": lambda t: mae(t.blurred, t.target),
    "ssim": lambda t: ssim_loss(t.blurred, t.target),
    "tv": lambda t: total_variation(t.image),
    "kernel_energy": lambda t: kernel_energy(t.kernel),
}
"""Loss term name -> function. ``"ssim"`` is the loss ``1 - SSIM``."""
