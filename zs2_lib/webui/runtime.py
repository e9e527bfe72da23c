"""One ZS² generation inside A1111: noise, attn1 momentum, the CFG row cursor, and undo on every path.

Nothing here touches the host unless a ZS² generation is running. A run installs:

* ``p.rng`` wrapped per batch (:class:`~zs2_lib.frame_rng.VideoNoiseRNG`), so the batch's initial
  noise is the video's dependency noise (paper §3);
* instance pre-hooks on every attn1 of the current UNet plus one on the UNet itself, which hands
  each UNet call the rows of the evaluation layout it gets (the row cursor); the layout is built
  in ``on_cfg_denoiser`` and dropped in ``on_cfg_denoised``, so UNet calls outside the CFG
  denoiser pass through untouched (paper §4, DESIGN.md §3);
* a per-instance wrap of ``p.close()``, which A1111's ``closing(p)`` calls after success and after
  exceptions alike.

Everything is removed by :meth:`ZS2Run.finish`, called from ``postprocess``, from the ``p.close``
wrap, at the start of the next generation (stale runs) and on script unload.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Hashable
from typing import Any

import torch
from fastapi import HTTPException
from modules import script_callbacks, shared

from zs2_lib.attention import FrameLayout, MomentumHooks, TemporalMomentum
from zs2_lib.cfg_layout import denoiser_layout
from zs2_lib.chunking import ChunkPlan
from zs2_lib.frame_rng import VideoNoiseRNG, chains_step_noise
from zs2_lib.params import ZS2Params
from zs2_lib.script_args import InputError
from zs2_lib.webui.settings import add_settings

logger = logging.getLogger("zs2_video")
PREFIX = "ZS² Video:"

_RUNS: set[ZS2Run] = set()


def current_unet() -> torch.nn.Module:
    """The UNet A1111 samples with right now (it changes with refiner and hires checkpoints)."""
    return shared.sd_model.model.diffusion_model


class RequestError(InputError, HTTPException):
    """A ZS² run that cannot start, as A1111's API reports known errors (no traceback).

    HTTP 422 for invalid settings (the default), 500 for a missing dependency of the server.
    """

    def __init__(self, message: str, status_code: int = 422) -> None:
        InputError.__init__(self, message)
        HTTPException.__init__(self, status_code=status_code, detail=message)

    def __str__(self) -> str:
        return self.detail


class RefusingRNG:
    """Takes the place of ``p.rng`` when the ZS² settings are invalid: the first draw raises.

    Script hooks cannot stop a generation (A1111 catches and logs their exceptions); the first
    noise draw is the earliest point whose exception reaches the user (UI error box, API status
    422), before any sampling.
    """

    def __init__(self, base: Any, error: Exception) -> None:
        self.base = base
        self.error = error

    def next(self) -> torch.Tensor:
        raise self.error

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)


class ZS2Run:
    """The state of one ZS² generation (one ``p``): chunks, noise RNGs, momentum, hooks, frames.

    Args:
        p: A1111's processing object.
        params: the validated settings.
        plan: how the videos are laid over A1111 batches (``p.batch_size`` and ``p.n_iter``).
        offload: keep the attention state carried between chunks on the CPU (a video of one chunk
            carries nothing, so its state stays where it is computed).
    """

    def __init__(self, p: Any, params: ZS2Params, plan: ChunkPlan, *, offload: bool = False) -> None:
        self.p = p
        self.params = params
        self.plan = plan
        offload = offload and plan.chunks > 1
        self.momentum = TemporalMomentum(params.mu.at, state_device="cpu" if offload else None)
        self.hooks: MomentumHooks | None = None
        self.frames: dict[int, list[Any]] = {}  # PIL images A1111 also returns: no copies
        self.incomplete: set[int] = set()
        self._passes: dict[bool, _PassNoise] = {}
        self._batch = (0, 0, 0)
        self._evaluations = 0
        self.peak_carried = 0
        self._unet_handle: torch.utils.hooks.RemovableHandle | None = None
        self._layout: FrameLayout | None = None
        self._cursor = 0
        self._close: Any = None
        self._samplers: list[Any] = []
        self.finished = False

    # lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Register the run on ``p`` and wrap ``p.close`` so any exit path ends it."""
        p = self.p
        p._zs2_run = self
        _RUNS.add(self)
        original = p.close

        def close(*args: Any, **kwargs: Any) -> Any:
            try:
                self.finish()
            finally:
                result = original(*args, **kwargs)
            return result

        self._close = close
        p.close = close

    def finish(self) -> None:
        """Remove every hook and wrap, drop carried state; safe to call twice and from any path."""
        self.detach()
        self._layout = None
        self.momentum.layout = None
        self.momentum.state.clear()
        self._passes.clear()
        self.frames.clear()
        for sampler in self._samplers:
            vars(sampler).pop("create_noise_sampler", None)  # back to the class's method
        self._samplers.clear()
        p = self.p
        if getattr(p, "_zs2_run", None) is self:
            del p._zs2_run
        if self._close is not None and vars(p).get("close") is self._close:
            del p.close  # back to the class's own close; a wrapper set on top of ours stays and chains
        self._close = None
        _RUNS.discard(self)
        self.finished = True

    def attach(self, unet: torch.nn.Module) -> None:
        """Hook attn1 of ``unet`` (and the row cursor on the UNet), replacing hooks on an older UNet."""
        self.detach()
        self.hooks = MomentumHooks(unet, self.momentum)
        self._unet_handle = unet.register_forward_pre_hook(self._on_unet_call, with_kwargs=True)

    def detach(self) -> None:
        """Remove the hooks from the UNet they are on."""
        if self.hooks is not None:
            self.hooks.remove()
            self.hooks = None
        if self._unet_handle is not None:
            self._unet_handle.remove()
            self._unet_handle = None

    # per batch (chunk) -----------------------------------------------------------------------

    def begin_batch(self, batch_number: int) -> None:
        """Wrap this batch's ``p.rng``; a video's first chunk starts fresh, later ones carry on."""
        video, chunk, first_frame = self.plan.locate(batch_number)
        self._batch = (video, chunk, first_frame)
        self.peak_carried = max(self.peak_carried, self.carried_bytes())
        if chunk == 0:
            self._passes.clear()
            self.momentum.state.clear()
        self.p.rng = self._noise(is_hr_pass=False).rng(self.p.rng, self.params, first_frame)
        self._evaluations = 0

    def begin_hires(self, noise: torch.Tensor) -> None:
        """Hires fix: its fresh noise follows the same dependency chain, edited in place."""
        rng = self._noise(is_hr_pass=True).rng(self.p.rng, self.params, self._batch[2])
        noise.copy_(rng.start(noise.clone()))
        self.p.rng = rng
        self._evaluations = 0

    def chain_brownian_noise(self, sampler: Any) -> None:
        """SDE samplers: chain their per-frame Brownian-tree noise across frames like ``p.rng``'s.

        A1111 gives these samplers one Brownian tree per image seed (``create_noise_sampler``),
        which bypasses ``p.rng``. Wrapped on this pass's sampler object only, each draw of the tree
        is chained with the frames' α (it is standard normal per frame, and stays so).
        """
        rng = self.p.rng
        config = getattr(sampler, "config", None)
        if not isinstance(rng, VideoNoiseRNG) or not chains_step_noise(rng.params) or config is None:
            return
        if not config.options.get("brownian_noise", False) or "create_noise_sampler" in vars(sampler):
            return
        original = sampler.create_noise_sampler
        draws = itertools.count()

        def create_noise_sampler(*args: Any, **kwargs: Any) -> Any:
            trees = original(*args, **kwargs)
            if trees is None:  # opts.no_dpmpp_sde_batch_determinism: k-diffusion's own batch-wide tree
                return None
            return lambda sigma, sigma_next: rng.follow_chain(trees(sigma, sigma_next), ("sde", next(draws)))

        sampler.create_noise_sampler = create_noise_sampler
        self._samplers.append(sampler)

    def _noise(self, *, is_hr_pass: bool) -> _PassNoise:
        return self._passes.setdefault(is_hr_pass, _PassNoise())

    def capture(self, batch_number: int, image: Any) -> None:
        """Keep a finished frame (the PIL image A1111 is about to save and return) for its video.

        Frames of a chunk whose sampling was cut short (Interrupt, Skip) are half-denoised: the
        video leaves that chunk out.
        """
        video, _, first_frame = self.plan.locate(batch_number)
        if shared.state.interrupted or shared.state.skipped:
            self.incomplete.add(batch_number)
            return
        frames = self.frames.setdefault(video, [])
        if first_frame + p_index(self.p) < self.params.frames:
            frames.append(image)

    # per CFG evaluation ----------------------------------------------------------------------

    def begin_evaluation(self, params: script_callbacks.CFGDenoiserParams) -> None:
        """Map the rows of this evaluation's ``x_in`` to (stream, frame) and reset the cursor."""
        unet = current_unet()
        if self.hooks is None or self.hooks.model is not unet:
            self.attach(unet)
        denoiser = params.denoiser
        repeats = _repeats(denoiser, params)
        edit = shared.sd_model.cond_stage_key == "edit" and denoiser.image_cfg_scale not in (None, 1.0)
        tag = (bool(getattr(self.p, "is_hr_pass", False)), self._evaluations)
        self._evaluations += 1
        layout = denoiser_layout(repeats, first_frame=self._batch[2], uncond=True, image_uncond=edit, tag=tag)
        if params.x.shape[0] != len(layout):
            logger.warning(
                "%s CFG batch of %d rows for %d frames is not a layout ZS² knows; momentum off for this step",
                PREFIX,
                params.x.shape[0],
                len(repeats),
            )
            layout = None
        if self.plan.chunks == 1:
            self.momentum.state.clear()  # nothing to carry to a next chunk: keep memory flat
        self._layout = layout
        self._cursor = 0

    def end_evaluation(self) -> None:
        """After the UNet calls of an evaluation: further UNet calls pass through."""
        self._layout = None
        self.momentum.layout = None

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

    def carried_bytes(self) -> int:
        """Size of the state carried to the next chunk (attention contexts and noise)."""
        tensors = [t for _, t in self.momentum.state.values()]
        for noise in self._passes.values():
            tensors += list(noise.step_state.values())
            if noise.state is not None:
                tensors.append(noise.state)
        return sum(t.numel() * t.element_size() for t in tensors)


