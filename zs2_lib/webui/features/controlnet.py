"""ControlNet per frame: each unit of a ZS² run that has a control video gets frame i's hint for frame i.

Which units: a unit named in ``control_videos``, a unit whose Batch tab names a folder, any enabled
unit without an image of its own when ``control_video`` is given, and, in an img2img run from a
source video without ``control_video``, any enabled unit without an image of its own: it takes the
source's frames (frame k for frame k) in img2img's resize mode, as ControlNet does with one init
image. Before processing, each of them is handed to ControlNet as an ordinary single-image unit
(its first control frame, in a copy written into ``p.script_args``), so ControlNet loads its model,
hooks the UNet and builds its ``ControlParams`` as usual, and its Batch mode does not turn the
video into separate generations. When a chunk starts, that chunk's frames go through the unit's own
preprocessor (ControlNet's own ``get_control``, the code that made the first frame's hint), giving
``[n, 3, H, W]`` hints (and the hires pass's) for that chunk only. A pre-hook on the UNet then
gives every UNet call exactly the hint rows of its latent rows, using the same CFG row layout as
temporal momentum (cond rows per frame and AND sub-prompt, then uncond rows; one call or several),
through the ``hint_cond`` setter, which drops ControlNet's cached hint. Chunked therefore equals
one batch, in every CFG layout.

Problems (no ControlNet, unreadable or short control videos, a unit type without an image hint)
are refused with HTTP 422 at the first noise draw, before sampling. ControlNet's ``external_code``
is imported lazily; only declared unit fields are set; every change is on the run's undo stack.
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch

from zs2_lib.attention import attn1_modules
from zs2_lib.cfg_layout import denoiser_layout
from zs2_lib.control_frames import ControlVideo, ControlVideoError, in_memory, open_control_video
from zs2_lib.names import CONTROL_INFOTEXT_KEY, PREFIX, console
from zs2_lib.params import FIELD_BY_NAME
from zs2_lib.webui.features.img2img import Img2ImgFrames
from zs2_lib.webui.features.momentum import Momentum
from zs2_lib.webui.features.momentum import _repeats as cond_repeats
from zs2_lib.webui.features.refusal import RefusingRNG
from zs2_lib.webui.run import Feature, Run

try:
    from zs2_lib.webui.errors import RequestError
except ImportError:  # no fastapi outside the webui (the CI tier): the same 422 error without HTTPException
    from zs2_lib.script_args import InputError as RequestError

EXTERNAL_CODE = ("internal_controlnet.external_code", "scripts.external_code")


def external_code() -> Any | None:
    """ControlNet's ``external_code`` module if the extension is loaded, else None (imported lazily)."""
    for name in EXTERNAL_CODE:
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "find_cn_script"):
            return module
    return None


@dataclass
class DrivenUnit:
    """An enabled unit fed from a control video: its index among all units and among the enabled ones."""

    index: int
    enabled_index: int
    field: str
    video: ControlVideo
    param: Any = None  # ControlNet's ControlParams of the unit
    low: torch.Tensor | None = None  # this chunk's hints, [n, C, H, W]
    high: torch.Tensor | None = None  # the hires pass's, or None


