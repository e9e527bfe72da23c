"""What each A1111 Script hook does for ZS² Video; ``scripts/zs2_video.py`` only forwards to these."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modules import sd_samplers, shared

from zs2_lib.chunking import ChunkPlan
from zs2_lib.frame_rng import chains_step_noise
from zs2_lib.params import ParamError, ZS2Params
from zs2_lib.script_args import params_from_args, wants_enabled
from zs2_lib.video import VideoDependencyError, require_encoders
from zs2_lib.webui import output
from zs2_lib.webui.runtime import PREFIX, RefusingRNG, RequestError, ZS2Run, finish_stale_runs, run_of
from zs2_lib.webui.settings import OFFLOAD_OPTION


def before_process(p: Any, args: Sequence[Any]) -> None:
    """Validate the settings, make the batch the video, override incompatible options, start the run."""
    finish_stale_runs()
    try:
        params = params_from_args(args)
    except ParamError as error:
        if wants_enabled(args):
            p._zs2_error = RequestError(str(error))
            print(error)
        return
    if not params.enabled:
        return
    if getattr(p, "txt2img_upscale", False):
        print(f"{PREFIX} off for the gallery's Upscale button (one image, not a video)")
        return
    try:
        require_encoders(params.formats)
    except VideoDependencyError as error:  # refuse before sampling rather than lose the video after
        p._zs2_error = RequestError(f"{PREFIX} {error}", status_code=500)
        print(p._zs2_error)
        return
    plan = ChunkPlan(params.frames, params.chunk, videos=max(1, int(p.n_iter)))
    p.batch_size = plan.batch_size
    p.n_iter = plan.batches
    p.do_not_save_grid = True  # the video takes the grid's place; a grid of hundreds of frames helps no one
    _override_incompatible(p)
    _warn_about_sde_samplers(p, params)
    offload = bool(shared.opts.data.get(OFFLOAD_OPTION, True))
    ZS2Run(p, params, plan, offload=offload).start()
    if plan.chunks > 1:
        print(f"{PREFIX} {params.frames} frames in {plan.chunks} chunks of {plan.batch_size}")


def _warn_about_sde_samplers(p: Any, params: ZS2Params) -> None:
    """SDE samplers whose Brownian noise ZS² cannot chain: independent per frame, or batch-wide."""
    if chains_step_noise(params) and not shared.opts.data.get("no_dpmpp_sde_batch_determinism", False):
        return
    names = {p.sampler_name, getattr(p, "hr_sampler_name", None) if getattr(p, "enable_hr", False) else None}
    for name in filter(None, names):
        config = sd_samplers.find_sampler_config(name)
        if config is not None and config.options.get("brownian_noise", False):
            message = (
                f"{PREFIX} {name} draws its per-step noise independently for every frame (Brownian trees "
                "seeded per image), so frames differ more; DDIM, Euler, DPM++ 2M or UniPC keep them "
                "consistent"
            )
            print(message)
            p.comment(message)


INCOMPATIBLE_SETTINGS = {
    "hypertile_enable_unet": False,
    "token_merging_ratio": 0.0,
    "token_merging_ratio_hr": 0.0,
    "token_merging_ratio_img2img": 0.0,
}
"""Settings turned off for a ZS² run: Hypertile retiles attn1's rows, token merging merges tokens per row."""


def _override_incompatible(p: Any) -> None:
    """Turn the incompatible settings off through ``p.override_settings`` (restored after the run)."""
    turned_off = [
        key
        for key in INCOMPATIBLE_SETTINGS
        if p.override_settings.get(key, getattr(shared.opts, key, None))  # the request's value wins
    ]
    for attribute in ("token_merging_ratio", "token_merging_ratio_hr"):
        if getattr(p, attribute, 0):
            setattr(p, attribute, 0.0)
            turned_off.append(attribute)
    if turned_off:
        p.override_settings.update({key: INCOMPATIBLE_SETTINGS[key] for key in turned_off})
        names = ", ".join(dict.fromkeys(turned_off))
        print(f"{PREFIX} turned off for this run (incompatible with temporal momentum): {names}")


def process(p: Any) -> None:
    """Record the settings in the infotext."""
    run = run_of(p)
    if run is not None:
        p.extra_generation_params["ZS2 Video"] = run.params.to_infotext()


def process_before_every_sampling(p: Any, noise: Any) -> None:
    """Hires fix: the second pass's fresh noise follows the chain; SDE samplers' noise too."""
    run = run_of(p)
    if run is None:
        return
    if getattr(p, "is_hr_pass", False):
        run.begin_hires(noise)
    run.chain_brownian_noise(p.sampler)


def process_batch(p: Any, batch_number: int) -> None:
    """Replace this batch's initial noise (or refuse it, if the settings were invalid)."""
    error = getattr(p, "_zs2_error", None)
    if error is not None:
        p.rng = RefusingRNG(p.rng, error)
        return
    run = run_of(p)
    if run is not None:
        run.begin_batch(batch_number)


def capture_frame(p: Any, image: Any) -> None:
    """Keep each finished frame for the video."""
    run = run_of(p)
    if run is not None:
        run.capture(p.iteration, image)


def postprocess(p: Any, processed: Any) -> None:
    """Write the videos, show them, attach them to API responses, and undo everything."""
    run = run_of(p)
    if run is None:
        return
    try:
        directory = output.video_directory(p)
        temporary = directory is None
        if temporary:
            directory = output.temporary_directory()
        try:
            saved = output.write_run_videos(p, run.params, run.plan, run.frames, processed, directory)
            if getattr(p, "is_api", False):
                output.attach_to_api_response(processed, saved)
            elif not temporary:
                output.show_in_results(processed, saved)
        except (OSError, VideoDependencyError) as error:  # disk full, no permission, encoder failure
            message = f"{PREFIX} the video could not be written: {error}"
            print(message)
            processed.comments = (processed.comments or "") + message + "\n"
        finally:
            if temporary:
                output.remove_directory(directory)
        if run.plan.chunks > 1:
            print(f"{PREFIX} state carried between chunks: {run.peak_carried / 2**20:.1f} MiB")
        if run.incomplete:
            cut = len(run.incomplete)
            print(f"{PREFIX} left out of the video: {cut} chunk(s) cut short by Interrupt or Skip")
    finally:
        run.finish()
