"""A stand-in for the host's per-image RNG whose first draw is a ZS² noise sequence (paper §3).

A1111 draws a batch's initial noise with ``p.rng.next()``: one generator per image seed, honouring
variation seeds, seed resize and the CPU/GPU/NV source. :class:`VideoNoiseRNG` wraps that object.
Its first ``next()`` takes R draws from the wrapped RNG, so frame i's candidates come only from
frame i's own seed (the first being its ordinary noise), and turns them into the video's noise.
Given the host's per-frame draw (one image's generator), the dependency model's search draws and
scores each frame's candidates as it reaches that frame, so its memory does not grow with R.
Later calls are the per-step noise of ancestral samplers, chained across frames or passed through;
:meth:`VideoNoiseRNG.follow_chain` chains other per-frame noise (SDE samplers' Brownian trees).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import Any, Protocol

import torch

from zs2_lib.noise import (
    MODELS,
    NoiseChain,
    dependency_chain_frames,
    draws_needed,
    noise_chain,
    progressive_chain,
)
from zs2_lib.params import ZS2Params


def chains_step_noise(params: ZS2Params) -> bool:
    """Whether samplers' per-step noise follows the frames' chain (else it is used as drawn)."""
    return params.step_noise == "dependent" and MODELS[params.noise_model].chains


class BatchRNG(Protocol):
    """What A1111's ``ImageRNG`` offers: ``next()`` gives ``[B, C, H, W]`` noise."""

    def next(self) -> torch.Tensor: ...


class VideoNoiseRNG:
    """Wraps a batch RNG; the first draw becomes the video's noise for frames ``first_frame + i``.

    Args:
        base: the host's RNG for this batch.
        params: the ZS² settings (noise model, λ/α schedules, search, solver, debias, step noise).
        first_frame: global index of the batch's first frame, so schedules hit the right frames.
        state: ``NoiseChain.state`` of the previous chunk, or None if the batch starts the video.
        step_state: per-step noise of the previous chunk's last frame, by draw number (filled in
            by this object for the next chunk); None starts empty.
        frame_draw: ``frame_draw(i)`` is the next draw of image i's own generator (what ``next()``
            stacks for image i), so the search can draw frame by frame; None draws whole batches.

    After the first draw, :attr:`chain` holds the result (noise, α per frame, state to carry on).
    Later draws are the samplers' per-step noise: with ``step_noise="dependent"`` (dependency and
    progressive models) draw k of frame i is ``√α_i z_{i-1} + √(1-α_i) z_i`` with the same α_i as
    the initial noise, chained across chunks; otherwise the wrapped RNG's own draw. Every other
    attribute (``shape``, ``seeds``, ...) is the wrapped RNG's.
    """

    def __init__(
        self,
        base: BatchRNG,
        params: ZS2Params,
        *,
        first_frame: int = 0,
        state: Any = None,
        step_state: dict[Hashable, torch.Tensor] | None = None,
        frame_draw: Callable[[int], torch.Tensor] | None = None,
    ) -> None:
        self.base = base
        self.params = params
        self.first_frame = first_frame
        self.state = state
        self.step_state = {} if step_state is None else step_state
        self.frame_draw = frame_draw
        self.chain: NoiseChain | None = None
        self.steps = 0

    def next(self) -> torch.Tensor:
        """The video noise on the first call, then per-step noise."""
        if self.chain is None:
            return self.start(self.base.next())
        return self._step_noise(self.base.next())

    def start(self, first: torch.Tensor) -> torch.Tensor:
        """The video noise from ``first`` (the batch's ordinary noise) and R - 1 further draws.

        Draw r of frame i is the r-th draw of frame i's own generator either way: ``next()`` draws
        one tensor per image per call, so stacking R calls and drawing R times per frame give the
        same values; the dependency search draws per frame when it can (memory independent of R).
        """
        params = self.params
        model = MODELS[params.noise_model]
        count = draws_needed(params.noise_model, params.search)
        schedule = params.lambda_ if model.strength == "lambda" else params.alpha
        strengths = schedule.values(self.first_frame, first.shape[0])
        if params.noise_model == "dependency":
            self.chain = dependency_chain_frames(
                first,
                self._further_draws(count - 1),
                strengths,
                prev=self.state,
                solver=params.solver,
                debias=params.debias,
            )
        else:
            draws = torch.stack([first, *(self.base.next() for _ in range(count - 1))])
            self.chain = noise_chain(
                params.noise_model,
                draws,
                strengths,
                state=self.state,
                solver=params.solver,
                debias=params.debias,
            )
        return self.chain.noise

    def _further_draws(self, count: int) -> Callable[[int], Iterator[torch.Tensor]]:
        """Frame i → its ``count`` further candidates, from its generator (or from whole batches)."""
        frame_draw = self.frame_draw
        if frame_draw is not None:
            return lambda index: (frame_draw(index) for _ in range(count))
        batches = [self.base.next() for _ in range(count)]  # no per-image access: R - 1 batches
        return lambda index: (batch[index] for batch in batches)

    def follow_chain(self, draw: torch.Tensor, key: Hashable) -> torch.Tensor:
        """Per-frame standard noise ``draw`` (``[F, ...]``) chained across frames with the frames' α.

        Frame i becomes ``√α_i z_{i-1} + √(1-α_i) z_i`` (still standard normal); frame 0 chains to
        the previous chunk's last frame of the same ``key`` (the draw's place in the sampling run).
        """
        chained = progressive_chain(draw[None], self.chain.alphas.tolist(), prev=self.step_state.get(key))
        self.step_state[key] = chained.state
        return chained.noise

    def _step_noise(self, draw: torch.Tensor) -> torch.Tensor:
        """Per-step noise: chained with the frames' α (paper §3's dependency, per step), or as drawn."""
        if not chains_step_noise(self.params):
            return draw
        key, self.steps = self.steps, self.steps + 1
        return self.follow_chain(draw, key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)
