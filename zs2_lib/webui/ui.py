"""The "ZS² Video" accordion in txt2img and img2img, built from ``params.FIELDS`` and mapped by name.

A simple panel in front (presets, frames, FPS, motion λ and consistency μ, each of the two with named
stops on a readable scale), everything else in an "Advanced" accordion inside, closed. Layout and
stops are UI only: every control is still the field's own, keyed by its API name.

img2img adds the video input in front: an upload (whose server-side temporary file fills the path
box), the path box and start/count/step; audio, init encoding and the mask video are advanced.
txt2img keeps those controls, hidden, so both tabs hand the script the same values in the same
order. Both tabs have an upload for the ControlNet control video, filling the ``control_video`` path
box the same way; uploads, stops and buttons are not script args.
"""

from __future__ import annotations

import html
import json
from functools import partial
from typing import Any

import gradio as gr
from modules.ui_components import InputAccordion

from zs2_lib.interpolation import available
from zs2_lib.names import INFOTEXT_KEY, LABEL
from zs2_lib.params import FIELD_BY_NAME, FIELDS, Field
from zs2_lib.script_args import infotext_value
from zs2_lib.webui import preset_panel, video_panel
from zs2_lib.webui.folders import interpolator_folders

FRONT_ROWS = (("frames", "fps"),)
STOPS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "lambda": (
        "Motion",
        (("still", "0.001"), ("subtle", "0.005"), ("gentle", "0.01"), ("moderate", "0.03"),
         ("lively", "0.1"), ("wild", "0.25")),
    ),
    "mu": (
        "Consistency",
        (("loose", "0.8"), ("balanced", "0.9"), ("steady", "0.95"), ("firm", "0.98"), ("locked", "1")),
    ),
}  # fmt: skip
"""Named values of λ and μ over their useful ranges, shown as a scale beside the field's own box
(which still takes any value or keyframes); the stop matching the box is selected."""
ADVANCED_ROWS = (
    ("chunk", "noise_model", "alpha"),
    ("search", "solver", "debias", "step_noise"),
    ("formats", "loop"),
    ("interpolate", "target_fps", "interpolator"),
    ("control_video", "hold_last", "control_momentum"),
)
VIDEO_ROWS = (
    ("video",),
    ("video_start", "video_frames", "video_step"),
)
ADVANCED_VIDEO_ROWS = (
    ("keep_audio", "init_encoding"),
    ("mask_video",),
)
UPLOAD_TYPES = [".mp4", ".webm", ".mov", ".mkv", ".avi", ".gif", ".webp"]

HIDDEN = ("control_videos",)
"""API-only fields: a hidden box keeps the positional order of the script's args."""


def _component(spec: Field, elem_id: str) -> gr.components.Component:
    """One control for one field, by the field's kind."""
    common = {"label": spec.label, "elem_id": elem_id}
    if spec.kind == "bool":
        return gr.Checkbox(value=spec.default, **common)
    if spec.kind == "int" and spec.choices:
        return gr.Radio(choices=[int(choice) for choice in spec.choices], value=spec.default, **common)
    if spec.slider is not None:
        low, high, step = spec.slider
        return gr.Slider(minimum=low, maximum=high, step=step, value=spec.default, **common)
    if spec.kind == "int":
        return gr.Number(value=spec.default, precision=0, minimum=spec.low, maximum=spec.high, **common)
    if spec.kind == "schedule":
        return gr.Textbox(value=str(spec.default), lines=1, **common)
    if spec.kind == "choice":
        return gr.Dropdown(choices=offered_choices(spec), value=spec.default, **common)
    if spec.kind == "source":
        return gr.Textbox(
            value=spec.default, lines=1, placeholder="/path/to/clip.mp4 or a folder of frames", **common
        )
    if spec.kind == "formats":
        return gr.CheckboxGroup(choices=list(spec.choices), value=list(spec.default), **common)
    if spec.kind == "control":
        return gr.Textbox(
            value="", lines=1, placeholder="folder of frames or video file (ControlNet units)", **common
        )
    if spec.kind == "controls":
        return gr.Textbox(value="", visible=False, **common)
    return gr.Number(value=spec.default, **common)


def offered_choices(spec: Field) -> list[str]:
    """A dropdown's choices: the field's, but for the interpolator only those this server can run
    (``rife`` where its weights are; the API checks again per request, so a reload shows new weights)."""
    if spec.name == "interpolator":
        return list(available(interpolator_folders()))
    return list(spec.choices)