class ControlNetFrames(Feature):
    """One control frame per video frame for the run's ControlNet units."""

    def __init__(self) -> None:
        self.units: list[DrivenUnit] = []
        self.error: RequestError | None = None
        self._originals: dict[int, tuple[Any, Any]] = {}
        self._rows: list[int] | None = None
        self._cursor = 0
        self._handle: torch.utils.hooks.RemovableHandle | None = None
        self._unet: torch.nn.Module | None = None
        self._control_hooks: list[torch.utils.hooks.RemovableHandle] | None = None

    # before processing ----------------------------------------------------------------------

    def install(self, run: Run) -> None:
        params, p = run.params, run.p
        wanted = params.control_video is not None or params.control_videos is not None
        code = external_code()
        script = code.find_cn_script(p.scripts) if code is not None else None
        if script is None:
            if wanted:
                field = _named("control_video" if params.control_video is not None else "control_videos")
                self.error = RequestError(
                    f"{PREFIX} {field}: the ControlNet extension (sd-webui-controlnet) is not installed or "
                    "not loaded; accepted: a control video only with ControlNet"
                )
            return
        run.undo.callback(self._release)
        try:
            self._drive_units(run, code, script)
        except (ControlVideoError, ValueError) as error:
            self.error = RequestError(f"{PREFIX} {error}")
            return
        if wanted and not self.units:
            field = _named("control_video" if params.control_video is not None else "control_videos")
            self.error = RequestError(
                f"{PREFIX} {field}: no enabled ControlNet unit takes it; accepted: with at least one enabled "
                "unit that has no image of its own (or named in control_videos)"
            )
            return
        if self.units:
            names = "; ".join(f"unit {u.index}: {u.video.name}" for u in self.units)
            # the run's result, like the ZS² item of the infotext: it outlives the run on purpose
            p.extra_generation_params[CONTROL_INFOTEXT_KEY] = names
            console(f"ControlNet per frame: {names}")

    def _drive_units(self, run: Run, code: Any, script: Any) -> None:
        """Pick the driven units, open their control videos, and hand ControlNet first-frame copies."""
        params, p = run.params, run.p
        args = list(p.script_args_value)
        span = range(script.args_from, min(script.args_to, len(args)))
        slots = [i for i in span if _is_unit(args[i], code)]
        units = [code.to_processing_unit(args[i]) for i in slots]
        per_unit = params.control_videos or ()
        source = _img2img_video(run)
        if len(per_unit) > len(units):
            raise ControlVideoError(
                f"{_named('control_videos')}: {len(per_unit)} entries for {len(units)} ControlNet units; "
                "accepted: at most one entry (or null) per unit, in unit order"
            )
        enabled = 0
        for k, (slot, unit) in enumerate(zip(slots, units, strict=True)):
            entry = per_unit[k] if k < len(per_unit) else None
            if not unit.enabled:
                if entry is not None:
                    raise ControlVideoError(
                        f"{_named('control_videos', k)}: ControlNet unit {k} is not enabled"
                    )
                continue
            given = _source(unit, entry, k, params.control_video)
            if given is not None:
                field, value = given
                video = open_control_video(value, field=field)
            elif source is not None and not _has_image(unit):
                # as ControlNet does with img2img's single init image, in A1111's img2img resize mode
                field, video = "img2img source", source
                unit = copy.copy(unit)
                unit.resize_mode = code.resize_mode_from_value(getattr(p, "resize_mode", 0))
            else:
                enabled += 1
                continue
            note = video.check_length(params.frames, hold_last=params.hold_last, field=field)
            if note:
                console(note)
            args[slot] = _first_frame_unit(unit, video)
            self.units.append(DrivenUnit(k, enabled, field, video))
            enabled += 1
        if self.units:
            run.set_attribute(p, "script_args_value", type(p.script_args_value)(args))

    # per chunk ------------------------------------------------------------------------------

    def batch(self, run: Run) -> None:
        if self.error is None and run.params.control_momentum and self._control_hooks is None:
            self._hook_control_models(run)
        if self.error is None and self.units:
            try:
                self._chunk_hints(run)
            except (ControlVideoError, ValueError) as error:
                self.error = RequestError(f"{PREFIX} {error}")
        if self.error is not None:
            run.set_attribute(run.p, "rng", RefusingRNG(run.p.rng, self.error))

    def _chunk_hints(self, run: Run) -> None:
        """Preprocess this chunk's control frames through each unit's own preprocessor."""
        p, params = run.p, run.params
        script = external_code().find_cn_script(p.scripts)
        network = getattr(script, "latest_network", None)
        control_params = list(getattr(network, "control_params", None) or [])
        enabled_units = list(getattr(script, "enabled_units", None) or [])
        if len(control_params) != len(enabled_units) or not control_params:
            raise ControlVideoError(
                f"{self.units[0].field}: ControlNet did not start its units (see the console); "
                "accepted: units whose model loads"
            )
        entry = type(script).controlnet_main_entry.__globals__
        get_control, preprocessors = entry["get_control"], entry["Preprocessor"]
        first, count = run.position.first_frame, run.plan.batch_size
        for driven in self.units:
            param = control_params[driven.enabled_index]
            unit = enabled_units[driven.enabled_index]
            if not (isinstance(param.hint_cond, torch.Tensor) and param.hint_cond.ndim == 4):
                raise ControlVideoError(
                    f"{driven.field}: ControlNet unit {driven.index} ({unit.module}, "
                    f"{getattr(param.control_model_type, 'name', param.control_model_type)}) takes no image "
                    "hint per frame; accepted: ControlNet, T2I-Adapter and Control-LoRA units"
                )
            self._originals.setdefault(id(param), (param, param.hint_cond, param.hr_hint_cond))
            driven.param = param
            preprocessor = preprocessors.get_preprocessor(unit.module)
            started = time.perf_counter()
            low, high = [], []
            for frame in range(first, first + count):
                image = driven.video.frame(min(frame, params.frames - 1), hold_last=params.hold_last)
                one = copy.copy(unit)
                one.image = image
                controls, hr_controls, _ = get_control(
                    p, one, driven.enabled_index, param.control_model_type, preprocessor
                )
                low.append(controls[0])
                high.append(hr_controls[0])
            driven.low = torch.cat(low).to(param.hint_cond.device)
            driven.high = None if high[0] is None else torch.cat(high).to(param.hint_cond.device)
            seconds = (time.perf_counter() - started) / count
            console(
                f"ControlNet unit {driven.index} ({unit.module}): frames {first + 1}-{first + count} "
                f"preprocessed, {seconds * 1000:.1f} ms per frame"
            )

    def _hook_control_models(self, run: Run) -> None:
        """Temporal momentum on the attn1 layers of every ControlNet of the run (paper §4, Eq. 2).

        ControlNet runs inside the UNet call, after the momentum feature has set that call's row
        layout, so its self-attention layers mix the same rows in the same CFG streams; their state
        is carried between chunks under their own names (``controlnet<unit>.<layer>``).
        """
        self._control_hooks = []
        code = external_code()
        script = code.find_cn_script(run.p.scripts) if code is not None else None
        network = getattr(script, "latest_network", None)
        momentum = run.feature(Momentum).momentum
        for k, param in enumerate(getattr(network, "control_params", None) or []):
            model = getattr(param.control_model, "control_model", None)
            if not isinstance(model, torch.nn.Module):
                continue  # T2I-Adapters and others without attention
            for name, module in attn1_modules(model):
                hook = momentum.pre_hook(f"controlnet{k}.{name}")
                self._control_hooks.append(module.register_forward_pre_hook(hook, with_kwargs=True))
        console(f"temporal momentum on {len(self._control_hooks)} ControlNet self-attention layers")

    # per UNet call --------------------------------------------------------------------------

    def evaluation(self, run: Run, params: Any) -> None:
        """Map the rows of this evaluation's ``x_in`` to frames of the chunk; hook the UNet once."""
        if not self.units or self.error is not None:
            return
        unet = run.host.unet()
        if self._unet is not unet:
            self._detach()
            self._handle = unet.register_forward_pre_hook(self._on_unet_call, with_kwargs=True)
            self._unet = unet
        denoiser = params.denoiser
        edit = run.host.is_edit_model() and denoiser.image_cfg_scale not in (None, 1.0)
        layout = denoiser_layout(cond_repeats(denoiser, params), uncond=True, image_uncond=edit)
        self._rows = [row[1] for row in layout.rows]
        self._cursor = 0

    def evaluated(self, run: Run) -> None:
        self._rows = None

    def _on_unet_call(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        """Give every driven unit the hint rows of this call's latent rows (the CFG row cursor)."""
        x = args[0] if args else kwargs["x"]
        rows = x.shape[0]
        if self._rows is None:  # a UNet call outside CFG: one row per frame if it fits
            frames = list(range(rows)) if rows == len(self.units[0].low) else None
        else:
            start, self._cursor = self._cursor, self._cursor + rows
            frames = self._rows[start : self._cursor] if self._cursor <= len(self._rows) else None
        if frames is None:
            raise RequestError(
                f"{PREFIX} {_named('control_video')}: a UNet call of {rows} rows does not match the CFG "
                "batch of the chunk; turn off the setting or extension that splits it (accepted: A1111's own "
                "CFG layouts)"
            )
        for driven in self.units:
            index = torch.tensor(frames, device=driven.low.device)
            if driven.high is not None:
                driven.param.hr_hint_cond = driven.high.index_select(0, index)
            driven.param.hint_cond = driven.low.index_select(
                0, index
            )  # the setter drops ControlNet's cached hint

    # undo ---------------------------------------------------------------------------------

    def _detach(self) -> None:
        if self._handle is not None:
            self._handle.remove()
        self._handle = None
        self._unet = None

    def _release(self) -> None:
        """Remove the hooks, put ControlNet's own hints back, drop this chunk's hints."""
        self._detach()
        for handle in self._control_hooks or ():
            handle.remove()
        self._control_hooks = None
        for param, hint, hr_hint in self._originals.values():
            param.hr_hint_cond = hr_hint
            param.hint_cond = hint
        self._originals.clear()
        self._rows = None
        for driven in self.units:
            driven.low = driven.high = None


def _is_unit(arg: Any, code: Any) -> bool:
    """Whether a ControlNet script arg is a unit (a unit object or an API dict), as ControlNet counts them."""
    return isinstance(arg, (code.ControlNetUnit, dict)) or "ControlNetUnit" in type(arg).__name__


def _has_image(unit: Any) -> bool:
    image = unit.image
    if isinstance(image, dict):
        image = image.get("image")
    return image is not None and not (isinstance(image, (list, tuple, str)) and len(image) == 0)


def _batch_folder(unit: Any) -> str | None:
    """The folder of a unit's Batch tab (or of ControlNet's AnimateDiff batch field), if it names one."""
    mode = getattr(unit.input_mode, "value", unit.input_mode)
    text = unit.batch_images if isinstance(unit.batch_images, str) else ""
    folder = text.strip().splitlines()[0].strip() if text.strip() else ""
    if folder and (mode == "batch" or getattr(unit, "animatediff_batch", False)):
        return folder
    return None


def _source(unit: Any, entry: Any, k: int, control_video: Any) -> tuple[str, Any] | None:
    """Which control video feeds unit ``k``: its control_videos entry, its Batch folder, or control_video."""
    if entry is not None:
        return _named("control_videos", k), entry
    folder = _batch_folder(unit)
    if folder is not None:
        return f"ControlNet unit {k} batch folder", folder
    if control_video is not None and not _has_image(unit):
        return _named("control_video"), control_video
    return None


def _named(name: str, index: int | None = None) -> str:
    """How messages name a control video field: as labelled, then its API name (and entry)."""
    entry = name if index is None else f"{name}[{index}]"
    return f"{FIELD_BY_NAME[name].label} ({entry})"


def _img2img_video(run: Run) -> ControlVideo | None:
    """img2img's source frames as a control video (frame k for frame k), or None outside a v2v run."""
    for feature in run.features:
        if isinstance(feature, Img2ImgFrames) and not feature.source.still:
            return in_memory(f"img2img source {feature.source.name}", feature.source.frames)
    return None


def _first_frame_unit(unit: Any, video: ControlVideo) -> Any:
    """A copy of the unit that ControlNet treats as a single-image unit with the first control frame."""
    one = copy.copy(unit)
    one.image = video.frame(0)
    one.input_mode = type(unit.input_mode)("simple")
    if getattr(one, "animatediff_batch", False):
        one.animatediff_batch = False
    return one