class _PassNoise:
    """The noise chain of one sampling pass (first pass or hires), carried from chunk to chunk."""

    def __init__(self) -> None:
        self.state: torch.Tensor | None = None
        self.step_state: dict[Hashable, torch.Tensor] = {}
        self._last: VideoNoiseRNG | None = None

    def rng(self, base: Any, params: ZS2Params, first_frame: int) -> VideoNoiseRNG:
        """A new RNG for this pass of the next chunk, chained to the previous chunk's."""
        if self._last is not None and self._last.chain is not None:
            self.state = self._last.chain.state
        self._last = VideoNoiseRNG(
            base, params, first_frame=first_frame, state=self.state, step_state=self.step_state
        )
        return self._last


def p_index(p: Any) -> int:
    """Index of the image being finished within its batch."""
    return int(getattr(p, "batch_index", 0))


def _repeats(denoiser: Any, params: script_callbacks.CFGDenoiserParams) -> list[int]:
    """Cond rows per frame (AND sub-prompts), from the sampler's multicond batch when it has one."""
    cond = getattr(getattr(denoiser, "sampler", None), "sampler_extra_args", {}).get("cond")
    batch = getattr(cond, "batch", None)
    if batch is not None:
        return [len(conds) for conds in batch]
    frames = params.x.shape[0] - params.text_cond.shape[0]
    return [params.text_cond.shape[0] // max(frames, 1)] * frames


def run_of(p: Any) -> ZS2Run | None:
    """The active run of a processing object, if it is a ZS² generation."""
    run = getattr(p, "_zs2_run", None)
    return run if isinstance(run, ZS2Run) and not run.finished else None


def finish_stale_runs() -> None:
    """End runs whose generation never reached postprocess or close (self-heal)."""
    for run in list(_RUNS):
        run.finish()


def _on_cfg_denoiser(params: script_callbacks.CFGDenoiserParams) -> None:
    run = run_of(getattr(params.denoiser, "p", None))
    if run is not None:
        run.begin_evaluation(params)


def _on_cfg_denoised(params: script_callbacks.CFGDenoisedParams) -> None:
    for run in list(_RUNS):
        run.end_evaluation()


def register_callbacks() -> None:
    """Register the module-level callbacks once (A1111 clears all callbacks on script reload)."""
    for register, callback in (
        (script_callbacks.on_cfg_denoiser, _on_cfg_denoiser),
        (script_callbacks.on_cfg_denoised, _on_cfg_denoised),
        (script_callbacks.on_script_unloaded, finish_stale_runs),
        (script_callbacks.on_ui_settings, add_settings),
    ):
        script_callbacks.remove_callbacks_for_function(callback)
        register(callback, name="zs2_video")
