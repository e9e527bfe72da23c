"""The presets row with the host's gradio: choosing a preset sets the controls, Save stores and lists it.

Runs wherever gradio is installed (A1111's venv); the test servers are API-only (``--nowebui``), so
the row is built in a gradio Blocks of its own and its events' functions are called as gradio would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from zs2_lib import presets
from zs2_lib.presets import STORED

gr = pytest.importorskip("gradio")


def _row(monkeypatch: pytest.MonkeyPatch, user: Path) -> tuple[Any, dict[str, Any]]:
    from zs2_lib.webui import preset_panel

    monkeypatch.setattr(presets, "USER", user)
    with gr.Blocks() as demo:  # as ui.py builds it: the row first, then the controls it sets
        row = preset_panel.begin(lambda name: f"zs2_{name}")
        controls = {name: gr.Textbox(elem_id=f"zs2_{name}") for name in STORED}
        preset_panel.wire(row, controls)
    return demo, controls


def _event(demo: Any, elem_id: str) -> tuple[Any, list[Any], list[Any]]:
    """The function, input and output components of the event whose trigger has ``elem_id``."""
    blocks = demo.blocks
    for index, dependency in enumerate(demo.dependencies):
        if any(getattr(blocks[target], "elem_id", None) == elem_id for target in dependency["targets"]):
            inputs = [blocks[i] for i in dependency["inputs"]]
            outputs = [blocks[i] for i in dependency["outputs"]]
            return demo.fns[index].fn, inputs, outputs
    raise AssertionError(f"no event on {elem_id}")


def test_choosing_a_preset_sets_every_stored_control(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    demo, controls = _row(monkeypatch, tmp_path)
    apply, inputs, outputs = _event(demo, "zs2_preset")
    dropdown = inputs[0]
    assert {"subtle", "lively", "loop"} <= set(dropdown.choices)

    values = apply("lively")

    assert outputs[: len(STORED)] == [controls[name] for name in STORED]
    lively = presets.load().by_name["lively"].settings
    assert dict(zip(STORED, values, strict=False)) == dict(lively)
    assert lively["lambda"] == "0.1"
    assert lively["interpolate"] == 2
    assert values[-1] == ""  # no message: every shipped preset loaded


def test_save_stores_the_controls_and_lists_the_new_preset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    demo, controls = _row(monkeypatch, tmp_path)
    store, inputs, _ = _event(demo, "zs2_preset_save")
    assert inputs[1:] == [controls[name] for name in STORED]  # the name box, then the controls
    values = {**presets.load().by_name["subtle"].settings, "frames": 40}

    dropdown, message = store("Forty frames", *values.values())

    assert dropdown["value"] == "Forty frames"
    assert "Forty frames" in dropdown["choices"]
    assert "Saved preset" in message
    assert presets.load().by_name["Forty frames"].settings["frames"] == 40
    _, refused = store("../escape", *values.values())
    assert "preset name" in refused
    assert "accepted" in refused
    assert [path.name for path in tmp_path.iterdir()] == ["forty-frames.json"]
