"""A stand-in for the host's per-image RNG whose first draw is a ZS² noise sequence (paper §3).

A1111 draws a batch's initial noise with ``p.rng.next()``: one generator per image seed, honouring
variation seeds, seed resize and the CPU/GPU/NV source. :class:`VideoNoiseRNG` wraps that object.
Its first ``next()`` takes R draws from the wrapped RNG, so frame i's candidates come only from
frame i's own seed (the first being its ordinary noise), and turns them into the video's noise.
Later calls (per-step noise of ancestral samplers) go straight to the wrapped RNG.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

from zs2_lib.noise import NoiseChain, draws_needed, noise_chain
from zs2_lib.params import ZS2Params


class BatchRNG(Protocol):
    """What A1111's ``ImageRNG`` offers: ``next()`` gives ``[B, C, H, W]`` noise."""

    def next(self) -> torch.Tensor: ...


class VideoNoiseRNG:
    """Wraps a batch RNG; the first draw becomes the video's noise for frames ``first_frame + i``.

    Args:
        base: the host's RNG for this batch.
        params: the ZS² settings (noise model, λ/α schedules, search, solver, debias).
        first_frame: global index of the batch's first frame, so schedules hit the right frames.
        state: ``NoiseChain.state`` of the previous chunk, or None if the batch starts the video.

    After the first draw, :attr:`chain` holds the result (noise, α per frame, state to carry on).
    Every other attribute (``shape``, ``seeds``, ...) is the wrapped RNG's.
    """

    def __init__(self, base: BatchRNG, params: ZS2Params, *, first_frame: int = 0, state: Any = None) -> None:
        self.base = base
        self.params = params
        self.first_frame = first_frame
        self.state = state
        self.chain: NoiseChain | None = None

    def next(self) -> torch.Tensor:
        """The video noise on the first call, then the wrapped RNG's own draws."""
        if self.chain is not None:
            return self.base.next()
        params = self.params
        count = draws_needed(params.noise_model, params.search)
        draws = torch.stack([self.base.next() for _ in range(count)])
        frames = draws.shape[1]
        if params.noise_model == "dependency":
            strengths = params.lambdas(self.first_frame, frames)
        else:
            strengths = params.alphas(self.first_frame, frames)
        self.chain = noise_chain(
            params.noise_model, draws, strengths, state=self.state, solver=params.solver, debias=params.debias
        )
        return self.chain.noise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)
