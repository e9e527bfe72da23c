"""Temporal momentum attention (paper §4, Eq. 2) on the current UNet, with the CFG row cursor.

Instance pre-hooks go on every attn1 of the UNet A1111 samples with, plus one on the UNet itself
that hands each UNet call the rows of the evaluation layout it gets (the row cursor). The layout
is built when a CFG evaluation starts (``on_cfg_denoiser``) and dropped when it ends
(``on_cfg_denoised``), so UNet calls outside the CFG denoiser pass through untouched. If the UNet
object changes (refiner, hires checkpoint) the hooks move to the new one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from zs2_lib.attention import FrameLayout, MomentumHooks, TemporalMomentum
from zs2_lib.cfg_layout import denoiser_layout
from zs2_lib.names import PREFIX, logger
from zs2_lib.webui.run import Feature, Run


class Momentum(Feature):
    """attn1 momentum for the run; its state carried per (pass, evaluation, layer, CFG stream).

    Args:
        offload: keep the state carried between chunks on the CPU (a video of one chunk carries
            nothing, so its state stays where it is computed).
    """

    def __init__(self, *, offload: bool = False) -> None:
        self.offload = offload
        self.momentum: TemporalMomentum | None = None
        self.hooks: MomentumHooks | None = None
        self._unet_handle: torch.utils.hooks.RemovableHandle | None = None
        self._layout: FrameLayout | None = None
        self._cursor = 0
        self._evaluations = 0
        self.active = True

    def install(self, run: Run) -> None:
        mu = run.params.mu
        self.active = not (mu.is_constant and mu.at(0) == 0.0)  # μ = 0 is plain self-attention: no hooks
        offload = self.offload and run.plan.chunks > 1
        self.momentum = TemporalMomentum(run.params.mu.at, state_device="cpu" if offload else None)
        run.undo.callback(self._forget)
        run.undo.callback(self._detach)

    def batch(self, run: Run) -> None:
        if run.position.chunk == 0:
            self.momentum.state.clear()  # a new video starts fresh
        self._evaluations = 0

    def sampling(self, run: Run, noise: torch.Tensor) -> None:
        if getattr(run.p, "is_hr_pass", False):
            self._evaluations = 0

    def evaluation(self, run: Run, params: Any) -> None:
        """Map the rows of this evaluation's ``x_in`` to (stream, frame) and reset the cursor."""
        if not self.active:
            return
        tag = self._begin_evaluation(run)
        denoiser = params.denoiser
        repeats = _repeats(denoiser, params)
        edit = run.host.is_edit_model() and denoiser.image_cfg_scale not in (None, 1.0)
        first_frame = run.position.first_frame
        layout = denoiser_layout(repeats, first_frame=first_frame, uncond=True, image_uncond=edit, tag=tag)
        if params.x.shape[0] != len(layout):
            logger.warning(
                "%s CFG batch of %d rows for %d frames is not a layout ZS² knows; momentum off for this step",
                PREFIX,
                params.x.shape[0],
                len(repeats),
            )
            layout = None
        self._layout = layout
        self._cursor = 0

    def _begin_evaluation(self, run: Run) -> tuple[bool, int]:
        """Hooks on the UNet sampling now; returns this CFG evaluation's tag ``(hires pass, index)``."""
        unet = run.host.unet()
        if self.hooks is None or self.hooks.model is not unet:
            self._attach(unet)
        tag = (bool(getattr(run.p, "is_hr_pass", False)), self._evaluations)
        self._evaluations += 1
        if run.plan.chunks == 1:
            self.momentum.state.clear()  # nothing to carry to a next chunk: keep memory flat
        return tag

    def evaluated(self, run: Run) -> None:
        """After the UNet calls of an evaluation: further UNet calls pass through."""
        self._layout = None
        self.momentum.layout = None

    def carried(self) -> Iterable[torch.Tensor]:
        return [] if self.momentum is None else [t for _, t in self.momentum.state.values()]

    def _attach(self, unet: torch.nn.Module) -> None:
        """Hook attn1 of ``unet`` (and the row cursor on the UNet), replacing hooks on an older UNet."""
        self._detach()
        self.hooks = MomentumHooks(unet, self.momentum)
        self._unet_handle = unet.register_forward_pre_hook(self._on_unet_call, with_kwargs=True)

    def _detach(self) -> None:
        """Remove the hooks from the UNet they are on (the undo of :meth:`_attach`)."""
        if self.hooks is not None:
            self.hooks.remove()
            self.hooks = None
        if self._unet_handle is not None:
            self._unet_handle.remove()
            self._unet_handle = None

    def _forget(self) -> None:
        """Drop the layout and the carried state."""
        self._layout = None
        self.momentum.layout = None
        self.momentum.state.clear()

    def _on_unet_call(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        """Give this UNet call the slice of the evaluation layout its rows are (the row cursor)."""
        layout = self._layout
        if layout is None:
            self.momentum.layout = None
            return
        x = args[0] if args else kwargs["x"]
        start, stop = self._cursor, self._cursor + x.shape[0]
        self._cursor = stop
        if stop > len(layout):
            logger.warning("%s unexpected UNet call of %d rows; left as is", PREFIX, x.shape[0])
            self.momentum.layout = None
            return
        self.momentum.layout = layout.slice(start, stop)


def _repeats(denoiser: Any, params: Any) -> list[int]:
    """Cond rows per frame (AND sub-prompts), from the sampler's multicond batch when it has one."""
    cond = getattr(getattr(denoiser, "sampler", None), "sampler_extra_args", {}).get("cond")
    batch = getattr(cond, "batch", None)
    if batch is not None:
        return [len(conds) for conds in batch]
    frames = params.x.shape[0] - params.text_cond.shape[0]
    return [params.text_cond.shape[0] // max(frames, 1)] * frames
