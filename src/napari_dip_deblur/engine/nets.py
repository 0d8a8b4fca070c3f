"""The two untrained generators of SelfDeblur: a "skip" U-Net for the image, an MLP for the kernel.

The image generator follows the deep-image-prior ``skip`` architecture as configured by
SelfDeblur (Ren et al., CVPR 2020): per level a stride-2 3x3 conv (downsampling), a 3x3 conv,
the deeper levels, bilinear x2 upsampling, concatenation with a 1x1 "skip" branch, then a
3x3 and a 1x1 conv; BatchNorm and LeakyReLU(0.2) after every conv; reflection padding;
a final 1x1 conv and a sigmoid. Non-local (dot-product self-attention) blocks follow the
downsampling conv at the chosen levels (SelfDeblur: levels 2, 3, 4, counted from 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ImageGenerator", "KernelGenerator", "NonLocalBlock"]


def _conv(c_in: int, c_out: int, size: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, size, stride=stride, padding=size // 2, padding_mode="reflect")


def _conv_bn_act(c_in: int, c_out: int, size: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        _conv(c_in, c_out, size, stride), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, inplace=True)
    )


def _center_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    top = (x.shape[-2] - height) // 2
    left = (x.shape[-1] - width) // 2
    return x[..., top : top + height, left : left + width]


class NonLocalBlock(nn.Module):
    """Dot-product non-local block (Wang et al., CVPR 2018) with 2x2 max-pooled keys/values.

    The output projection's BatchNorm starts at zero weight, so the block starts as identity.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(channels // 2, 1)
        self.inner = inner
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, inner, 1)
        self.pool = nn.MaxPool2d(2)
        self.project = nn.Sequential(nn.Conv2d(inner, channels, 1), nn.BatchNorm2d(channels))
        nn.init.zeros_(self.project[1].weight)
        nn.init.zeros_(self.project[1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        query = self.query(x).flatten(2).transpose(1, 2)  # (b, hw, inner)
        key = self.pool(self.key(x)).flatten(2)  # (b, inner, n)
        value = self.pool(self.value(x)).flatten(2).transpose(1, 2)  # (b, n, inner)
        attention = query @ key / key.shape[-1]
        y = (attention @ value).transpose(1, 2).reshape(b, self.inner, h, w)
        return x + self.project(y)


class _Level(nn.Module):
    """One level of the U-Net: skip branch || (down -> deeper -> up), then merge convs."""

    def __init__(
        self,
        c_in: int,
        c_down: int,
        c_up: int,
        c_skip: int,
        deeper: _Level | None,
        upsample: str,
        non_local: bool,
    ) -> None:
        super().__init__()
        down: list[nn.Module] = [_conv_bn_act(c_in, c_down, 3, stride=2)]
        if non_local:
            down.append(NonLocalBlock(c_down))
        down.append(_conv_bn_act(c_down, c_down, 3))
        self.down = nn.Sequential(*down)
        self.deeper = deeper
        self.skip = _conv_bn_act(c_in, c_skip, 1) if c_skip > 0 else None
        self.upsample = upsample
        c_deeper_out = deeper.c_up if deeper is not None else c_down
        self.merge_bn = nn.BatchNorm2d(c_skip + c_deeper_out)
        self.merge = nn.Sequential(_conv_bn_act(c_skip + c_deeper_out, c_up, 3),
                                   _conv_bn_act(c_up, c_up, 1))
        self.c_up = c_up

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        d = self.down(x)
        if self.deeper is not None:
            d = self.deeper(d)
        align = False if self.upsample in ("bilinear", "bicubic") else None
        d = F.interpolate(d, scale_factor=2, mode=self.upsample, align_corners=align)
        # ceil(n / 2) * 2 >= n, so a centre crop brings the deeper branch back to n.
        d = _center_crop(d, h, w)
        if self.skip is not None:
            d = torch.cat([self.skip(x), d], dim=1)
        return self.merge(self.merge_bn(d))


class ImageGenerator(nn.Module):
    """The "skip" encoder-decoder that generates the sharp image from fixed noise.

    Parameters
    ----------
    in_channels : int
        Channels of the noise input (SelfDeblur: 8).
    out_channels : int
        Channels of the generated image (1 for grey).
    levels : int
        Number of down/up levels (SelfDeblur: 5).
    channels : int or sequence of int
        Channels of the down and up convs per level (SelfDeblur: 128 at every level).
    skip_channels : int or sequence of int
        Channels of the 1x1 skip branch per level (SelfDeblur: 16).
    upsample : {"bilinear", "nearest"}
        Upsampling mode.
    non_local_levels : sequence of int
        Levels (0 = finest) that get a non-local block (SelfDeblur: 2, 3, 4).

    Notes
    -----
    The output has the input's spatial size and lies in [0, 1] (sigmoid). An input side of
    ``n`` needs ``ceil(n / 2**levels) >= 2`` for reflection padding at the coarsest level.
    """

    def __init__(
        self,
        in_channels: int = 8,
        out_channels: int = 1,
        levels: int = 5,
        channels: int | Sequence[int] = 128,
        skip_channels: int | Sequence[int] = 16,
        upsample: str = "bilinear",
        non_local_levels: Sequence[int] = (2, 3, 4),
    ) -> None:
        super().__init__()
        down = _per_level(channels, levels, "channels")
        skip = _per_level(skip_channels, levels, "skip_channels")
        self.levels = levels
        level: _Level | None = None
        for i in reversed(range(levels)):
            c_in = in_channels if i == 0 else down[i - 1]
            level = _Level(c_in, down[i], down[i], skip[i], level, upsample,
                           non_local=i in non_local_levels)
        assert level is not None
        self.body = level
        self.head = nn.Conv2d(down[0], out_channels, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(self.body(z)))

    def min_input_size(self) -> int:
        """Smallest input side that survives ``levels`` stride-2 convs in training mode
        (BatchNorm needs more than a 1 x 1 map at the deepest level)."""
        return 2 ** self.levels + 1


def _per_level(value: int | Sequence[int], levels: int, name: str) -> list[int]:
    if isinstance(value, int):
        return [value] * levels
    values = [int(v) for v in value]
    if len(values) != levels:
        raise ValueError(f"{name} needs one value per level ({levels}), got {len(values)}")
    return values


class KernelGenerator(nn.Module):
    """The kernel generator: fixed noise -> Linear -> ReLU6 -> Linear -> softmax -> (kh, kw).

    The softmax makes the kernel non-negative and sum to 1 by construction. With
    ``start_sigma`` the last layer's bias is offset by the logarithm of a centred Gaussian
    whose standard deviation is ``start_sigma`` times the kernel's height and width, so the
    first kernel is that Gaussian instead of flat; the network is otherwise unchanged and
    the bias is trained like any other weight.
    """

    def __init__(self, kernel_shape: tuple[int, int], in_features: int = 200,
                 hidden: int = 1000, start_sigma: float | None = None) -> None:
        super().__init__()
        self.kernel_shape = tuple(kernel_shape)
        kh, kw = self.kernel_shape
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU6(), nn.Linear(hidden, kh * kw),
            nn.Softmax(dim=-1),
        )
        if start_sigma is not None:
            y = (torch.arange(kh) - (kh - 1) / 2) / (start_sigma * kh)
            x = (torch.arange(kw) - (kw - 1) / 2) / (start_sigma * kw)
            with torch.no_grad():
                self.net[2].bias.add_(-(y[:, None] ** 2 + x[None, :] ** 2).reshape(-1) / 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).reshape(self.kernel_shape)

    @torch.no_grad()
    def start_from(self, kernel: torch.Tensor, floor: float = 1e-3) -> None:
        """Make the generator output ``kernel`` (normalised) for any input, still trainable.

        The last layer's weights are zeroed and its bias set to the kernel's logarithm, so
        the softmax returns the kernel exactly; gradients still reach the weights (the
        hidden activations are not zero), so the kernel keeps being refined. Pixels below
        ``floor`` times the peak are raised to it: a logit of log(0) could never recover
        (the softmax's gradient there is proportional to the pixel's value).
        """
        if tuple(kernel.shape) != self.kernel_shape:
            raise ValueError(f"initial kernel has shape {tuple(kernel.shape)}, "
                             f"expected {self.kernel_shape}")
        last = self.net[2]
        k = kernel.to(dtype=last.bias.dtype, device=last.bias.device).clamp_min(0)
        k = k.clamp_min(floor * float(k.max()))
        last.weight.zero_()
        last.bias.copy_(torch.log(k / k.sum()).reshape(-1))
