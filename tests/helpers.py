"""Tiny real-ldm UNets and a reference ZS² DDIM sampler for the core tests and benchmarks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from ldm.modules.diffusionmodules.openaimodel import UNetModel

from zs2_lib.attention import FrameLayout, momentum_attention
from zs2_lib.noise import noise_chain

CONTEXT_DIM = 32
TINY = {
    "model_channels": 32,
    "channel_mult": [1, 2],
    "num_res_blocks": 1,
    "attention_resolutions": [1, 2],
    "num_heads": 2,
    "context_dim": CONTEXT_DIM,
}
# The real SD 1.5 UNet config (v1-inference.yaml): 860 M parameters with random weights.
SD15 = {
    "model_channels": 320,
    "channel_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
    "attention_resolutions": [4, 2, 1],
    "num_heads": 8,
    "context_dim": 768,
}


def make_unet(config: dict | None = None, seed: int = 0, attn1_gain: float = 1.0) -> UNetModel:
    """An ldm UNetModel with random weights, in eval mode.

    ldm zero-initialises the output projections of ResBlocks, SpatialTransformers and the UNet
    itself, which would make attention irrelevant to the output: those are re-drawn here, and the
    output is rescaled to about unit std, like the A1111 test fixture does. ``attn1_gain`` scales
    attn1's output projection: at random init self-attention adds little to the residual stream,
    far less than in a trained model, so effects of temporal momentum are hard to see without it.
    """
    config = {**TINY, **(config or {})}
    torch.manual_seed(seed)
    unet = UNetModel(
        image_size=32,
        in_channels=4,
        out_channels=4,
        use_spatial_transformer=True,
        transformer_depth=1,
        use_checkpoint=False,
        legacy=False,
        **config,
    ).eval()
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in unet.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)) and not module.weight.any():
                module.weight.normal_(0.0, module.weight[0].numel() ** -0.5, generator=generator)
        for name, module in unet.named_modules():
            if name.endswith("attn1.to_out.0"):
                module.weight.mul_(attn1_gain)
        x = torch.randn(2, 4, 16, 16, generator=generator)
        context = torch.randn(2, 7, config["context_dim"], generator=generator)
        scale = float(unet(x, torch.tensor([999, 500]), context=context).std())
        unet.out[-1].weight.div_(scale)
        unet.out[-1].bias.div_(scale)
    return unet


def seeded_draws(seed: int, frames: int, candidates: int, shape: Sequence[int]) -> torch.Tensor:
    """``[R, F, *shape]`` draws: frame f's candidates come from its own generator, seed + f."""
    out = torch.empty(candidates, frames, *shape)
    for f in range(frames):
        generator = torch.Generator().manual_seed(seed + f)
        for r in range(candidates):
            out[r, f] = torch.randn(*shape, generator=generator)
    return out


def sd_alphas_cumprod(steps: int = 1000) -> torch.Tensor:
    """SD 1.x's scaled-linear schedule ᾱ_t (β from 0.00085 to 0.012)."""
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, steps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, 0)


@torch.no_grad()
def zs2_ddim(
    unet: UNetModel,
    noise: torch.Tensor,
    cond: torch.Tensor,
    uncond: torch.Tensor,
    *,
    mus: float | Sequence[float],
    steps: int = 10,
    cfg_scale: float = 3.0,
    first_frame: int = 0,
    state: dict | None = None,
) -> torch.Tensor:
    """Algorithm 1, line 20: deterministic DDIM (η = 0) with CFG over a UNet with TMA.

    ``noise`` is ``[F, 4, h, w]`` (x_T); cond and uncond are ``[1, tokens, dim]``. The batch is
    ``[cond frames, uncond frames]``, each its own momentum stream per step. Returns x_0
    ``[F, 4, h, w]``. For a chunk of a longer video, ``first_frame`` is its first frame's index and
    ``state`` the momentum state of the previous chunk (filled in for the next one).
    """
    frames = noise.shape[0]
    alphas = sd_alphas_cumprod()
    timesteps = torch.linspace(999, 0, steps).round().long()
    context = torch.cat([cond.expand(frames, -1, -1), uncond.expand(frames, -1, -1)])
    x = noise.double()
    with momentum_attention(unet, mus, state=state) as momentum:
        for i, t in enumerate(timesteps):
            momentum.layout = FrameLayout.blocks(
                [((i, "cond"), first_frame, frames), ((i, "uncond"), first_frame, frames)]
            )
            a_t = alphas[t]
            # The random UNet predicts x_0 (like a trained model, its output, not the noise, decides
            # the content); as ε it is (x_t - √ᾱ x̂_0) / √(1 - ᾱ).
            x0_c, x0_u = (
                unet(torch.cat([x, x]).float(), t.repeat(2 * frames), context=context).double().chunk(2)
            )
            x0_hat = x0_u + cfg_scale * (x0_c - x0_u)
            eps = (x - a_t.sqrt() * x0_hat) / (1 - a_t).sqrt()
            a_prev = alphas[timesteps[i + 1]] if i + 1 < steps else torch.tensor(1.0, dtype=torch.float64)
            x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return x.float()


def video_from_seed(
    unet: UNetModel,
    *,
    seed: int = 0,
    frames: int = 8,
    lam: float = 0.01,
    mu: float = 0.98,
    model: str = "dependency",
    shape: Sequence[int] = (4, 16, 16),
    steps: int = 10,
) -> torch.Tensor:
    """A ZS² video's x_0 latents from a seed, with a fixed random prompt embedding."""
    generator = torch.Generator().manual_seed(12345)
    cond = torch.randn(1, 7, CONTEXT_DIM, generator=generator)
    uncond = torch.randn(1, 7, CONTEXT_DIM, generator=generator)
    draws = seeded_draws(seed, frames, 10, shape)
    noise = noise_chain(model, draws, lam).noise
    return zs2_ddim(unet, noise, cond, uncond, mus=mu, steps=steps)


def frame_change(video: torch.Tensor) -> float:
    """Mean absolute difference between consecutive frames."""
    return float((video[1:] - video[:-1]).abs().mean())
