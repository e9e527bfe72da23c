"""Dependency noise (paper §3) through ``p.rng``: every batch's initial and per-step noise, both passes.

A1111 draws a batch's initial noise with ``p.rng.next()`` and builds a new ``p.rng`` for every batch;
this feature wraps it in ``process_batch`` (:class:`~zs2_lib.frame_rng.VideoNoiseRNG`) and, for
hires fix, rebuilds the second pass's fresh noise on the same chain, in place. Each pass's chain is
carried from chunk to chunk, so a chunked video gets the noise of one batch.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

import torch

from zs2_lib.frame_rng import VideoNoiseRNG
from zs2_lib.webui.run import Feature, Run


class InitialNoise(Feature):
    """``p.rng`` wrapped per batch and per pass; the chains carried between chunks."""

    def __init__(self) -> None:
        self.passes: dict[bool, PassNoise] = {}

    def install(self, run: Run) -> None:
        run.undo.callback(self.passes.clear)

    def batch(self, run: Run) -> None:
        if run.position.chunk == 0:
            self.passes.clear()  # a new video starts fresh
        rng = self._pass(hires=False).rng(run.p.rng, run, run.position.first_frame)
        run.set_attribute(run.p, "rng", rng)

    def sampling(self, run: Run, noise: torch.Tensor) -> None:
        """Hires fix: its fresh noise follows the same dependency chain, edited in place."""
        if not getattr(run.p, "is_hr_pass", False):
            return
        if run.p.rng is self._pass(hires=True).last:
            return  # Forge main announces its hires pass twice, with the same noise: chained already
        rng = self._pass(hires=True).rng(run.p.rng, run, run.position.first_frame)
        noise.copy_(rng.start(noise.clone()))
        run.set_attribute(run.p, "rng", rng)

    def carried(self) -> Iterable[torch.Tensor]:
        for noise in self.passes.values():
            yield from noise.step_state.values()
            if noise.state is not None:
                yield noise.state

    def _pass(self, *, hires: bool) -> PassNoise:
        return self.passes.setdefault(hires, PassNoise())


class PassNoise:
    """The noise chain of one sampling pass (first pass or hires), carried from chunk to chunk."""

    def __init__(self) -> None:
        self.state: torch.Tensor | None = None
        self.step_state: dict[Hashable, torch.Tensor] = {}
        self._last: VideoNoiseRNG | None = None

    @property
    def last(self) -> VideoNoiseRNG | None:
        """The RNG of this pass's latest chunk."""
        return self._last

    def rng(self, base: Any, run: Run, first_frame: int) -> VideoNoiseRNG:
        """A new RNG for this pass of the next chunk, chained to the previous chunk's.

        The host's per-image draw lets the search draw frame by frame (memory independent of R).
        """
        if self._last is not None and self._last.chain is not None:
            self.state = self._last.chain.state
        self._last = VideoNoiseRNG(
            base,
            run.params,
            first_frame=first_frame,
            state=self.state,
            step_state=self.step_state,
            frame_draw=run.host.frame_draw(base),
        )
        return self._last
