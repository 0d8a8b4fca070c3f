"""Non-blind deconvolution: restore an image blurred by a *known* kernel, fast.

Two solvers share one set of FFT operators:

- ``"hyper_laplacian"``: Krishnan & Fergus (NIPS 2009), half-quadratic splitting of a
  ``|grad x|^alpha`` prior with a rising penalty ``beta``; each step is a per-pixel shrinkage
  (read from a table built by a 1-D solver) and a quadratic solve done in the Fourier domain.
- ``"wiener"``: the quadratic (Tikhonov) counterpart, ``||grad x||^2`` instead of
  ``|grad x|^alpha``: a Wiener-like filter in closed form on a periodic domain.

Both are used after a blind estimate (deconvolve the blurry image again with the DIP's
kernel) and to restore images too large for the DIP (a 4096 x 4096 image in seconds), or every
plane of a stack with one kernel. numpy in and out; the arithmetic runs in torch (its CPU FFT
and element-wise kernels are multi-threaded, and several times faster here than numpy's).
No napari.

Boundaries
----------
A photograph is not periodic, and an FFT solver that assumes it is rings from the borders
inwards. ``edge="extend"`` (the default) solves for an image larger than the observed one by
the kernel's half-size on each side, and lets the data term cover only the observed pixels
(Reeves 2005; Almeida & Figueiredo 2013): the blur of the extended image is compared with the
observation on the observed window only, so no boundary condition is assumed. The masked data
term is no longer diagonal in the Fourier domain; it is solved by conjugate gradients
preconditioned by the unmasked (circulant) system, a few steps per iteration.
``edge="taper"`` pads by reflection and blends the padding into its own blur near the wrap
seam (like MATLAB's ``edgetaper``), then solves the periodic problem: one FFT pair per step,
but 2-3 dB worse on the Levin benchmark (``docs/nonblind.md``). ``edge="periodic"`` assumes
a periodic image (synthetic data made with circular convolutions).

References
----------
D. Krishnan, R. Fergus, "Fast image deconvolution using hyper-Laplacian priors", NIPS 2009.
S. J. Reeves, "Fast image restoration without boundary artifacts", IEEE TIP 14(10), 2005.
M. S. C. Almeida, M. A. T. Figueiredo, "Deconvolving images with unknown boundaries using the
alternating direction method of multipliers", IEEE TIP 22(8), 2013.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ._validation import normalised_kernel, real_array

__all__ = ["DEFAULT_ITERATIONS", "DEFAULT_WEIGHTS", "EDGES", "METHODS", "deconvolve"]

METHODS = ("hyper_laplacian", "wiener")
"""Names accepted by ``deconvolve(method=...)``."""

EDGES = ("extend", "taper", "periodic")
"""Boundary handling accepted by ``deconvolve(edge=...)``; the first is the default."""

DEFAULT_WEIGHTS = {"hyper_laplacian": 1e-4, "wiener": 3e-3}
"""Prior weights tuned on the Levin benchmark with the true kernels (``docs/nonblind.md``)."""

DEFAULT_ITERATIONS = {"hyper_laplacian": 10, "wiener": 30}
"""Half-quadratic steps (hyper-Laplacian) and conjugate-gradient steps (Wiener, ``extend``)."""

# The half-quadratic penalty rises geometrically from 1 to this over the iterations
# (Krishnan & Fergus go from 1 to 256 by 2*sqrt(2)); 1024 over 10 steps scored best on Levin.
_BETA_MAX = 1024.0
# Conjugate-gradient steps per half-quadratic step with edge="extend". On Levin (15 steps, beta
# to 256) 1, 2, 3, 4 steps scored 34.4, 34.8, 34.9, 34.95 dB: 3 is the knee.
_CG_STEPS = 3
# Points of the shrinkage table; the map is smooth away from its jump, so linear interpolation
# on 4096 points is exact to far below the image's quantisation.
_TABLE_SIZE = 4096


def deconvolve(
    image: Any,
    kernel: Any,
    *,
    method: str = "hyper_laplacian",
    weight: float | None = None,
    alpha: float = 2 / 3,
    iterations: int | None = None,
    edge: str = "extend",
    data_range: float | None = None,
) -> np.ndarray:
    """Restore an image blurred by a known kernel (non-blind deconvolution).

    Parameters
    ----------
    image : (M, N) array_like
        The blurry image, any real dtype and range; not modified.
    kernel : (kh, kw) array_like
        The blur kernel in convolution orientation, with odd sides no larger than the image
        and its centre on the middle pixel (as :func:`napari_dip_deblur.deblur` returns it).
        It is normalised to sum 1, so the output keeps the input's brightness.
    method : {"hyper_laplacian", "wiener"}
        The prior: sparse gradients (sharper edges, less ringing) or Gaussian gradients
        (closed form, faster, smoother).
    weight : float, optional
        Strength of the prior (> 0; larger is smoother and less noisy), for an image scaled
        to unit ``data_range``. Defaults, tuned on the Levin benchmark with the true kernels:
        ``1e-4`` for "hyper_laplacian" (useful range about 3e-5 to 1e-3, higher for noisier
        images or less exact kernels), ``3e-3`` for "wiener" (about 1e-3 to 3e-2).
    alpha : float
        Exponent of the hyper-Laplacian prior, in (0, 2]: 2/3 (default) or 1/2 as in
        Krishnan & Fergus, 1 for total variation; ignored by "wiener".
    iterations : int, optional
        "hyper_laplacian": half-quadratic steps (default 10; the penalty rises from 1 to 1024
        over them). "wiener" with ``edge="extend"``: conjugate-gradient steps (default 30);
        the other edges have a closed form and ignore it.
    edge : {"extend", "taper", "periodic"}
        Boundary handling (see Notes). "extend" is the most accurate; "taper" is about twice
        as fast per step; "periodic" is for images that really are periodic.
    data_range : float, optional
        The intensity span that ``weight`` refers to: 255 for uint8 images, otherwise by
        default the image's ``max - min`` (so a float result scales with its input). Pass
        the data's nominal range (255 for 8-bit photographs held as floats, the camera's full
        scale, ...) to regularise every plane of a stack alike.

    Returns
    -------
    (M, N) ndarray of float32
        The restored image on the input's intensity scale (uint8 input gives values around
        0..255). Not clipped: restored edges may overshoot the input's range slightly.

    Raises
    ------
    ValueError
        If ``image`` is not a non-empty 2-D array of finite real numbers; if ``kernel`` is
        not 2-D, has an even side, is larger than the image, is not finite or does not sum to
        a positive value; if ``method`` or ``edge`` is unknown; if ``weight``,
        ``data_range``, ``alpha`` or ``iterations`` is out of range.

    Notes
    -----
    The model is ``y = k * x + n``: the observed image ``y`` is the sharp image ``x``
    convolved with the kernel ``k``, plus noise ``n``. On the image scaled by
    ``data_range`` the estimate minimises

        1/2 ||M (k * x) - y||^2 + weight * sum_pixels (|d_h x|^alpha + |d_v x|^alpha)

    ("wiener": ``weight/2 * sum (d_h x^2 + d_v x^2)``), with ``d_h``, ``d_v`` forward
    differences. With ``edge="extend"`` the unknown ``x`` covers the observed window plus
    half the kernel on each side, and ``M`` keeps the observed window: pixels outside the
    image are estimated, not assumed. With "taper" and "periodic" ``M`` is the identity on a
    periodic domain (padded by the kernel's size and tapered, or not padded).

    "hyper_laplacian" alternates, for a penalty ``beta`` rising from 1 to 1024 (Krishnan &
    Fergus 2009): ``w = argmin |w|^alpha + beta/2 (w - d x)^2`` per pixel (a table, built by
    bisection for any ``alpha``, interpolated), then
    ``x = argmin 1/2 ||M (k * x) - y||^2 + weight * beta/2 ||d x - w||^2`` (exact by FFT
    when ``M`` is the identity; three preconditioned conjugate-gradient steps otherwise).

    On the Levin et al. (2009) benchmark with the true kernels the defaults score
    35.0 dB / 0.957 ("hyper_laplacian") and 33.8 dB / 0.931 ("wiener") against 23.25 dB for
    the blurry input; a 4096 x 4096 image with a 27 x 27 kernel takes 11.9 s and 9.1 s on a
    2-core CPU (``docs/nonblind.md``). The work runs on the CPU, on torch's threads
    (``torch.set_num_threads``).

    References
    ----------
    .. [1] D. Krishnan, R. Fergus, "Fast image deconvolution using hyper-Laplacian priors",
       NIPS 2009.
    .. [2] S. J. Reeves, "Fast image restoration without boundary artifacts", IEEE TIP
       14(10), 2005.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import signal
    >>> rng = np.random.default_rng(0)
    >>> sharp = rng.uniform(0, 255, (64, 64))
    >>> kernel = np.ones((1, 5)) / 5
    >>> blurry = signal.convolve(sharp, kernel, mode="same")
    >>> restored = deconvolve(blurry, kernel)
    >>> restored.dtype, restored.shape
    (dtype('float32'), (64, 64))
    """
    array = _check_image(image)
    psf = _check_kernel(kernel, array.shape)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if edge not in EDGES:
        raise ValueError(f"edge must be one of {EDGES}, got {edge!r}")
    weight = _positive("weight", DEFAULT_WEIGHTS[method] if weight is None else weight)
    alpha = _positive("alpha", alpha)
    if alpha > 2:
        raise ValueError(f"alpha must be in (0, 2] (2/3 or 1/2 are usual), got {alpha}")
    iterations = _check_iterations(DEFAULT_ITERATIONS[method] if iterations is None
                                   else iterations)

    # Work on a zero-mean copy at unit range: the weights are then independent of the input's
    # scale (float64 statistics, float32 arithmetic; the caller's array is never touched).
    offset = float(array.mean(dtype=np.float64))
    span = float(array.max()) - float(array.min())
    if data_range is not None:
        scale = _positive("data_range", data_range)
    else:  # as `deblur` reads intensities: 8-bit is [0, 255], anything else its own span
        scale = 255.0 if array.dtype == np.uint8 else span
    if span == 0:  # a constant image is its own deconvolution (the kernel sums to 1)
        return array.astype(np.float32)
    work = array.astype(np.float32)
    work -= offset
    work /= scale
    problem = _Problem.build(torch.from_numpy(work), psf, edge)
    del work  # the problem holds what it needs: free 4 bytes a pixel for the solver
    if method == "wiener":
        restored = _wiener(problem, weight, iterations)
    else:
        restored = _hyper_laplacian(problem, weight, alpha, iterations)
    result = np.array(restored[problem.window].numpy(), dtype=np.float32)  # a fresh array
    result *= scale
    result += offset
    return result


# --------------------------------------------------------------------------- validation


def _check_image(image: Any) -> np.ndarray:
    array = real_array(image, finite=False)
    if array.ndim != 2:
        raise ValueError(f"image must be 2-D (M, N), got shape {array.shape}; for a stack or "
                         f"colour image deconvolve each plane (same kernel, same data_range)")
    return real_array(array)


def _check_kernel(kernel: Any, image_shape: tuple[int, ...]) -> np.ndarray:
    psf = real_array(kernel, "kernel", finite=False)
    if psf.ndim != 2:
        raise ValueError(f"kernel must be a non-empty 2-D array (kh, kw), got shape "
                         f"{psf.shape}")
    return normalised_kernel(psf, image_shape)


def _positive(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return number


def _check_iterations(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"iterations must be an integer >= 1, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- FFT operators
#
# Everything below is float32 (complex64 in the Fourier domain), and the loops write into
# buffers allocated once: at 4096 x 4096 allocating a fresh 70 MB array costs more than the
# arithmetic on it (large blocks go back to the system and are paged in again each time).


def _fast_length(n: int) -> int:
    """The smallest 5-smooth integer >= n: FFT sizes with only factors 2, 3, 5 run fastest."""
    while True:
        rest = n
        for factor in (2, 3, 5):
            while rest % factor == 0:
                rest //= factor
        if rest == 1:
            return n
        n += 1


def _kernel_spectrum(psf: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    """rfft2 of the kernel placed with its centre at the origin of a ``shape`` domain."""
    kh, kw = psf.shape
    canvas = torch.zeros(shape, dtype=torch.float32)
    canvas[:kh, :kw] = torch.from_numpy(psf.astype(np.float32))
    canvas = torch.roll(canvas, (-(kh // 2), -(kw // 2)), dims=(0, 1))
    return torch.fft.rfft2(canvas)


def _gradient_spectrum(shape: tuple[int, int]) -> torch.Tensor:
    """``|D_h|^2 + |D_v|^2`` of the circular forward differences, on the rfft2 grid."""
    fy = torch.fft.fftfreq(shape[0], dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(shape[1], dtype=torch.float64)[None, :]
    return (4 - 2 * torch.cos(2 * math.pi * fy) - 2 * torch.cos(2 * math.pi * fx)).float()


def _gradients(x: torch.Tensor, gh: torch.Tensor, gv: torch.Tensor) -> None:
    """Circular forward differences of ``x`` along rows into ``gh``, along columns into ``gv``."""
    torch.sub(x[:, 1:], x[:, :-1], out=gh[:, :-1])
    torch.sub(x[:, :1], x[:, -1:], out=gh[:, -1:])
    torch.sub(x[1:], x[:-1], out=gv[:-1])
    torch.sub(x[:1], x[-1:], out=gv[-1:])


def _gradients_adjoint(gh: torch.Tensor, gv: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``D_h^T gh + D_v^T gv`` into ``out``, with ``(D^T g)[j] = g[j - 1] - g[j]``."""
    torch.sub(gh[:, -1:], gh[:, :1], out=out[:, :1])
    torch.sub(gh[:, :-1], gh[:, 1:], out=out[:, 1:])
    out[:1].add_(gv[-1:]).sub_(gv[:1])
    out[1:].add_(gv[:-1]).sub_(gv[1:])
    return out


def _times(spectrum: torch.Tensor, factor: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out = spectrum * factor`` for a real ``factor`` on the rfft2 grid (real arithmetic)."""
    torch.mul(torch.view_as_real(spectrum), factor.unsqueeze(-1), out=torch.view_as_real(out))
    return out


def _over(spectrum: torch.Tensor, factor: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out = spectrum / factor`` for a real ``factor`` on the rfft2 grid."""
    torch.div(torch.view_as_real(spectrum), factor.unsqueeze(-1), out=torch.view_as_real(out))
    return out


def _times_conjugate_(spectrum: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``spectrum *= conj(kernel)`` in place, as ``conj(kernel * conj(spectrum))``.

    Multiplying by a lazily conjugated tensor makes torch copy it first; this does not.
    """
    return spectrum.conj_physical_().mul_(kernel).conj_physical_()


def _abs_max(values: torch.Tensor) -> float:
    low, high = torch.aminmax(values)
    return max(-float(low), float(high))


def _taper_weights(psf: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    """Weights rising from 0 at the periodic seam to 1 a kernel's width away (edgetaper).

    Along each axis the weight at distance ``d`` from the seam is ``1 - a(d)``, with ``a`` the
    autocorrelation of the kernel's projection on that axis, normalised to 1 at lag 0: the
    blend is complete where the blur mixes pixels from both sides of the seam.
    """
    weights = torch.ones(shape, dtype=torch.float32)
    for axis in (0, 1):
        profile = psf.sum(axis=1 - axis)
        autocorrelation = np.correlate(profile, profile, mode="full")
        autocorrelation /= autocorrelation.max()
        centre = len(profile) - 1
        n = shape[axis]
        distance = np.minimum(np.arange(n), n - 1 - np.arange(n))
        ramp = np.ones(n)
        near = distance < len(profile)
        ramp[near] = 1 - autocorrelation[centre + distance[near]]
        view = (n, 1) if axis == 0 else (1, n)
        weights *= torch.from_numpy(ramp.astype(np.float32)).reshape(view)
    return weights


@dataclass(eq=False)
class _Problem:
    """The deconvolution problem on its periodic FFT domain (extended or padded).

    Attributes
    ----------
    start : (M', N') tensor
        The observation padded by reflection and tapered: the starting image, and the data
        itself when ``masked`` is False. The solvers overwrite it with their iterate.
    window : tuple of slice
        Where the observed image lies in the domain.
    kernel : complex tensor
        rfft2 of the kernel on the domain.
    kernel_power, gradient_power : real tensors
        ``|K|^2`` and ``|D_h|^2 + |D_v|^2`` on the rfft2 grid.
    data : complex tensor
        ``conj(K) F(y)``, the data term's right-hand side (``y`` zero outside the window when
        ``masked``).
    masked : bool
        Whether the data term covers only the window (edge="extend").
    """

    start: torch.Tensor
    window: tuple[slice, slice]
    kernel: torch.Tensor
    kernel_power: torch.Tensor
    gradient_power: torch.Tensor
    data: torch.Tensor
    masked: bool

    @property
    def shape(self) -> tuple[int, int]:
        return (self.start.shape[0], self.start.shape[1])

    @classmethod
    def build(cls, observed: torch.Tensor, psf: np.ndarray, edge: str) -> _Problem:
        h, w = observed.shape
        kh, kw = psf.shape
        if edge == "periodic":
            shape = (h, w)
        elif edge == "extend":
            # Room for the half-kernel the blur pulls in at each side of the observed window.
            shape = (_fast_length(h + kh - 1), _fast_length(w + kw - 1))
        else:
            # A kernel's width of padding on each side: the taper then touches padding only.
            shape = (_fast_length(h + 2 * kh), _fast_length(w + 2 * kw))
        top, left = (shape[0] - h) // 2, (shape[1] - w) // 2
        window = (slice(top, top + h), slice(left, left + w))
        kernel = _kernel_spectrum(psf, shape)
        if edge == "periodic":
            start = observed  # `deconvolve` hands over its own copy
        else:
            padded = np.pad(observed.numpy(), ((top, shape[0] - h - top),
                                               (left, shape[1] - w - left)), mode="symmetric")
            start = torch.from_numpy(padded)
            blurred = torch.fft.irfft2(torch.fft.rfft2(start).mul_(kernel), s=shape)
            taper = _taper_weights(psf, shape)
            start.mul_(taper).add_(blurred.mul_(taper.neg_().add_(1)))
            del blurred, taper
        if edge == "extend":
            canvas = torch.zeros(shape, dtype=torch.float32)
            canvas[window] = observed
            data = torch.fft.rfft2(canvas)
            del canvas
        else:
            data = torch.fft.rfft2(start)
        return cls(start=start, window=window, kernel=kernel,
                   kernel_power=kernel.abs().square(), gradient_power=_gradient_spectrum(shape),
                   data=_times_conjugate_(data, kernel), masked=edge == "extend")

    def blur_outside(self, spectrum: torch.Tensor, out: torch.Tensor,
                     scratch: torch.Tensor) -> torch.Tensor:
        """``T X = conj(K) F(B F^-1(K X))`` into ``out``, ``B`` zeroing the window.

        ``K^H K - T`` is the masked data term's ``K^H M K``; ``scratch`` is a real buffer.
        """
        torch.fft.irfft2(torch.mul(self.kernel, spectrum, out=out), s=self.shape, out=scratch)
        scratch[self.window] = 0
        return _times_conjugate_(torch.fft.rfft2(scratch, out=out), self.kernel)

    def dot(self, a: torch.Tensor, b: torch.Tensor) -> float:
        """``<a, b>`` of two real signals from their rfft2, up to a constant factor.

        The half spectrum holds every column but the first (and the last, for an even width)
        twice over in the full one (Parseval).
        """
        total = 2 * torch.vdot(a.reshape(-1), b.reshape(-1)).real
        total -= torch.vdot(a[:, 0], b[:, 0]).real
        if self.shape[1] % 2 == 0:
            total -= torch.vdot(a[:, -1], b[:, -1]).real
        return float(total)


class _XStep:
    """The quadratic step ``(K^H M K + rho D^H D) X = rhs``, with its buffers.

    Without a mask (edges "taper" and "periodic") the system is diagonal in the Fourier
    domain: ``X = rhs / (|K|^2 + rho |D|^2)``. With one, conjugate gradients preconditioned by
    that diagonal, warm-started from the previous solution; ``T X`` (`_Problem.blur_outside`)
    is carried along by linearity, so the first residual costs no FFT.
    """

    def __init__(self, problem: _Problem, spectrum: torch.Tensor) -> None:
        self.problem = problem
        self.spectrum = spectrum  # the current solution, updated in place
        self.diagonal = torch.empty_like(problem.kernel_power)
        self.scratch = torch.empty_like(problem.start)
        if problem.masked:
            self.leftout = problem.blur_outside(spectrum, torch.empty_like(spectrum),
                                                self.scratch)
            self.direction = torch.empty_like(spectrum)
            self.t_direction = torch.empty_like(spectrum)
            self.product = torch.empty_like(spectrum)

    def solve(self, rho: float, rhs: torch.Tensor, steps: int) -> torch.Tensor:
        """Update and return the solution; ``rhs`` is used as the residual (overwritten)."""
        problem = self.problem
        diagonal = torch.add(problem.kernel_power, problem.gradient_power, alpha=rho,
                             out=self.diagonal)
        if not problem.masked:
            return _over(rhs, diagonal, out=self.spectrum)
        residual = rhs.add_(self.leftout).sub_(_times(self.spectrum, diagonal, self.product))
        direction = _over(residual, diagonal, self.direction)
        rz = problem.dot(residual, direction)
        for step in range(steps):
            if not rz > 0:  # an exact solution already: nothing left to reduce
                break
            t_direction = problem.blur_outside(direction, self.t_direction, self.scratch)
            product = _times(direction, diagonal, self.product).sub_(t_direction)
            curvature = problem.dot(direction, product)
            # Converged to the last bits: the curvature underflows before rz does (how soon
            # depends on the CPU's SIMD width), and a step would be 0/0.
            if not curvature > 0:
                break
            size = rz / curvature
            self.spectrum.add_(direction, alpha=size)
            self.leftout.add_(t_direction, alpha=size)
            if step == steps - 1:
                break
            residual.sub_(product, alpha=size)
            preconditioned = _over(residual, diagonal, self.product)
            rz_next = problem.dot(residual, preconditioned)
            direction.mul_(rz_next / rz).add_(preconditioned)
            rz = rz_next
        return self.spectrum


# --------------------------------------------------------------------------- solvers


def _wiener(problem: _Problem, weight: float, iterations: int) -> torch.Tensor:
    spectrum = torch.fft.rfft2(problem.start)
    if problem.masked:
        # Start from the closed form on the tapered padding, then fit the observed window.
        diagonal = problem.kernel_power + weight * problem.gradient_power
        _over(_times_conjugate_(spectrum, problem.kernel), diagonal, out=spectrum)
    spectrum = _XStep(problem, spectrum).solve(weight, problem.data, iterations)
    return torch.fft.irfft2(spectrum, s=problem.shape, out=problem.start)


def _hyper_laplacian(problem: _Problem, weight: float, alpha: float,
                     iterations: int) -> torch.Tensor:
    image = problem.start
    xstep = _XStep(problem, torch.fft.rfft2(image))
    gh, gv, buffer = (torch.empty_like(image) for _ in range(3))
    cell = torch.empty(image.shape, dtype=torch.int32)
    rhs = torch.empty_like(problem.data)
    for beta in np.geomspace(1.0, _BETA_MAX, iterations):
        # w-step: shrink each gradient towards 0 (xstep.scratch is free until the x-step).
        _gradients(image, gh, gv)
        table = _shrinkage_table(alpha, float(beta), max(_abs_max(gh), _abs_max(gv)))
        _shrink_(gh, table, xstep.scratch, buffer, cell)
        _shrink_(gv, table, xstep.scratch, buffer, cell)
        # x-step: 1/2 ||M(k*x) - y||^2 + (weight beta)/2 ||Dx - w||^2, normal equations
        # (K^H M K + rho D^H D) x = K^H M y + rho D^H w.
        rho = weight * float(beta)
        torch.fft.rfft2(_gradients_adjoint(gh, gv, out=buffer), out=rhs)
        spectrum = xstep.solve(rho, rhs.mul_(rho).add_(problem.data), _CG_STEPS)
        torch.fft.irfft2(spectrum, s=problem.shape, out=image)
    return image


def _shrinkage_table(alpha: float, beta: float, limit: float,
                     size: int = _TABLE_SIZE) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Piecewise-linear ``w(v) = argmin_w |w|^alpha + beta/2 (w - v)^2`` for ``0 <= v <= limit``.

    For ``w > 0`` a minimiser solves ``f(w) = alpha w^(alpha-1) + beta (w - v) = 0``. For
    ``alpha < 1``, ``f`` falls then rises, with its minimum at
    ``w_c = (alpha (1 - alpha) / beta)^(1 / (2 - alpha))``; the energy's local minimum is the
    root on ``[w_c, v]`` (there is one when ``f(w_c) <= 0``), found by bisection, and it is
    kept only if its energy beats ``w = 0`` (hence a jump at a threshold). For ``alpha >= 1``
    the energy is convex and the root on ``(0, v]``, if any, is the minimiser. Krishnan &
    Fergus solve a quartic (2/3) or a cubic (1/2) in closed form instead; a table costs a
    millisecond per step and serves every ``alpha``.

    Returns
    -------
    slope, intercept : (size,) float32 tensors
        ``w = slope[i] * (v / step) + intercept[i]`` on cell ``i = floor(v / step)``.
    step : float
        The cell width.
    """
    # A margin so that the largest |v|, divided by the step in float32, stays below `size`.
    limit = max(limit, 1e-12) * (1 + 1e-4)
    v = np.linspace(0.0, limit, size + 1)
    lower = (alpha * (1 - alpha) / beta) ** (1 / (2 - alpha)) if alpha < 1 else 0.0
    low = np.full_like(v, lower)
    high = v.copy()

    def energy_slope(w: np.ndarray) -> np.ndarray:
        return alpha * np.power(np.maximum(w, 1e-300), alpha - 1) + beta * (w - v)

    # f rises on [low, v]: a root needs f(low) <= 0 (for alpha > 1, f(0+) = -beta v < 0).
    has_root = (high > low) & (energy_slope(np.where(high > low, low, v)) <= 0)
    for _ in range(40):  # the bracket halves each time: 40 steps leave 1e-12 of its width
        middle = 0.5 * (low + high)
        rising = energy_slope(middle) > 0
        high = np.where(rising, middle, high)
        low = np.where(rising, low, middle)
    w = np.where(has_root, 0.5 * (low + high), 0.0)
    energy = np.power(w, alpha) + 0.5 * beta * (w - v) ** 2
    w = np.where(energy < 0.5 * beta * v**2, w, 0.0)
    step = limit / size
    slope = np.diff(w)  # per cell, in units of the cell width
    intercept = w[:-1] - slope * np.arange(size)
    return (torch.from_numpy(slope.astype(np.float32)),
            torch.from_numpy(intercept.astype(np.float32)), step)


def _shrink_(values: torch.Tensor, table: tuple[torch.Tensor, torch.Tensor, float],
             magnitude: torch.Tensor, buffer: torch.Tensor, cell: torch.Tensor) -> None:
    """Replace every value ``v`` by ``sign(v) w(|v|)`` from `_shrinkage_table`, in place.

    ``magnitude`` and ``buffer`` (float32) and ``cell`` (int32) are work buffers of the same
    shape.
    """
    slope, intercept, step = table
    torch.abs(values, out=magnitude).mul_(1 / step)
    cell.copy_(magnitude)  # truncation = floor for non-negative values
    torch.index_select(slope, 0, cell.reshape(-1), out=buffer.reshape(-1))
    buffer.mul_(magnitude)
    torch.index_select(intercept, 0, cell.reshape(-1), out=magnitude.reshape(-1))
    torch.copysign(buffer.add_(magnitude), values, out=values)
