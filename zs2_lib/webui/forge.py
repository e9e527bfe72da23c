"""The Forge adapter: Stable Diffusion WebUI Forge (``backend/``) and Forge Classic (``ldm_patched``).

Both Forges run A1111's processing, scripts, ``p.rng`` and samplers, so noise, chunks, hires fix,
videos and infotext work as in A1111 through :class:`~zs2_lib.webui.host.A1111`. Two things differ:

* the UNet is ``sd_model.forge_objects.unet.model.diffusion_model``;
* the CFG batch (``calc_cond_uncond_batch``) is whole chunks of the batch's frames, one per
  condition, uncond first, named in ``transformer_options["cond_or_uncond"]`` that every UNet call
  receives; no uncond chunk at CFG scale 1, and chunks may run in separate UNet calls. Forge never
  fires ``on_cfg_denoised``. :class:`ForgeMomentum` therefore reads each UNet call's own layout
  (:func:`zs2_lib.cfg_layout.chunked_layout`) instead of A1111's CFG row order.

An attn1 *replacement* registered by another extension (``set_model_attn1_replace``,
``set_model_replace_all``) bypasses attn1's forward and so the momentum hooks; the run is refused
(HTTP 422) at its first UNet call, before anything is computed, naming the replaced blocks. An attn1
*patch* that sets ``value`` is followed: the value is mixed as the context is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from modules import shared

from zs2_lib.cfg_layout import ChunkCounter, chunked_layout
from zs2_lib.names import PREFIX, logger
from zs2_lib.webui.compat import forge_variant
from zs2_lib.webui.errors import RequestError
from zs2_lib.webui.features.momentum import Momentum
from zs2_lib.webui.host import A1111
from zs2_lib.webui.run import Run


class Forge(A1111):
    """Forge main or Forge Classic (``variant`` says which)."""

    def __init__(self, variant: str) -> None:
        self.variant = variant

    def unet(self) -> torch.nn.Module:
        """The UNet module Forge samples with (shared by every clone of its UNet patcher)."""
        return shared.sd_model.forge_objects.unet.model.diffusion_model

    def is_edit_model(self) -> bool:
        return getattr(shared.sd_model, "cond_stage_key", None) == "edit"

    def momentum(self, *, offload: bool) -> Momentum:
        return ForgeMomentum(offload=offload)


def webui_host() -> A1111:
    """The adapter of the webui running this extension: :class:`Forge` in a Forge, else :class:`A1111`."""
    variant = forge_variant()
    return A1111() if variant is None else Forge(variant)


def attn1_replacements(transformer_options: Mapping[str, Any]) -> list[Any]:
    """The blocks whose attn1 another extension replaced (their attn1 forward never runs)."""
    replaced = (transformer_options.get("patches_replace") or {}).get("attn1") or {}
    return sorted(replaced, key=repr)


class ForgeMomentum(Momentum):
    """Temporal momentum with each UNet call's rows read from Forge's ``cond_or_uncond``.

    Streams are ``(pass, evaluation, kind, k)``: the k-th uncond or cond chunk of the evaluation-th
    CFG evaluation of the pass, so the same chunk of the next video chunk continues it exactly.
    """

    def install(self, run: Run) -> None:
        super().install(run)
        self._run = run
        self._tag: tuple[bool, int] | None = None
        self._counter = ChunkCounter()

    def batch(self, run: Run) -> None:
        super().batch(run)
        self._tag = None

    def sampling(self, run: Run, noise: torch.Tensor) -> None:
        super().sampling(run, noise)
        self._tag = None

    def evaluation(self, run: Run, params: Any) -> None:
        """A CFG evaluation starts (``on_cfg_denoiser``): its UNet calls count chunks afresh."""
        if not self.active:
            return
        self._tag = self._begin_evaluation(run)
        self._counter = ChunkCounter()

    def evaluated(self, run: Run) -> None:
        super().evaluated(run)
        self._tag = None

    def _on_unet_call(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        """This call's layout from its ``transformer_options``; calls outside an evaluation pass through."""
        self.momentum.layout = None
        options = kwargs.get("transformer_options") or {}
        marks = options.get("cond_or_uncond")
        if self._tag is None or marks is None:
            return
        replaced = attn1_replacements(options)
        if replaced:
            shown = ", ".join(map(str, replaced[:3])) + (", …" if len(replaced) > 3 else "")
            raise RequestError(
                f"{PREFIX} another extension replaces self-attention (attn1) in {len(replaced)} "
                f"block(s) ({shown}), so ZS²'s temporal momentum cannot act there; turn that extension "
                "off for ZS² videos (in Forge: Self-Attention Guidance, StyleAlign, reference "
                "preprocessors) or set Temporal momentum μ (mu) to 0"
            )
        x = args[0] if args else kwargs["x"]
        frames = int(self._run.p.batch_size)
        if x.shape[0] != len(marks) * frames:
            logger.warning(
                "%s UNet call of %d rows for %d chunks of %d frames; momentum off for this call",
                PREFIX,
                x.shape[0],
                len(marks),
                frames,
            )
            return
        self.momentum.layout = chunked_layout(
            marks,
            frames,
            first_frame=self._run.position.first_frame,
            counter=self._counter,
            tag=self._tag,
        )
