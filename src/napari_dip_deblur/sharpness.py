"""A no-reference sharpness score: the normalised sparsity of an image's gradients.

Blur spreads every edge over several pixels, which makes the gradient field less sparse;
its ratio of L1 to L2 norm is scale-invariant and rises with blur, so Krishnan, Tay and
Fergus (CVPR 2011) used it as the image prior of blind deconvolution. Here it ranks
candidate restorations of the *same* input (:attr:`Settings.starts
<napari_dip_deblur.presets.Settings>`); its absolute value depends on the scene, so it is
no test of whether one restoration succeeded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["gradient_sparsity"]


def gradient_sparsity(image: Any, margin: int = 0) -> float:
    """``||grad x||_1 / (sqrt(n) ||grad x||_2)`` over the image's finite differences.

    Parameters
    ----------
    image : (..., M, N) array_like
        One image, or several channels of one (all enter one score).
    margin : int
        Pixels left out at every border (where generated images are least constrained).

    Returns
    -------
    float
        In (0, 1]: lower is sparser, i.e. sharper; 1.0 for an image without gradients.

    Raises
    ------
    ValueError
        Fewer than two rows or columns left inside the margin, or a negative margin.

    References
    ----------
    .. [1] D. Krishnan, T. Tay, R. Fergus, "Blind deconvolution using a normalized sparsity
       measure", CVPR 2011.
    """
    x = np.asarray(image, dtype=np.float64)
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    if margin:
        x = x[..., margin:-margin, margin:-margin]
    if x.ndim < 2 or min(x.shape[-2:]) < 2:
        raise ValueError(f"need an image of at least 2 x 2 pixels inside the margin, "
                         f"got shape {x.shape}")
    gradients = np.concatenate([np.diff(x, axis=-1).ravel(), np.diff(x, axis=-2).ravel()])
    l2 = np.sqrt(np.sum(gradients ** 2))
    if l2 == 0:
        return 1.0  # a flat image: the least sharp there is
    return float(np.sum(np.abs(gradients)) / (np.sqrt(gradients.size) * l2))
