"""A1111's hooks and callbacks, dispatched to the run of the generation they belong to.

``scripts/zs2_video.py`` forwards each Script hook here; :func:`register_callbacks` adds the
callbacks. What happens lives in ``features/`` (one module per feature) and in ``output.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modules import script_callbacks

from zs2_lib.chunking import ChunkPlan
from zs2_lib.interpolation import factor_for, require_interpolator
from zs2_lib.names import FRAME_INFOTEXT_KEY, INFOTEXT_KEY, PREFIX, console
from zs2_lib.params import FIELD_BY_NAME, ParamError
from zs2_lib.script_args import params_from_args, wants_enabled
from zs2_lib.video import VideoDependencyError, require_encoders
from zs2_lib.webui import compat, output
from zs2_lib.webui.errors import RequestError
from zs2_lib.webui.features import img2img
from zs2_lib.webui.features.batch_plan import BatchPlan
from zs2_lib.webui.features.controlnet import ControlNetFrames
from zs2_lib.webui.features.encoding import Encoding
from zs2_lib.webui.features.frames import Frames
from zs2_lib.webui.features.noise import InitialNoise
from zs2_lib.webui.features.prompt_travel import PromptTravel
from zs2_lib.webui.features.refusal import Refusal
from zs2_lib.webui.features.sde import BrownianNoise
from zs2_lib.webui.forge import webui_host
from zs2_lib.webui.run import Feature, Run, active_runs, finish_stale_runs, run_of
from zs2_lib.webui.settings import OFFLOAD_OPTION, add_settings, over_caps

HOST = webui_host()


def video_features(host: Any) -> list[Feature]:
    """The features of a ZS² run, in the order their hooks run."""
    return [
        BatchPlan(),
        InitialNoise(),  # before BrownianNoise: the hires pass's p.rng must be in place
        host.momentum(offload=bool(host.option(OFFLOAD_OPTION, True))),
        BrownianNoise(),
        ControlNetFrames(),  # after InitialNoise: its refusal wraps the chunk's p.rng
        Frames(),
        Encoding(),  # after Frames: it streams the frames Frames keeps
        PromptTravel(),
    ]


def before_process(p: Any, args: Sequence[Any]) -> None:
    """Validate the settings and start the run (or a run that refuses them at the first noise draw)."""
    finish_stale_runs()
    try:
        params = params_from_args(args)
    except ParamError as error:
        if wants_enabled(args):
            _refuse(p, RequestError(str(error)))
        return
    if not params.enabled:
        return
    if getattr(p, "txt2img_upscale", False):
        console("off for the gallery's Upscale button (one image, not a video)")
        return
    problem = over_caps(params, HOST.option)
    if problem is not None:
        _refuse(p, RequestError(problem))
        return
    try:
        require_encoders(params.formats)
        if factor_for(params.fps, params.interpolate, params.target_fps) != 1:  # rife: weights found, loaded
            require_interpolator(
                params.interpolator,
                HOST.interpolator_folders(),
                HOST.device(),
                field=FIELD_BY_NAME["interpolator"].called,
            )
    except VideoDependencyError as error:  # refuse before sampling rather than lose the video after
        _refuse(p, RequestError(f"{PREFIX} {error}", status_code=500))
        return
    except ParamError as error:
        _refuse(p, RequestError(str(error)))
        return
    features = video_features(HOST)
    if img2img.is_img2img(p):
        try:
            params, source = img2img.resolve(p, params, _given_names(args))
        except ParamError as error:
            _refuse(p, RequestError(str(error)))
            return
        features.insert(1, img2img.Img2ImgFrames(source))  # after BatchPlan has set the batch size
    plan = ChunkPlan(params.frames, params.chunk, videos=max(1, int(p.n_iter)))
    Run(p, HOST, features, params=params, plan=plan).start()
    if plan.chunks > 1:
        console(f"{params.frames} frames in {plan.chunks} chunks of {plan.batch_size}")


def _given_names(args: Sequence[Any]) -> frozenset[str]:
    """The names a request set explicitly: a dict arg's keys (the UI's positional values set all)."""
    return frozenset(args[0]) if args and isinstance(args[0], Mapping) else frozenset()


def _refuse(p: Any, error: RequestError) -> None:
    """Refuse the run: an API client gets the error's status code, the page the message (no traceback)."""
    print(error.detail)
    page = not getattr(p, "is_api", False)
    Run(p, HOST, [Refusal(error, error.detail, quietly=page)]).start()


