"""SDE samplers' Brownian-tree noise chained across frames like ``p.rng``'s (paper §3 applied per step).

A1111 gives these samplers one Brownian tree per image seed (``create_noise_sampler``), which
bypasses ``p.rng``. Wrapped on each pass's sampler object only, each draw of the trees is chained
with the frames' α; it is standard normal per frame, and stays so.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

from zs2_lib.frame_rng import VideoNoiseRNG, chains_step_noise
from zs2_lib.names import PREFIX, console
from zs2_lib.webui.run import Feature, Run

_ATTRIBUTE = "create_noise_sampler"


class BrownianNoise(Feature):
    """Chain the SDE samplers' noise, or say why it cannot be chained."""

    def install(self, run: Run) -> None:
        """SDE samplers whose noise ZS² cannot chain (independent per frame, or batch-wide): say so."""
        p = run.p
        if chains_step_noise(run.params) and not run.host.option("no_dpmpp_sde_batch_determinism", False):
            return
        names = {
            p.sampler_name,
            getattr(p, "hr_sampler_name", None) if getattr(p, "enable_hr", False) else None,
        }
        for name in filter(None, names):
            if run.host.brownian_sampler(name):
                message = (
                    f"{name} draws its per-step noise independently for every frame (Brownian trees "
                    "seeded per image), so frames differ more; DDIM, Euler, DPM++ 2M or UniPC keep them "
                    "consistent"
                )
                console(message)
                p.comment(f"{PREFIX} {message}")

    def sampling(self, run: Run, noise: torch.Tensor) -> None:
        sampler = run.p.sampler
        rng = run.p.rng
        config = getattr(sampler, "config", None)
        if not isinstance(rng, VideoNoiseRNG) or not chains_step_noise(rng.params) or config is None:
            return
        if not config.options.get("brownian_noise", False) or _ATTRIBUTE in vars(sampler):
            return
        original = getattr(sampler, _ATTRIBUTE)
        draws = itertools.count()

        def create_noise_sampler(*args: Any, **kwargs: Any) -> Any:
            trees = original(*args, **kwargs)
            if trees is None:  # opts.no_dpmpp_sde_batch_determinism: k-diffusion's own batch-wide tree
                return None
            return lambda sigma, sigma_next: rng.follow_chain(trees(sigma, sigma_next), ("sde", next(draws)))

        run.set_attribute(sampler, _ATTRIBUTE, create_noise_sampler)