def _uploaded_path(upload: Any) -> str:
    """The server-side path of gradio's temporary copy of an upload (gradio 3 hands a tempfile)."""
    return str(getattr(upload, "name", upload) or "")


def _upload_into(box: gr.components.Component, label: str, elem_id: str) -> gr.File:
    """A video upload whose server-side temporary file's path fills ``box`` (the upload is no script arg)."""
    upload = gr.File(label=label, file_types=UPLOAD_TYPES, elem_id=elem_id)
    upload.upload(fn=_uploaded_path, inputs=[upload], outputs=[box])
    return upload


def hints_html(elem_ids: dict[str, str]) -> str:
    """A hidden element holding each control's hover hint, read by ``javascript/zs2_video.js``."""
    hints = {elem_ids[spec.name]: spec.hint for spec in FIELDS}
    return f"<div class='zs2-hints' hidden data-hints='{html.escape(json.dumps(hints), quote=True)}'></div>"


def _stop_of(text: Any, stops: tuple[tuple[str, str], ...]) -> str | None:
    """The stop whose value the box holds (as a number), or None."""
    try:
        value = float(str(text).strip())
    except ValueError:
        return None
    return next((stop for _, stop in stops if float(stop) == value), None)


def _stops(box: gr.components.Component, name: str, elem_id: str) -> gr.Radio:
    """A scale of named stops that writes its value into ``box`` and follows what ``box`` holds."""
    label, stops = STOPS[name]
    default = _stop_of(FIELD_BY_NAME[name].default, stops)
    choices = [(f"{stop} {value}", value) for stop, value in stops]
    radio = gr.Radio(choices=choices, value=default, label=label, elem_id=elem_id)
    radio.input(fn=lambda value: value, inputs=[radio], outputs=[box])
    box.change(fn=lambda text: _stop_of(text, stops), inputs=[box], outputs=[radio])
    return radio


def _rows(rows: tuple[tuple[str, ...], ...], controls: dict[str, Any], elem_ids: dict[str, str]) -> None:
    for row in rows:
        with gr.Row():
            for name in row:
                controls[name] = _component(FIELD_BY_NAME[name], elem_ids[name])


def build(script: Any) -> list[gr.components.Component]:
    """Create the controls inside an InputAccordion; returns them in ``FIELDS`` order.

    Also sets the script's ``infotext_fields`` (every control restored from the ``ZS2 Video``
    infotext key by "Send to txt2img" and paste) and ``paste_field_names``.
    """
    elem_ids = {spec.name: script.elem_id(spec.name) for spec in FIELDS}
    controls: dict[str, gr.components.Component] = {}
    img2img = bool(getattr(script, "is_img2img", False))
    with InputAccordion(False, label=LABEL, elem_id=elem_ids["enabled"]) as enabled:
        controls["enabled"] = enabled
        preset_row = preset_panel.begin(script.elem_id)
        _rows(FRONT_ROWS, controls, elem_ids)
        for name in STOPS:
            with gr.Row():
                controls[name] = _component(FIELD_BY_NAME[name], elem_ids[name])
                _stops(controls[name], name, script.elem_id(f"{name}_stops"))
        with gr.Group(visible=img2img):
            upload = gr.File(
                label="Video input (upload)", file_types=UPLOAD_TYPES, elem_id=script.elem_id("upload")
            )
            _rows(VIDEO_ROWS, controls, elem_ids)
        upload.upload(fn=_uploaded_path, inputs=[upload], outputs=[controls["video"]])
        with gr.Accordion("Advanced", open=False, elem_id=script.elem_id("advanced")):
            _rows(ADVANCED_ROWS, controls, elem_ids)
            _upload_into(
                controls["control_video"], "Control video (upload)", script.elem_id("control_upload")
            )
            with gr.Group(visible=img2img):
                _rows(ADVANCED_VIDEO_ROWS, controls, elem_ids)
        for name in HIDDEN:
            controls[name] = _component(FIELD_BY_NAME[name], elem_ids[name])
        gr.HTML(hints_html(elem_ids))
        preset_panel.wire(preset_row, controls)
        video_panel.build(script.elem_id, img2img)
    missing = [spec.name for spec in FIELDS if spec.name not in controls]
    if missing:
        raise RuntimeError(f"ZS² Video: no control for {missing}")
    script.infotext_fields = [
        (controls[spec.name], partial(infotext_value, name=spec.name)) for spec in FIELDS
    ]
    script.paste_field_names = [INFOTEXT_KEY]
    return [controls[spec.name] for spec in FIELDS]
