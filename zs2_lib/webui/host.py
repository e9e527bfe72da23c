"""The webui as a run sees it: the only module of a run that reads A1111's ``modules``.

Features ask the host through :class:`A1111` (see :class:`zs2_lib.webui.run.Host`), so they can be
tested on a fake host and another webui needs only another adapter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from modules import rng, sd_samplers, shared

MISSING = object()
"""A setting with no stored value (its default applies)."""


class A1111:
    """AUTOMATIC1111 stable-diffusion-webui v1.10."""

    def unet(self) -> torch.nn.Module:
        """The UNet A1111 samples with right now (it changes with refiner and hires checkpoints)."""
        return shared.sd_model.model.diffusion_model

    def is_edit_model(self) -> bool:
        """An InstructPix2Pix model, whose CFG batch has an image-uncond block."""
        return shared.sd_model.cond_stage_key == "edit"

    def cut_short(self) -> str | None:
        """ "Interrupt" or "Skip" if the user pressed it during the current batch, else None."""
        if shared.state.interrupted:
            return "Interrupt"
        if shared.state.skipped:
            return "Skip"
        return None

    def option(self, key: str, default: Any = None) -> Any:
        """A setting's current value (its default if never set), or ``default`` if no such setting."""
        return getattr(shared.opts, key, default)

    def brownian_sampler(self, name: str) -> bool:
        """Whether the sampler of that name draws its noise from Brownian trees (the SDE samplers)."""
        config = sd_samplers.find_sampler_config(name)
        return config is not None and bool(config.options.get("brownian_noise", False))

    def frame_draw(self, image_rng: Any) -> Callable[[int], torch.Tensor] | None:
        """Image i's next draw alone, as ``ImageRNG.next()`` would draw it (after its first call).

        None for an RNG that is not A1111's own (another extension's wrapper): then whole batches.
        """
        if type(image_rng) is not rng.ImageRNG:
            return None

        def draw(index: int) -> torch.Tensor:
            noise = rng.randn_without_seed(image_rng.shape, generator=image_rng.generators[index])
            return noise.to(shared.device)

        return draw

    def set_option(self, key: str, value: Any) -> None:
        """Put a setting back as it was: ``value``, or its default when ``value`` is ``MISSING``."""
        if value is MISSING:
            shared.opts.data.pop(key, None)
        else:
            shared.opts.data[key] = value

    def stored_option(self, key: str) -> Any:
        """A setting's stored value (``MISSING`` when only its default applies)."""
        return shared.opts.data.get(key, MISSING)

    def empty_cond(self) -> torch.Tensor:
        """The empty prompt's token embeddings (77 × width), which A1111 pads conds of unequal length with."""
        empty = shared.sd_model.cond_stage_model_empty_prompt
        return empty[0] if empty.dim() == 3 else empty
