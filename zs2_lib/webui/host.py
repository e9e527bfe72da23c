"""The webui as a run sees it: the only module of a run that reads A1111's ``modules``.

Features ask the host through :class:`A1111` (see :class:`zs2_lib.webui.run.Host`), so they can be
tested on a fake host and another webui needs only another adapter.
"""

from __future__ import annotations

from typing import Any

import torch
from modules import sd_samplers, shared


class A1111:
    """AUTOMATIC1111 stable-diffusion-webui v1.10."""

    def unet(self) -> torch.nn.Module:
        """The UNet A1111 samples with right now (it changes with refiner and hires checkpoints)."""
        return shared.sd_model.model.diffusion_model

    def is_edit_model(self) -> bool:
        """An InstructPix2Pix model, whose CFG batch has an image-uncond block."""
        return shared.sd_model.cond_stage_key == "edit"

    def cut_short(self) -> bool:
        """Whether the user pressed Interrupt or Skip during the current batch."""
        return bool(shared.state.interrupted or shared.state.skipped)

    def option(self, key: str, default: Any = None) -> Any:
        """A setting's current value (its default if never set), or ``default`` if no such setting."""
        return getattr(shared.opts, key, default)

    def brownian_sampler(self, name: str) -> bool:
        """Whether the sampler of that name draws its noise from Brownian trees (the SDE samplers)."""
        config = sd_samplers.find_sampler_config(name)
        return config is not None and bool(config.options.get("brownian_noise", False))

    def empty_cond(self) -> torch.Tensor:
        """The empty prompt's token embeddings (77 × width), which A1111 pads conds of unequal length with."""
        empty = shared.sd_model.cond_stage_model_empty_prompt
        return empty[0] if empty.dim() == 3 else empty
