"""The presets row at the top of the ZS² accordion: a dropdown that sets the controls, a name box and Save.

Presets are not script args: the row's components are not returned by ``ui()``, so the script's
positional args stay as they were; choosing a preset only sets the existing controls (a gradio
``change`` event), which then reach the script as usual.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import gradio as gr

from zs2_lib import presets
from zs2_lib.names import console
from zs2_lib.presets import STORED, PresetError


def _status(lines: list[str]) -> str:
    return "".join(f"<p>{html.escape(line)}</p>" for line in lines)


def _loaded() -> presets.Presets:
    found = presets.load()
    for message in found.errors:
        console(message)
    return found


@dataclass(frozen=True)
class PresetRow:
    """The row's components, made before the controls they set (:func:`begin`, then :func:`wire`)."""

    choice: gr.Dropdown
    name: gr.Textbox
    save: gr.Button
    status: gr.HTML


def begin(elem_id: Any) -> PresetRow:
    """Create the presets row (at the top of the accordion); :func:`wire` connects it to the controls."""
    found = _loaded()
    with gr.Row():
        choice = gr.Dropdown(label="Preset", choices=found.names, value=None, elem_id=elem_id("preset"))
        name = gr.Textbox(label="Save settings as", placeholder="preset name", elem_id=elem_id("preset_name"))
        save = gr.Button("Save preset", elem_id=elem_id("preset_save"))
    status = gr.HTML(_status(found.errors), elem_id=elem_id("preset_status"))
    return PresetRow(choice, name, save, status)


def wire(row: PresetRow, controls: dict[str, gr.components.Component]) -> None:
    """Make the row's dropdown set ``controls`` (by public name) and its button save them."""
    outputs = [controls[key] for key in STORED]

    def apply(selected: str | None) -> list[Any]:
        current = _loaded()
        preset = current.by_name.get(selected or "")
        if preset is None:
            return [gr.update() for _ in STORED] + [_status(current.errors)]
        return [preset.settings[key] for key in STORED] + [_status(current.errors)]

    def store(preset_name: str, *values: Any) -> list[Any]:
        try:
            saved = presets.save(preset_name, dict(zip(STORED, values, strict=True)))
        except PresetError as error:
            return [gr.update(), _status([str(error)])]
        current = _loaded()
        message = f"Saved preset {saved.name!r} to {saved.path.name}."
        return [gr.update(choices=current.names, value=saved.name), _status([message, *current.errors])]

    row.choice.change(fn=apply, inputs=[row.choice], outputs=[*outputs, row.status])
    row.save.click(fn=store, inputs=[row.name, *outputs], outputs=[row.choice, row.status])