def process(p: Any) -> None:
    """Record the settings in the infotext; each frame's names its index and the video's seeds.

    A1111 writes frame k's own seed (seed + k); ZS² writes the video's, so "Send to txt2img" or an API
    ``infotext`` from any frame regenerates the whole video, and ``ZS2 frame`` says which frame it is.
    """
    run = run_of(p)
    if run is not None and run.params is not None:
        p.extra_generation_params[INFOTEXT_KEY] = run.params.to_infotext()
        plan = run.plan

        def frame_of(index: int) -> tuple[int, int]:
            """(index of the video's first image, frame) of an image index (create_infotext's ``index``)."""
            batch, position = divmod(int(index), plan.batch_size)
            video, _, first = plan.locate(batch)
            return plan.first_image(video), first + position

        def frame(index: int = 0, **_: Any) -> int:
            return frame_of(index)[1]

        def seed(index: int = 0, all_seeds: Sequence[int] = (), **_: Any) -> int | None:
            first = frame_of(index)[0]
            return int(all_seeds[first]) if first < len(all_seeds) else None

        def subseed(index: int = 0, all_subseeds: Sequence[int] = (), **_: Any) -> int | None:
            first = frame_of(index)[0]
            if not getattr(p, "subseed_strength", 0) or first >= len(all_subseeds):
                return None  # A1111 writes no variation seed then either
            return int(all_subseeds[first])

        p.extra_generation_params.update({"Seed": seed, "Variation seed": subseed, FRAME_INFOTEXT_KEY: frame})


def process_before_every_sampling(p: Any, noise: Any) -> None:
    """A sampling pass starts (hires fix: a second one)."""
    run = run_of(p)
    if run is not None:
        run.emit("sampling", noise)


def process_batch(p: Any, batch_number: int) -> None:
    """A batch (chunk) starts, before its noise is drawn."""
    run = run_of(p)
    if run is not None:
        run.begin_batch(batch_number)


def capture_frame(p: Any, image: Any) -> None:
    """A frame is finished."""
    run = run_of(p)
    if run is not None:
        run.emit("frame", image)


def postprocess(p: Any, processed: Any) -> None:
    """Write the videos, show them, attach them to API responses, and undo everything."""
    run = run_of(p)
    if run is None:
        return
    try:
        if run.params is not None:
            output.deliver(run, processed)
    finally:
        run.finish()


def _on_cfg_denoiser(params: script_callbacks.CFGDenoiserParams) -> None:
    run = run_of(getattr(params.denoiser, "p", None))
    if run is not None:
        run.emit("evaluation", params)


def _on_cfg_denoised(params: script_callbacks.CFGDenoisedParams) -> None:
    for run in active_runs():
        run.emit("evaluated")


def register_callbacks() -> None:
    """Register the module-level callbacks once (A1111 clears all callbacks on script reload).

    Named where the webui names callbacks (A1111, Forge main); Forge Classic's take no name.
    """
    named = {"name": "zs2_video"} if compat.callback_names(script_callbacks) else {}
    for register, callback in (
        (script_callbacks.on_cfg_denoiser, _on_cfg_denoiser),
        (script_callbacks.on_cfg_denoised, _on_cfg_denoised),
        (script_callbacks.on_script_unloaded, finish_stale_runs),
        (script_callbacks.on_ui_settings, add_settings),
    ):
        script_callbacks.remove_callbacks_for_function(callback)
        register(callback, **named)
