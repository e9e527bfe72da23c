"""ZS² Video's entries in A1111's Settings tab, and the server-side caps they set.

The caps bound what one request may cost the server: ``zs2_max_frames`` the video length,
``zs2_max_chunk_search`` the frames sampled together times the candidates searched per frame (the
search's time per chunk; its memory no longer depends on the candidates). A request over a cap is
refused with HTTP 422 before anything is sampled; an administrator raises the caps in Settings or
``config.json`` (docs/LIMITS.md).
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from modules import shared

from zs2_lib.names import LABEL, PREFIX
from zs2_lib.noise import draws_needed
from zs2_lib.params import FIELD_BY_NAME, ZS2Params

OFFLOAD_OPTION = "zs2_offload_state"
MAX_FRAMES_OPTION = "zs2_max_frames"
MAX_CHUNK_SEARCH_OPTION = "zs2_max_chunk_search"
SECTION = ("zs2_video", LABEL)

CAPS = {MAX_FRAMES_OPTION: 1024, MAX_CHUNK_SEARCH_OPTION: 2048}
"""Default caps: a 1,024-frame video (43 s at 24 fps); chunk 64 with search 32, or 204 with 10."""


def add_settings() -> None:
    """``on_ui_settings`` callback: where the state carried between chunks lives, and the caps."""
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
    shared.opts.add_option(
        MAX_FRAMES_OPTION,
        shared.OptionInfo(
            CAPS[MAX_FRAMES_OPTION],
            "Most frames a request may ask for (longer videos are refused with an error)",
            gr.Number,
            {"precision": 0, "minimum": 1},
            section=SECTION,
        ),
    )
    shared.opts.add_option(
        MAX_CHUNK_SEARCH_OPTION,
        shared.OptionInfo(
            CAPS[MAX_CHUNK_SEARCH_OPTION],
            "Most frames per chunk × search candidates a request may ask for",
            gr.Number,
            {"precision": 0, "minimum": 1},
            section=SECTION,
        ),
    )


def over_caps(params: ZS2Params, option: Any) -> str | None:
    """Why ``params`` exceed the server's caps (naming the fields and the setting), or None.

    ``option(key, default)`` reads a setting (``A1111.option``).
    """
    max_frames = int(option(MAX_FRAMES_OPTION, CAPS[MAX_FRAMES_OPTION]))
    if params.frames > max_frames:
        return (
            f"{PREFIX} {FIELD_BY_NAME['frames'].called}: {params.frames} is over this server's limit "
            f"(accepted: 1 to {max_frames}; an administrator raises it with the setting {MAX_FRAMES_OPTION}, "
            "Settings → ZS² Video)"
        )
    max_chunk_search = int(option(MAX_CHUNK_SEARCH_OPTION, CAPS[MAX_CHUNK_SEARCH_OPTION]))
    chunk = min(params.chunk, params.frames)
    search = draws_needed(params.noise_model, params.search)
    if chunk * search > max_chunk_search:
        return (
            f"{PREFIX} {FIELD_BY_NAME['chunk'].called} × {FIELD_BY_NAME['search'].called}: {chunk} × "
            f"{search} = {chunk * search} is over this server's limit (accepted: at most {max_chunk_search}; "
            f"lower them, or raise the setting {MAX_CHUNK_SEARCH_OPTION})"
        )
    return None
