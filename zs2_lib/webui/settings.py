"""ZS² Video's entries in A1111's Settings tab."""

from __future__ import annotations

import gradio as gr
from modules import shared

from zs2_lib.names import LABEL

OFFLOAD_OPTION = "zs2_offload_state"
SECTION = ("zs2_video", LABEL)


def add_settings() -> None:
    """``on_ui_settings`` callback: where the state carried between chunks lives."""
    shared.opts.add_option(
        OFFLOAD_OPTION,
        shared.OptionInfo(
            True,
            "Keep the attention state carried between chunks on the CPU "
            "(saves VRAM on long videos, a little slower)",
            gr.Checkbox,
            section=SECTION,
        ),
    )
