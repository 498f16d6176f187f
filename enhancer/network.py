"""The seed's deep residual network, and its inference-time form.

input conv + N residual blocks (conv-BN-ReLU-conv-BN + skip) + mid conv + output conv, with a
global skip: output = input + network(input). For a scan step S > 1 the input is interpolated to
the fine grid first (upsample), so the network only ever learns the residual detail.

With condition_channels > 0 (the `universal` model, as SRMD does) the degradation is an input too:
a vector per image (probe FWHM x and y in output pixels, scale, noise level; enhancer/universal.py)
stretched to constant planes and stacked with the map, so one network serves every probe, step
and dose instead of one network per condition.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ResidualBlock(nn.Module):
    def __init__(self, filters: int):
        super().__init__()
        self.conv1 = nn.Conv2d(filters, filters, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(filters)
        self.conv2 = nn.Conv2d(filters, filters, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(filters)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return x + self.bn2(self.conv2(y))


class ResidualEnhancer(nn.Module):
    """channels = 1 for an element-agnostic model, E for an element-joint one."""

    def __init__(self, channels: int = 1, blocks: int = 16, filters: int = 64, condition_channels: int = 0):
        super().__init__()
        self.args = dict(channels=channels, blocks=blocks, filters=filters)
        if condition_channels:  # only when used, so the shipped single-condition configs stay as they are
            self.args["condition_channels"] = condition_channels
        self.input_conv = nn.Conv2d(channels + condition_channels, filters, 3, padding=1)
        self.blocks = nn.Sequential(*[ResidualBlock(filters) for _ in range(blocks)])
        self.mid_conv = nn.Conv2d(filters, filters, 3, padding=1)
        self.output_conv = nn.Conv2d(filters, channels, 3, padding=1)
        nn.init.zeros_(self.output_conv.weight)  # start as the identity: output = input
        nn.init.zeros_(self.output_conv.bias)

    @property
    def condition_channels(self) -> int:
        return self.args.get("condition_channels", 0)

    def forward(self, x, condition=None):
        """x: (B, C, H, W) on the fine grid; condition: (B, K) when the network is conditioned."""
        inputs = x
        if self.condition_channels:
            planes = condition[:, :, None, None].to(x.dtype).expand(-1, -1, *x.shape[-2:])
            inputs = torch.cat([x, planes], 1)
        initial = F.relu(self.input_conv(inputs))
        residual = self.mid_conv(self.blocks(initial))
        return x + self.output_conv(initial + residual)

    @property
    def receptive_radius(self) -> int:
        """Pixels of context each output pixel sees on each side (one per 3x3 conv)."""
        return 2 * self.args["blocks"] + 3

    def flops_per_pixel(self) -> int:
        """Multiply-adds x 2 per output pixel, counted from the weights."""
        return 2 * sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Conv2d))


def upsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Coarse scan -> fine grid; align_corners=False puts each coarse pixel at its block's centre."""
    if scale == 1:
        return x
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


def fold_batchnorm(net: ResidualEnhancer) -> nn.Module:
    """The same network with each eval-mode BatchNorm folded into the conv before it.

    BN after a conv is an affine map per channel, so it merges into the conv's weights and bias:
    fewer memory passes at inference, identical results up to rounding.
    """
    net = net.eval()

    def merge(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
        fused = nn.Conv2d(conv.in_channels, conv.out_channels, 3, padding=1)
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused.weight.data = conv.weight.data * scale[:, None, None, None]
        fused.bias.data = (conv.bias.data - bn.running_mean) * scale + bn.bias.data
        return fused

    class FoldedBlock(nn.Module):
        def __init__(self, block: ResidualBlock):
            super().__init__()
            self.conv1 = merge(block.conv1, block.bn1)
            self.conv2 = merge(block.conv2, block.bn2)

        def forward(self, x):  # in place: inference only, and two tile-sized tensors fewer at once
            return self.conv2(F.relu_(self.conv1(x))).add_(x)

    folded = ResidualEnhancer(**net.args)
    folded.load_state_dict(net.state_dict())
    folded.blocks = nn.Sequential(*[FoldedBlock(b) for b in net.blocks])
    return folded.eval()
