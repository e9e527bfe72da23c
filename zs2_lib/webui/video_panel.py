"""The server side of the video panel above the results (drawn by ``javascript/zs2_video.js``).

The panel plays each video, links its files (the webui's ``file=`` route), sends the video to
img2img's ZS² video input (in the page alone) and opens the output folder. Opening a folder runs on
the server, so it is a gradio button of the accordion, kept out of sight (``style.css``) and
clicked by the panel's own button. As A1111's folder button, it does not exist when the webui runs
with ``--hide-ui-dir-config``, and then the panel offers no folder button.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
from modules import shared, util

from zs2_lib.names import OUTPUT_FOLDER, PREFIX, console

HIDDEN_CLASS = "zs2-hidden"


def output_folder(img2img: bool) -> Path:
    """Where the tab's videos go: ``<outpath_samples>/zs2``, as A1111 sets ``p.outpath_samples``."""
    opts = shared.opts
    tab = opts.outdir_img2img_samples if img2img else opts.outdir_txt2img_samples
    return Path(opts.outdir_samples or tab) / OUTPUT_FOLDER


def open_output_folder(img2img: bool) -> None:
    """Open the tab's video folder in the server's file manager, unless folders are hidden; a server
    without a file manager (no ``xdg-open``) gets a warning in the page, not an error."""
    if getattr(shared.cmd_opts, "hide_ui_dir_config", False):
        return
    folder = output_folder(img2img)
    console(f"opening the video folder {folder}")
    try:
        util.open_folder(str(folder))
    except OSError as error:
        gr.Warning(f"{PREFIX} the server cannot open {folder.name}/ in a file manager: {error}")


def build(elem_id: Any, img2img: bool) -> gr.Button | None:
    """The hidden "open folder" button the panel clicks, or None with ``--hide-ui-dir-config``."""
    if getattr(shared.cmd_opts, "hide_ui_dir_config", False):
        return None
    button = gr.Button("Open video folder", elem_id=elem_id("open_folder"), elem_classes=[HIDDEN_CLASS])
    button.click(fn=lambda: open_output_folder(img2img), inputs=[], outputs=[])
    return button
